import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testPostgresTarget } from '../../test-support/postgres-target.js';
import type { ConfiguredResource } from '../config/load.js';
import { isPortcullisError } from '../core/errors.js';
import {
  adminUrlForDatabase,
  postgresTargetOf,
  publicAddress,
  requesterConnectionString,
} from './postgres-target.js';

const target = testPostgresTarget;

describe('postgres target', () => {
  it('hands requesters the admin URL host and port unless public ones are configured', () => {
    assert.deepEqual(publicAddress(target()), { host: 'db.internal', port: 6432 });
    assert.deepEqual(publicAddress(target({ url: 'postgres://a:b@db.internal/x' })), {
      host: 'db.internal',
      port: 5432,
    });
    assert.deepEqual(publicAddress(target({ publicHost: 'db.example.com' })), {
      host: 'db.example.com',
      port: 6432,
    });
    assert.deepEqual(publicAddress(target({ publicHost: 'db.example.com', publicPort: 5433 })), {
      host: 'db.example.com',
      port: 5433,
    });
  });

  it('builds a percent-encoded connection string and keeps the admin sslmode', () => {
    assert.equal(
      requesterConnectionString(target({ database: 'my db/ü' }), 'pc_x', 'p-w_d'),
      'postgres://pc_x:p-w_d@db.internal:6432/my%20db%2F%C3%BC',
    );
    assert.equal(
      requesterConnectionString(
        target({ url: 'postgres://a:b@[::1]:5432/x?sslmode=verify-full' }),
        'pc_x',
        'pw',
      ),
      'postgres://pc_x:pw@[::1]:5432/app?sslmode=verify-full',
    );
  });

  it('asks for public_host when the admin URL connects through a unix socket', () => {
    for (const url of [
      'postgres://a:b@/x?host=/var/run/postgresql',
      'postgres:///x?host=/var/run/postgresql',
      'postgres://a:b@%2Fvar%2Frun%2Fpostgresql/x',
    ]) {
      assert.throws(() => publicAddress(target({ url })), /public_host/, url);
      assert.deepEqual(publicAddress(target({ url, publicHost: 'db.example.com' })), {
        host: 'db.example.com',
        port: 5432,
      });
    }
    assert.equal(
      adminUrlForDatabase(target({ url: 'postgres://a:b@/x?host=/var/run/postgresql' }), 'app'),
      'postgres://a:b@/app?host=/var/run/postgresql',
    );
  });

  it('takes a TCP host given as a query parameter', () => {
    assert.deepEqual(publicAddress(target({ url: 'postgres://a:b@ignored:5433/x?host=db.internal' })), {
      host: 'db.internal',
      port: 5433,
    });
  });

  it('never puts the admin URL in an error', () => {
    const bad = target({ url: 'not a url with s3cret' });
    assert.throws(
      () => adminUrlForDatabase(bad, 'app'),
      (error: unknown) =>
        isPortcullisError(error) &&
        !error.message.includes('s3cret') &&
        !String(error.cause).includes('s3cret'),
    );
  });

  it('points the admin URL at another database, refusing names node-postgres would misread', () => {
    assert.equal(
      adminUrlForDatabase(target(), 'other "db"'),
      'postgres://admin:s3cret@db.internal:6432/other%20%22db%22',
    );
    assert.throws(() => adminUrlForDatabase(target(), 'a#b'), /Cannot connect to database/);
  });

  it('requires postgres settings on the resource', () => {
    const resource = { id: 'api', kind: 'token' } as ConfiguredResource;
    assert.throws(() => postgresTargetOf(resource), /Resource api \(kind token\) has no postgres settings/);
  });
});
