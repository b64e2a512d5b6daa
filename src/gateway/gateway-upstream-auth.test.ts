/**
 * Which authentication the gateway accepts from the database (`gateway_upstream_auth`). By default
 * only SCRAM-SHA-256, where the server proves it knows the password too: a server, or anyone in
 * the path, that asks for the grant's password in cleartext gets nothing, and one that asks for no
 * password at all is not talked to. Proven against real clusters whose pg_hba asks the grants'
 * logins for `password` or `trust`, and against a fake server that records what it receives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakePostgresServer } from '../../test-support/fake-postgres-server.js';
import {
  backendsOf,
  connectViaGateway,
  gatewayEvents,
  liveGrant,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { testPostgresResource } from '../../test-support/postgres-target.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';
import { isPortcullisError } from '../core/errors.js';
import { upstreamTargetOf } from './gateway-from-config.js';
import { connectUpstream, type UpstreamAuthMethod } from './upstream-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-upstream-auth-'));
let passwordCluster: ScramCluster | undefined;
let trustCluster: ScramCluster | undefined;
let skip: string | undefined;
const harnesses: Harness[] = [];

before(async () => {
  const { certFile, keyFile } = createSelfSignedCertificate(dir);
  const [withPassword, withTrust] = await Promise.all([
    startScramClusterOrSkip({ ssl: { certFile, keyFile }, otherRolesAuth: 'password' }),
    startScramClusterOrSkip({ otherRolesAuth: 'trust' }),
  ]);
  passwordCluster = withPassword.cluster;
  trustCluster = withTrust.cluster;
  skip = withPassword.skip ?? withTrust.skip;
});
after(async () => {
  await Promise.all(harnesses.map((h) => h.close()));
  await Promise.all([passwordCluster?.stop(), trustCluster?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

async function harness(adminUrl: string, accepted?: readonly UpstreamAuthMethod[]): Promise<Harness> {
  const h = await startHarness({
    storage: 'sqlite',
    gateway: true,
    targetAdminUrl: adminUrl,
    ...(accepted ? { targetPostgresOverrides: { gateway_upstream_auth: accepted } } : {}),
  });
  harnesses.push(h);
  return h;
}

/** Alice's session through the gateway of `h` on a fresh grant: its first row, or its refusal. */
async function sessionOf(h: Harness) {
  const sessions = { alice: await h.login('alice'), bob: await h.login('bob') };
  const grant = await liveGrant(h, sessions);
  const attempt = connectViaGateway(viaGateway(h, 'demo:alice', grant.token)).then(async (client) => {
    const row = (
      await client.query('select current_user as login, ssl from pg_stat_ssl where pid = pg_backend_pid()')
    ).rows[0] as { login: string; ssl: boolean };
    await client.end();
    return row;
  });
  return { grant, attempt };
}

describe('gateway upstream authentication', () => {
  test('by default a server asking for the password in cleartext is refused (28000), and told nothing', async (t) => {
    if (skip) return t.skip(skip);
    const h = await harness(passwordCluster?.adminUrl ?? '');
    const { grant, attempt } = await sessionOf(h);
    const error = await rejection(attempt);
    assert.equal(error.code, '28000');
    assert.match(
      error.message,
      /the database asks for the password in cleartext, which this resource's gateway_upstream_auth does not accept \(scram-sha-256\)/,
    );
    assert.equal(await backendsOf(passwordCluster?.adminUrl ?? '', grant.login), 0);
    const ended = await gatewayEvents(h, 'gateway.session_ended');
    assert.equal(ended.length, 1);
  });

  test('a cleartext password allowed with sslmode=verify-full reaches the server over checked TLS', async (t) => {
    if (skip) return t.skip(skip);
    const certFile = join(dir, 'server.crt');
    const verified = `${passwordCluster?.adminUrl}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certFile)}`;
    const h = await harness(verified, ['scram-sha-256', 'password']);
    const { grant, attempt } = await sessionOf(h);
    assert.deepEqual(await attempt, { login: grant.login, ssl: true });
  });

  test('by default a server asking for no password is refused; `none` lets it in', async (t) => {
    if (skip) return t.skip(skip);
    const refusing = await harness(trustCluster?.adminUrl ?? '');
    const refused = await rejection((await sessionOf(refusing)).attempt);
    assert.equal(refused.code, '28000');
    assert.match(
      refused.message,
      /the database asks for no password, which .* does not accept \(scram-sha-256\)/,
    );

    const trusting = await harness(trustCluster?.adminUrl ?? '', ['scram-sha-256', 'none']);
    const { grant, attempt } = await sessionOf(trusting);
    assert.deepEqual(await attempt, { login: grant.login, ssl: false });
  });
});

