/**
 * GuardedClient against real servers — a private cluster whose pg_hba asks a login for its
 * password in cleartext, TLS with a self-signed certificate, a TLS-terminating machine in the
 * middle, the shared trust server — and against fake servers that phish for the password or cut
 * SCRAM short. Each refusal has a plain node-postgres control beside it, which shows what would
 * have happened without the guard.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { rejectsWith } from '../../test-support/assertions.js';
import { fakePostgresServer } from '../../test-support/fake-postgres-server.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import {
  createSelfSignedCertificate,
  type SelfSignedCertificate,
} from '../../test-support/self-signed-certificate.js';
import { tlsTerminatingRelay } from '../../test-support/tls-terminating-relay.js';
import { openStore } from '../storage/open-store.js';
import { GuardedClient } from './guarded-client.js';

const password = 'the-admin-password';

async function login(connectionString: string): Promise<string> {
  const client = new GuardedClient({ connectionString, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ who: string }>('select current_user as who');
    return rows[0]?.who ?? '';
  } finally {
    await client.end().catch(() => {});
  }
}

async function plainLogin(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } finally {
    await client.end().catch(() => {});
  }
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-guarded-client-'));
let serverCertificate: SelfSignedCertificate;
let relayCertificate: SelfSignedCertificate;
let cluster: ScramCluster | undefined;
let skip: string | undefined;

before(async () => {
  serverCertificate = createSelfSignedCertificate(dir, 'server');
  relayCertificate = createSelfSignedCertificate(dir, 'relay');
  const started = await startScramClusterOrSkip({
    ssl: { certFile: serverCertificate.certFile, keyFile: serverCertificate.keyFile },
    otherRolesAuth: 'password',
  });
  cluster = started.cluster;
  skip = started.skip;
  if (!cluster) return;
  const admin = new pg.Client({ connectionString: cluster.adminUrl });
  await admin.connect();
  await admin.query(`create role cleartext_admin login password '${password}'`);
  await admin.end();
});

after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A URL of the private cluster: `user` with its password, and `query`. */
function clusterUrl(user: 'postgres' | 'cleartext_admin', query: string, port = cluster?.port): string {
  const secret = user === 'postgres' ? new URL(cluster?.adminUrl ?? 'postgres://x').password : password;
  return `postgres://${user}:${secret}@127.0.0.1:${port}/postgres?${query}`;
}

const verifyFull = (certFile: string) => `sslmode=verify-full&sslrootcert=${encodeURIComponent(certFile)}`;

describe('a server that asks for the password in cleartext', () => {
  test('gets nothing over plain TCP or unchecked TLS, by default', async (t) => {
    if (skip) return t.skip(skip);
    for (const query of ['sslmode=disable', 'sslmode=require&uselibpqcompat=true']) {
      const error = await rejectsWith(login(clusterUrl('cleartext_admin', query)), 'database_auth_refused');
      assert.match(error.message, /the server asks for the password in cleartext, and require_auth allows/);
      assert.match(error.message, /goes only to a server whose certificate is checked/);
    }
  });

  test('gets it once TLS has proved who the server is', async (t) => {
    if (skip) return t.skip(skip);
    const url = clusterUrl('cleartext_admin', verifyFull(serverCertificate.certFile));
    assert.equal(await login(url), 'cleartext_admin');
    assert.equal(await login(`${url}&require_auth=password`), 'cleartext_admin');
    await rejectsWith(login(`${url}&require_auth=scram-sha-256`), 'database_auth_refused');
  });

  test('a phishing server receives no password; without the guard it would', async () => {
    const phisher = await fakePostgresServer({ login: 'cleartext' });
    try {
      const url = `postgres://admin:${password}@127.0.0.1:${phisher.port}/postgres`;
      await rejectsWith(login(url), 'database_auth_refused');
      assert.equal(phisher.received().length, 0);
      await plainLogin(url).catch(() => {});
      assert.ok(phisher.received().includes(password), 'the control: node-postgres alone sends it');
    } finally {
      await phisher.close();
    }
  });

  test('an MD5 request is answered by default and refused when require_auth excludes it', async () => {
    const phisher = await fakePostgresServer({ login: 'md5' });
    try {
      const url = `postgres://admin:${password}@127.0.0.1:${phisher.port}/postgres`;
      await rejectsWith(login(`${url}?require_auth=scram-sha-256`), 'database_auth_refused');
      assert.equal(phisher.received().length, 0);
      const client = new GuardedClient({ connectionString: url, connectionTimeoutMillis: 300 });
      client.on('error', () => {});
      await client.connect().catch(() => {}); // the fake never answers the hash: a timeout
      await client.end().catch(() => {});
      assert.equal(phisher.received()[0], 0x70, 'a PasswordMessage with the MD5 hash was sent');
    } finally {
      await phisher.close();
    }
  });
});

