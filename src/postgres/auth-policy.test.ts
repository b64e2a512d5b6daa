import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isPortcullisError } from '../core/errors.js';
import { postgresAuthPolicy, readPostgresAuthPolicy } from './auth-policy.js';

const base = 'postgres://admin:s3cret@db.internal:5432/app';
const accepted = (query: string) =>
  [...postgresAuthPolicy(`${base}?${query}`, 'storage.url').accepted].sort();
const problem = (url: string) => {
  const read = readPostgresAuthPolicy(url);
  return 'problem' in read ? read.problem : undefined;
};

describe('postgresAuthPolicy', () => {
  test('by default anything but a cleartext password, which needs a checked certificate or a unix socket', () => {
    assert.deepEqual(accepted('sslmode=require'), ['md5', 'none', 'scram-sha-256']);
    assert.deepEqual(accepted('sslmode=disable'), ['md5', 'none', 'scram-sha-256']);
    assert.deepEqual(accepted('sslmode=verify-ca'), ['md5', 'none', 'password', 'scram-sha-256']);
    assert.deepEqual(accepted('sslmode=verify-full'), ['md5', 'none', 'password', 'scram-sha-256']);
    assert.deepEqual(accepted('host=/var/run/postgresql'), ['md5', 'none', 'password', 'scram-sha-256']);
    const socketHost = postgresAuthPolicy('postgres://admin:pw@%2Fvar%2Frun%2Fpostgresql/app', 'x');
    assert.ok(socketHost.accepted.has('password'));
    const emptyHost = postgresAuthPolicy('postgres://admin:pw@/app', 'x');
    assert.ok(!emptyHost.accepted.has('password'), 'no host means TCP to localhost, not a socket');
  });

  test('require_auth as libpq reads it: a list, or a list of !exclusions', () => {
    assert.deepEqual(accepted('require_auth=scram-sha-256'), ['scram-sha-256']);
    assert.deepEqual(accepted('require_auth=scram-sha-256,none'), ['none', 'scram-sha-256']);
    assert.deepEqual(accepted('require_auth=!md5,!none,!password'), ['scram-sha-256']);
    assert.deepEqual(accepted('require_auth=!gss,!sspi&sslmode=verify-ca'), [
      'md5',
      'none',
      'password',
      'scram-sha-256',
    ]);
    assert.deepEqual(accepted('require_auth=password&sslmode=verify-full'), ['password']);
  });

  test('channel_binding: prefer by default, require only with TLS', () => {
    const mode = (query: string) => postgresAuthPolicy(`${base}?${query}`, 'x').channelBinding;
    assert.equal(mode(''), 'prefer');
    assert.equal(mode('channel_binding=disable'), 'disable');
    assert.equal(mode('sslmode=require&channel_binding=require'), 'require');
  });

  test('what cannot be kept is refused with the place it came from, never the URL', () => {
    for (const [query, expected] of [
      [
        'require_auth=password',
        /require_auth allows a cleartext password, which needs sslmode=verify-ca or verify-full/,
      ],
      ['require_auth=password&sslmode=require', /which needs sslmode=verify-ca or verify-full/],
      ['require_auth=!md5', /require_auth allows a cleartext password/],
      ['require_auth=!md5,none', /cannot mix methods with !excluded methods/],
      ['require_auth=scram-sha-256,scram-sha-256', /names "scram-sha-256" twice/],
      ['require_auth=kerberos', /unknown method "kerberos"/],
      ['require_auth=gss', /require_auth=gss is not supported/],
      ['channel_binding=always', /channel_binding must be disable, prefer or require/],
      ['channel_binding=require', /channel_binding=require needs TLS to the server/],
      ['channel_binding=require&sslmode=disable', /channel_binding=require needs TLS to the server/],
    ] as const) {
      assert.throws(
        () => postgresAuthPolicy(`${base}?${query}`, 'resources[0].postgres.admin_url'),
        (error) =>
          isPortcullisError(error) &&
          error.code === 'config_invalid' &&
          error.message.startsWith('resources[0].postgres.admin_url: ') &&
          expected.test(error.message) &&
          !error.message.includes('s3cret'),
        query,
      );
    }
    assert.equal(problem('not a url'), 'not a postgres:// URL');
    assert.equal(problem(`${base}?require_auth=none`), undefined);
  });
});