describe('upstream login against a server that asks for the password in cleartext', () => {
  const login = {
    username: 'grant_login',
    password: 'the-grant-password',
    database: 'app',
    parameters: new Map(),
  };

  for (const [accepted, channelBinding, leaks] of [
    [['scram-sha-256'], 'prefer', false],
    [['scram-sha-256', 'none'], 'prefer', false],
    [['scram-sha-256', 'password'], 'prefer', true],
    // Only SCRAM can be bound: channel_binding=require outranks an allowed cleartext password.
    [['scram-sha-256', 'password'], 'require', false],
  ] as const) {
    test(`accepting ${accepted.join(', ')}, channel_binding=${channelBinding}: the password is ${leaks ? '' : 'not '}sent`, async () => {
      const phisher = await fakePostgresServer({ login: 'cleartext' });
      try {
        const target = {
          host: '127.0.0.1',
          port: phisher.port,
          tls: 'disable' as const,
          acceptedAuth: new Set<UpstreamAuthMethod>(accepted),
          channelBinding,
        };
        // With `password` the phisher goes on to wait forever: the login times out.
        const error = await rejection(connectUpstream(target, login, { timeoutMs: leaks ? 300 : 5000 }));
        assert.equal((error as { sqlState?: string }).sqlState, leaks ? '08001' : '28000');
        assert.equal(phisher.received().includes(login.password), leaks);
      } finally {
        await phisher.close();
      }
    });
  }
});

describe('gateway_upstream_auth at start-up', () => {
  const configured = (url: string, accepted: readonly UpstreamAuthMethod[]) =>
    testPostgresResource({ url, gatewayUpstreamAuth: accepted });

  test('a cleartext password is allowed only when the server certificate is checked', () => {
    for (const sslmode of ['disable', 'prefer', 'require']) {
      assert.throws(
        () => upstreamTargetOf(configured(`postgres://a:b@db.internal/app?sslmode=${sslmode}`, ['password'])),
        (error) =>
          isPortcullisError(error) &&
          error.code === 'config_invalid' &&
          /prod-db: gateway_upstream_auth allows a cleartext password, which needs an admin URL with sslmode=verify-ca or verify-full/.test(
            error.message,
          ),
      );
    }
    const target = upstreamTargetOf(
      configured('postgres://a:b@db.internal/app?sslmode=verify-full', ['scram-sha-256', 'password']),
    );
    assert.equal(target.tls, 'verify-full');
    assert.deepEqual([...target.acceptedAuth], ['scram-sha-256', 'password']);
    assert.deepEqual(
      [...upstreamTargetOf(configured('postgres://a:b@db.internal/app', ['scram-sha-256'])).acceptedAuth],
      ['scram-sha-256'],
    );
  });

  test('channel_binding from the admin URL: prefer by default, require only with TLS, nothing else', () => {
    const of = (query: string) =>
      upstreamTargetOf(configured(`postgres://a:b@db.internal/app?${query}`, ['scram-sha-256']))
        .channelBinding;
    assert.equal(of('sslmode=require'), 'prefer');
    assert.equal(of('sslmode=require&channel_binding=require'), 'require');
    assert.equal(of('sslmode=disable&channel_binding=disable'), 'disable');
    for (const [query, problem] of [
      ['sslmode=disable&channel_binding=require', /channel_binding=require needs TLS to the server/],
      ['sslmode=require&channel_binding=always', /channel_binding must be disable, prefer or require/],
    ] as const) {
      assert.throws(
        () => of(query),
        (error) => isPortcullisError(error) && error.code === 'config_invalid' && problem.test(error.message),
      );
    }
  });
});