describe('SCRAM', () => {
  test('a server that skips its proof is refused; node-postgres alone would carry on', async () => {
    const impostor = await fakePostgresServer({ login: 'scram-without-proof' });
    try {
      const url = `postgres://admin:${password}@127.0.0.1:${impostor.port}/postgres`;
      const error = await rejectsWith(login(url), 'database_auth_refused');
      assert.match(error.message, /ended the SCRAM exchange without proving it knows the password/);
      await plainLogin(url); // the control: connects
    } finally {
      await impostor.close();
    }
  });

  test('channel_binding=require logs in over TLS to the real server', async (t) => {
    if (skip) return t.skip(skip);
    const url = clusterUrl('postgres', `${verifyFull(serverCertificate.certFile)}&channel_binding=require`);
    assert.equal(await login(url), 'postgres');
  });

  test('channel_binding=require refuses a server that offers no SCRAM-SHA-256-PLUS', async () => {
    const server = await fakePostgresServer({ login: 'scram-only', tls: serverCertificate });
    try {
      const url = `postgres://admin:${password}@127.0.0.1:${server.port}/postgres?${verifyFull(serverCertificate.certFile)}&channel_binding=require`;
      const error = await rejectsWith(login(url), 'database_auth_refused');
      assert.match(error.message, /offers no SCRAM-SHA-256-PLUS/);
      assert.equal(server.received().length, 0);
    } finally {
      await server.close();
    }
  });

  test('a machine in the middle with a certificate the client trusts is caught by channel binding', async (t) => {
    if (skip) return t.skip(skip);
    const relay = await tlsTerminatingRelay(cluster?.port ?? 0, relayCertificate);
    try {
      const viaRelay = (channelBinding: string) =>
        clusterUrl(
          'postgres',
          `${verifyFull(relayCertificate.certFile)}&channel_binding=${channelBinding}`,
          relay.port,
        );
      // The server compares the binding with its own certificate's and ends the login.
      const caught = (error: { message?: string; code?: string }) =>
        /channel binding check failed/.test(error.message ?? '') && error.code === '28000';
      await assert.rejects(login(viaRelay('prefer')), caught);
      await assert.rejects(login(viaRelay('require')), caught);
      // The control: without channel binding the relay's login succeeds.
      assert.equal(await login(viaRelay('disable')), 'postgres');
    } finally {
      relay.close();
    }
  });
});

describe('a server that asks for nothing', () => {
  test('is accepted by default, refused when require_auth or channel_binding=require wants more', async (t) => {
    const reason = await postgresSkipReason();
    if (reason) return t.skip(reason);
    const url = new URL(sharedPostgresAdminUrl);
    url.searchParams.set('sslmode', 'disable');
    assert.notEqual(await login(url.toString()), '');
    url.searchParams.set('require_auth', 'scram-sha-256');
    const error = await rejectsWith(login(url.toString()), 'database_auth_refused');
    assert.match(
      error.message,
      /the server asks for no authentication, and require_auth allows scram-sha-256/,
    );

    const trusting = await fakePostgresServer({ login: 'trust', tls: serverCertificate });
    try {
      const bound = `postgres://admin:${password}@127.0.0.1:${trusting.port}/postgres?${verifyFull(serverCertificate.certFile)}&channel_binding=require`;
      const unbound = await rejectsWith(login(bound), 'database_auth_refused');
      assert.match(
        unbound.message,
        /channel_binding=require, but the server logged in without authentication/,
      );
    } finally {
      await trusting.close();
    }
  });

  test("Portcullis's storage refuses to open on such a server when its URL requires SCRAM", async (t) => {
    const reason = await postgresSkipReason();
    if (reason) return t.skip(reason);
    const url = new URL(sharedPostgresAdminUrl);
    url.searchParams.set('require_auth', 'scram-sha-256');
    await rejectsWith(openStore(url.toString()), 'database_auth_refused');
    url.searchParams.set('require_auth', 'password');
    const error = await rejectsWith(openStore(url.toString()), 'config_invalid');
    assert.match(error.message, /^storage\.url: require_auth allows a cleartext password/);
  });
});
