import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../core/errors.js';
import { parseStoreUrl } from './store-url.js';

describe('parseStoreUrl', () => {
  const cases: readonly [string, ReturnType<typeof parseStoreUrl>][] = [
    ['sqlite:portcullis.db', { dialect: 'sqlite', path: 'portcullis.db' }],
    ['sqlite:data/portcullis.db', { dialect: 'sqlite', path: 'data/portcullis.db' }],
    ['sqlite:/var/lib/portcullis.db', { dialect: 'sqlite', path: '/var/lib/portcullis.db' }],
    ['sqlite:///var/lib/portcullis.db', { dialect: 'sqlite', path: '/var/lib/portcullis.db' }],
    ['sqlite::memory:', { dialect: 'sqlite', path: ':memory:' }],
    ['postgres://pc@db:5432/pc', { dialect: 'postgres', connectionString: 'postgres://pc@db:5432/pc' }],
    [
      'postgresql://pc@db/pc?sslmode=require',
      { dialect: 'postgres', connectionString: 'postgresql://pc@db/pc?sslmode=require' },
    ],
  ];
  for (const [url, expected] of cases) {
    it(`reads ${url}`, () => assert.deepEqual(parseStoreUrl(url), expected));
  }

  it('refuses other forms without repeating the URL, which may hold a password', () => {
    for (const url of ['mysql://root:hunter2@db/pc', 'sqlite:', 'portcullis.db', 'postgres:/x']) {
      assert.throws(
        () => parseStoreUrl(url),
        (error: unknown) =>
          error instanceof PortcullisError &&
          error.code === 'config_invalid' &&
          !error.message.includes('hunter2'),
      );
    }
  });
});
