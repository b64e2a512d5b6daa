import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from './cli-error.js';
import { GatewayCredentialCache, gatewayLoginFrom } from './gateway-credential-cache.js';
import type { GatewayLogin } from './gateway-dialer.js';

const minute = 60_000;

function loginExpiringAt(expiresAt: number, password = `token-${expiresAt}`): GatewayLogin {
  return { host: 'gw', port: 6432, user: 'g-1', password, database: 'db', tls: true, expiresAt };
}

describe('GatewayCredentialCache', () => {
  it('reuses a login until a minute before its token expires, then fetches a new one', async () => {
    let now = 0;
    let fetches = 0;
    const cache = new GatewayCredentialCache(
      async () => loginExpiringAt(now + 15 * minute, `t${++fetches}`),
      () => now,
    );
    assert.deepEqual(await cache.get(false), { login: loginExpiringAt(15 * minute, 't1'), cached: false });
    now = 14 * minute - 1;
    assert.equal((await cache.get(false)).login.password, 't1');
    now = 14 * minute;
    const renewed = await cache.get(false);
    assert.equal(renewed.login.password, 't2');
    assert.equal(renewed.cached, false);
  });

  it('keeps a quarter of a short token life as the margin', async () => {
    let now = 0;
    const cache = new GatewayCredentialCache(
      async () => loginExpiringAt(now + 8000),
      () => now,
    );
    await cache.get(false);
    now = 5999;
    assert.equal((await cache.get(false)).cached, true);
    now = 6000;
    assert.equal((await cache.get(false)).cached, false);
  });

  it('`fresh` skips the cache, and logins asked for at once share one fetch', async () => {
    let fetches = 0;
    const cache = new GatewayCredentialCache(
      async () => loginExpiringAt(15 * minute, `t${++fetches}`),
      () => 0,
    );
    const together = await Promise.all([cache.get(false), cache.get(false), cache.get(true)]);
    assert.equal(fetches, 1);
    assert.deepEqual(
      together.map((l) => l.login.password),
      ['t1', 't1', 't1'],
    );
    assert.equal((await cache.get(true)).login.password, 't2');
  });

  it('a failed fetch is not cached', async () => {
    let fail = true;
    const cache = new GatewayCredentialCache(
      async () => {
        if (fail) throw new Error('unreachable');
        return loginExpiringAt(15 * minute);
      },
      () => 0,
    );
    await assert.rejects(cache.get(false), /unreachable/);
    fail = false;
    assert.equal((await cache.get(false)).cached, false);
  });
});

describe('gatewayLoginFrom', () => {
  const credentials = {
    via: 'gateway',
    connection_string: 'postgres://…',
    host: '2001:db8::1',
    port: '6432',
    username: 'g-1',
    password: 'a.b.c',
    database: 'orders-db',
    sslmode: 'require',
    password_expires_at: '2026-11-23T12:00:00.000Z',
  };

  it('reads a gateway connection', () => {
    assert.deepEqual(gatewayLoginFrom('g-1', credentials), {
      host: '2001:db8::1',
      port: 6432,
      user: 'g-1',
      password: 'a.b.c',
      database: 'orders-db',
      tls: true,
      expiresAt: Date.UTC(2026, 10, 23, 12),
    });
  });

  it('refuses direct credentials (exit 2) and incomplete ones', () => {
    const { via: _via, ...direct } = credentials;
    assert.throws(
      () => gatewayLoginFrom('g-1', direct),
      (error: unknown) =>
        error instanceof CliError && error.code === 'not_gateway_only' && error.exitCode === 2,
    );
    for (const broken of [
      { port: '0' },
      { sslmode: 'prefer' },
      { password_expires_at: 'soon' },
      { host: '' },
    ])
      assert.throws(
        () => gatewayLoginFrom('g-1', { ...credentials, ...broken }),
        (error: unknown) => error instanceof CliError && error.code === 'unexpected_response',
      );
  });
});
