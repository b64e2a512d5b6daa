/**
 * TLS from the gateway to the database: a private scram-sha-256 cluster with `ssl = on` and a
 * self-signed certificate (made with openssl in a temporary directory) is reached through an admin
 * URL with `sslmode=verify-full&sslrootcert=<that certificate>`. The session runs over TLS upstream;
 * a server whose certificate does not chain to the configured CA is refused, and so is one that no
 * longer offers TLS — the gateway never falls back to plain TCP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  backendsOf,
  connectViaGateway,
  type GatewayGrant,
  liveGrant,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';
import { tlsTerminatingRelay } from '../../test-support/tls-terminating-relay.js';
import { waitFor } from '../../test-support/wait-for.js';
import { connectUpstream, openUpstreamSocket } from './upstream-connection.js';

const run = promisify(execFile);

let cluster: ScramCluster | undefined;
let skip: string | undefined;
let h: Harness;
let grant: GatewayGrant;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-upstream-tls-'));
const certFile = join(dir, 'server.crt');

before(async () => {
  const { keyFile } = createSelfSignedCertificate(dir);
  const started = await startScramClusterOrSkip({ ssl: { certFile, keyFile } });
  cluster = started.cluster;
  skip = started.skip;
  if (!cluster) return;
  const tlsAdminUrl = `${cluster.adminUrl}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certFile)}`;
  h = await startHarness({ storage: 'sqlite', targetAdminUrl: tlsAdminUrl, gateway: true });
  const sessions: Record<string, string> = {};
  for (const user of ['alice', 'bob']) sessions[user] = await h.login(user);
  grant = await liveGrant(h, sessions);
});
after(async () => {
  await h?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Does the cluster answer an SSLRequest with `S`? */
async function offersTls(): Promise<boolean> {
  try {
    const socket = await openUpstreamSocket(
      { host: '127.0.0.1', port: cluster?.port ?? 0, tls: 'require' },
      2000,
    );
    socket.destroy();
    return true;
  } catch (error) {
    if (/does not accept TLS/.test((error as Error).message)) return false;
    throw error;
  }
}

/** Changes `ssl` on the running cluster (over plain TCP, which its pg_hba allows) and waits for it. */
async function setServerTls(on: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: cluster?.adminUrl });
  await admin.connect();
  try {
    await admin.query(on ? 'alter system reset ssl' : 'alter system set ssl = off');
    await admin.query('select pg_reload_conf()');
  } finally {
    await admin.end();
  }
  await waitFor(`ssl ${on ? 'on' : 'off'}`, async () => ((await offersTls()) === on ? true : undefined));
}

describe('gateway TLS upstream', () => {
  test('sslmode=verify-full with the CA: the session runs over TLS to the database', async (t) => {
    if (skip) return t.skip(skip);
    const c = await connectViaGateway(viaGateway(h, 'demo:alice', grant.token));
    const row = (
      await c.query('select ssl, current_user as login from pg_stat_ssl where pid = pg_backend_pid()')
    ).rows[0];
    assert.equal(row.ssl, true);
    assert.equal(row.login, grant.login);
    await c.end();
  });

  test('verify-full refuses a certificate that does not chain to the trusted CAs; verify-ca takes the CA', async (t) => {
    if (skip) return t.skip(skip);
    const port = cluster?.port ?? 0;
    await assert.rejects(
      openUpstreamSocket({ host: '127.0.0.1', port, tls: 'verify-full' }, 5000),
      /TLS to the database failed: self[- ]signed certificate/,
    );
    const ca = readFileSync(certFile, 'utf8');
    const socket = await openUpstreamSocket({ host: '127.0.0.1', port, tls: 'verify-ca', ca }, 5000);
    socket.destroy();
  });

  test('a server that stops offering TLS is refused (08001), nothing is sent in the clear', async (t) => {
    if (skip) return t.skip(skip);
    await setServerTls(false);
    try {
      const error = await rejection(connectViaGateway(viaGateway(h, 'demo:alice', grant.token)));
      assert.equal(error.code, '08001');
      assert.match(error.message, /the database does not accept TLS, which its admin URL requires/);
      assert.equal(await backendsOf(cluster?.adminUrl ?? '', grant.login), 0);
    } finally {
      await setServerTls(true);
    }
  });

  describe('channel binding (SCRAM-SHA-256-PLUS)', () => {
    const login = {
      username: 'cb_login',
      password: 'cb-password-1',
      database: 'postgres',
      parameters: new Map(),
    };
    const target = (port: number, channelBinding: 'disable' | 'prefer' | 'require') => ({
      host: '127.0.0.1',
      port,
      tls: 'require' as const,
      acceptedAuth: new Set(['scram-sha-256'] as const),
      channelBinding,
    });
    let relay: { port: number; close: () => void } | undefined;

    before(async () => {
      if (!cluster) return;
      const admin = new pg.Client({ connectionString: cluster.adminUrl });
      await admin.connect();
      try {
        await admin.query(`create role ${login.username} login password '${login.password}'`);
      } finally {
        await admin.end();
      }
      relay = await tlsTerminatingRelay(cluster.port, createSelfSignedCertificate(dir, 'relay'));
    });
    after(() => relay?.close());

    test('against the real server, a login bound to its certificate succeeds (channel_binding=require)', async (t) => {
      if (skip) return t.skip(skip);
      const session = await connectUpstream(target(cluster?.port ?? 0, 'require'), login, {
        timeoutMs: 5000,
      });
      session.socket.destroy();
    });

    test('a relay that terminates TLS with its own certificate cannot pass the login on (prefer)', async (t) => {
      if (skip) return t.skip(skip);
      const port = relay?.port ?? 0;
      // Unbound, the relay gets a working session: the attack channel binding stops.
      const unbound = await connectUpstream(target(port, 'disable'), login, { timeoutMs: 5000 });
      unbound.socket.destroy();
      const error = await rejection(connectUpstream(target(port, 'prefer'), login, { timeoutMs: 5000 }));
      assert.match(error.message, /channel binding/i);
    });
  });
});
