/**
 * `portcullis proxy`: real psql and node-postgres through the local proxy, the real gateway over
 * TLS (its certificate checked), a real scram cluster and the real server. Time is moved with the
 * server's clock, so tokens run out without sleeping.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { startCli } from '../../test-support/cli-entry.js';
import {
  gatewayEvents,
  liveGrant,
  recordedStatements,
  rejection,
} from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';
import { waitFor } from '../../test-support/wait-for.js';
import type { Clock } from '../core/clock.js';
import { encodeStartupMessage } from '../gateway/protocol/index.js';
import { ApiClient } from './api-client.js';
import { CliError } from './cli-error.js';
import { DbProxy } from './db-proxy.js';
import { GatewayCredentialCache, gatewayLoginFrom } from './gateway-credential-cache.js';
import { writeSession } from './session-file.js';

const run = promisify(execFile);

/** The real time plus an offset the tests move forward. */
class OffsetClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

const clock = new OffsetClock();
const dir = mkdtempSync(join(tmpdir(), 'portcullis-proxy-'));
const certificate = createSelfSignedCertificate(dir);
const world = useGatewayWorld({
  users: ['alice', 'bob'],
  harness: {
    targetGatewayOnly: true,
    clock,
    gateway: {
      allow_plaintext_on_loopback: false,
      tls: { cert: certificate.certFile, key: { file: certificate.keyFile } },
    },
  },
});
after(() => rmSync(dir, { recursive: true, force: true }));

const localPassword = 'local-proxy-password-for-tests';
/** Past a 15-minute access token and the 5 s clock tolerance; three jumps stay within the 1 h session. */
const pastATokenLife = 16 * 60_000;

function startProxy(grantId: string, options: { ca?: string; timeoutMs?: number } = {}) {
  const api = new ApiClient({ server: world.h.url, token: world.sessions.alice ?? '' });
  const credentials = new GatewayCredentialCache(
    async () => {
      const answer = await api.get<{ credentials: Record<string, string> }>(
        `/api/v1/grants/${grantId}/credentials`,
      );
      return gatewayLoginFrom(grantId, answer.credentials);
    },
    () => clock.now(),
  );
  const notes: string[] = [];
  const proxy = new DbProxy({
    host: '127.0.0.1',
    port: 0,
    password: localPassword,
    login: (fresh) => credentials.get(fresh),
    tls: options.ca === undefined ? {} : { ca: options.ca },
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    onLoginError: (error) => ({
      message: error instanceof Error ? error.message : String(error),
      final: error instanceof CliError && error.exitCode !== 7,
    }),
    note: (text) => notes.push(text),
  });
  return { proxy, notes };
}

/** A live grant and a started proxy for it, closed after `use`. */
async function withProxy(
  options: { ca?: string; timeoutMs?: number },
  use: (context: {
    grant: Awaited<ReturnType<typeof liveGrant>>;
    proxy: DbProxy;
    port: number;
    notes: string[];
  }) => Promise<void>,
): Promise<void> {
  const grant = await liveGrant(world.h, world.sessions, 3600);
  const { proxy, notes } = startProxy(grant.grantId, options);
  const port = await proxy.listen();
  try {
    await use({ grant, proxy, port, notes });
  } finally {
    await proxy.close();
  }
}

/**
 * A login to the proxy as a client would write it; user and database are the grant's whatever
 * is asked. psql is given `prefer` so that it asks for TLS first and is told `N`.
 */
function localUrl(port: number, password = localPassword, sslmode = 'disable'): string {
  return `postgres://whoever:${encodeURIComponent(password)}@127.0.0.1:${port}/anything?sslmode=${sslmode}`;
}

async function issuedForGateway(grantId: string): Promise<number> {
  const issued = await gatewayEvents(world.h, 'token.issued');
  return issued.filter((e) => e.grantId === grantId && e.data.for === 'gateway_credentials').length;
}

test('psql logs in through the proxy, the gateway over checked TLS; tokens are reused, then renewed', async (t) => {
  if (world.skip) return t.skip(world.skip);
  await withProxy({ ca: certificate.cert }, async ({ grant, proxy, port, notes }) => {
    const psql = (sql: string) =>
      run('psql', ['-XAt', '-c', sql, localUrl(port, localPassword, 'prefer')], {
        env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
      });
    assert.equal((await psql('select current_user')).stdout.trim(), grant.login);
    assert.equal((await psql("select 'second login'")).stdout.trim(), 'second login');
    assert.equal(await issuedForGateway(grant.grantId), 1, 'one token for both logins');
    const statements = await recordedStatements(world.h);
    assert.ok(statements.some((s) => s.grantId === grant.grantId && s.data.sql === 'select current_user'));
    // psql's Terminate passes the proxy: the gateway records a goodbye, not a dropped connection.
    const endings = await waitFor('both sessions to be recorded as ended', async () => {
      const ended = (await gatewayEvents(world.h, 'gateway.session_ended')).filter(
        (e) => e.grantId === grant.grantId,
      );
      return ended.length === 2 ? ended.map((e) => e.reason) : undefined;
    });
    assert.deepEqual(endings, ['client terminated the session', 'client terminated the session']);

    // Sixteen minutes on, the first token (15 minutes) is over: the proxy fetches a new one.
    clock.offsetMs += pastATokenLife;
    assert.equal((await psql("select 'after renewal'")).stdout.trim(), 'after renewal');
    assert.equal(await issuedForGateway(grant.grantId), 2);
    assert.ok(notes.some((n) => /logged in through the gateway/.test(n)));
    assert.ok(
      !notes.some((n) => /eyJ[\w-]+\.[\w-]+\./.test(n) || n.includes(localPassword)),
      'no token or password in the notes',
    );
  });
});

test('a wrong local password is refused before any token is fetched', async (t) => {
  if (world.skip) return t.skip(world.skip);
  await withProxy({ ca: certificate.cert }, async ({ grant, proxy, port }) => {
    const client = new pg.Client({
      connectionString: localUrl(port, 'not-the-password'),
      connectionTimeoutMillis: 5000,
    });
    const error = await rejection(client.connect());
    assert.equal(error.code, '28P01');
    assert.match(error.message, /local Portcullis proxy/);
    assert.equal(await issuedForGateway(grant.grantId), 0);
  });
});

/** Writes `bytes` to the proxy and collects its answer until it closes the connection. */
async function rawExchange(port: number, bytes: Buffer): Promise<{ answer: string; afterMs: number }> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const started = Date.now();
  socket.write(bytes);
  await new Promise((resolve) => socket.once('close', resolve));
  return { answer: Buffer.concat(chunks).toString('latin1'), afterMs: Date.now() - started };
}

test('garbage and a stalled login end only that connection, with a FATAL', async (t) => {
  if (world.skip) return t.skip(world.skip);
  await withProxy({ ca: certificate.cert, timeoutMs: 500 }, async ({ grant, proxy, port }) => {
    const garbage = await rawExchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.match(garbage.answer, /C08P01\0/);
    const stalled = await rawExchange(port, encodeStartupMessage({ user: 'x' }).subarray(0, 10));
    assert.match(stalled.answer, /C08006\0M[^\0]*timed out/);
    assert.ok(stalled.afterMs >= 450, `closed after ${stalled.afterMs} ms`);
    assert.equal(proxy.connectionCount, 0);
    const client = new pg.Client({ connectionString: localUrl(port), connectionTimeoutMillis: 5000 });
    await client.connect();
    assert.equal((await client.query('select 1 as ok')).rows[0].ok, 1);
    await client.end();
    assert.equal(await issuedForGateway(grant.grantId), 1, 'no token was fetched for the bad connections');
  });
});

test("the gateway's certificate is checked: without its CA the proxy refuses to send the token", async (t) => {
  if (world.skip) return t.skip(world.skip);
  await withProxy({}, async ({ grant, port }) => {
    const client = new pg.Client({ connectionString: localUrl(port), connectionTimeoutMillis: 5000 });
    const error = await rejection(client.connect());
    assert.equal(error.code, '08001');
    assert.match(error.message, /TLS to the gateway .* failed: .*self.signed/i);
    const refusals = await gatewayEvents(world.h, 'gateway.admission_refused');
    assert.ok(!refusals.some((e) => e.grantId === grant.grantId), 'the gateway never saw a login');
  });
});

test('cancel and live termination reach the client through the proxy; then the proxy stops', async (t) => {
  if (world.skip) return t.skip(world.skip);
  await withProxy({ ca: certificate.cert }, async ({ grant, proxy, port }) => {
    // psql's Ctrl-C sends the gateway's cancel key to the proxy, which passes it on.
    const sleeping = spawn('psql', [
      '-XAt',
      '-c',
      'select pg_sleep(30)',
      localUrl(port, localPassword, 'prefer'),
    ]);
    let err = '';
    sleeping.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    await waitFor('the session through the proxy', async () =>
      proxy.connectionCount === 1 ? true : undefined,
    );
    await sleep(300);
    sleeping.kill('SIGINT');
    assert.notEqual(await new Promise((resolve) => sleeping.on('close', resolve)), 0);
    assert.match(err, /canceling statement due to user request/);

    // Revoking the grant ends a session open through the proxy with the gateway's FATAL.
    const open = new pg.Client({ connectionString: localUrl(port), connectionTimeoutMillis: 5000 });
    await open.connect();
    const ended = new Promise<Error>((resolve) => open.on('error', resolve));
    const revoked = await world.h.api(
      world.sessions.alice ?? '',
      'POST',
      `/api/v1/grants/${grant.grantId}/revoke`,
      {
        reason: 'proxy test',
      },
    );
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.match((await ended).message, /was released by its holder/);

    // A new login gets the reason, and the proxy stops: no later login could succeed.
    const late = new pg.Client({ connectionString: localUrl(port), connectionTimeoutMillis: 5000 });
    const refused = await rejection(late.connect());
    assert.equal(refused.code, '28000');
    assert.match(refused.message, /not active/);
    assert.match(await proxy.stopped, /not active/);
  });
});

test('`portcullis proxy GRANT`: prints a connection string, renews a refused token, stops on Ctrl-C', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions, 3600);
  const proxy = await startCliProxy(grant.grantId, world.sessions.alice ?? '');
  try {
    assert.equal((await proxy.psql('select current_user')).stdout.trim(), grant.login);
    // The server's time moves past the token the CLI holds; the CLI's own clock does not, so the
    // gateway refuses the cached token and the proxy renews it once.
    clock.offsetMs += pastATokenLife;
    assert.equal((await proxy.psql("select 'renewed'")).stdout.trim(), 'renewed');
    assert.equal(await issuedForGateway(grant.grantId), 2);
  } finally {
    proxy.cli.child.kill('SIGINT');
  }
  assert.equal(await proxy.cli.exited, 0, proxy.cli.stderr());
  assert.match(proxy.cli.stderr(), /SIGINT: the proxy stops/);
});

test('after the CLI session ends, new logins are refused until `portcullis login` again; open sessions go on', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions, 3600);
  const session = await world.h.login('alice');
  const proxy = await startCliProxy(grant.grantId, session);
  const open = new pg.Client({ connectionString: proxy.url, connectionTimeoutMillis: 5000 });
  await open.connect();
  try {
    const out = await world.h.api(session, 'POST', '/api/v1/auth/logout');
    assert.ok(out.status < 300, JSON.stringify(out.body));
    // The cached token runs out; renewing it needs the ended CLI session.
    clock.offsetMs += pastATokenLife;
    const late = new pg.Client({ connectionString: proxy.url, connectionTimeoutMillis: 5000 });
    const refused = await rejection(late.connect());
    assert.equal(refused.code, '28000');
    assert.match(
      refused.message,
      /sign-in has ended: run `portcullis login --server [^`]+`, then connect again/,
    );
    assert.equal((await open.query('select 1 as ok')).rows[0].ok, 1, 'the open session goes on');

    // Signing in again (as `portcullis login` would, into the same home) mends it without a restart.
    await saveSession(proxy.home, await world.h.login('alice'));
    assert.equal((await proxy.psql('select current_user')).stdout.trim(), grant.login);
    assert.doesNotMatch(proxy.cli.stderr(), /No new logins/);
  } finally {
    await open.end();
    proxy.cli.child.kill('SIGINT');
  }
  assert.equal(await proxy.cli.exited, 0, proxy.cli.stderr());
  assert.match(proxy.cli.stderr(), /sign-in has ended/);
});

async function saveSession(home: string, sessionToken: string): Promise<void> {
  await writeSession(home, 'default', {
    server: world.h.url,
    session_token: sessionToken,
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    principal: { id: 'demo:alice', display_name: 'Alice', groups: [] },
  });
}

/** `portcullis proxy GRANT` as a process, signed in with `sessionToken`, once it has printed its string. */
async function startCliProxy(grantId: string, sessionToken: string) {
  const home = mkdtempSync(join(dir, 'home-'));
  await saveSession(home, sessionToken);
  const cli = startCli(['proxy', grantId, '--ca', certificate.certFile], { PORTCULLIS_HOME: home });
  // stdout and stderr are separate pipes: wait for both, in no particular order.
  await waitFor(
    'the connection string on stdout and the note on stderr',
    async () => (cli.stdout().includes('\n') && /Proxying grant/.test(cli.stderr()) ? true : undefined),
    20_000,
  );
  const url = cli.stdout().trim();
  assert.match(
    url,
    new RegExp(`^postgres://${grantId}:[^@]+@127\\.0\\.0\\.1:\\d+/demo-db\\?sslmode=disable$`),
  );
  const psql = (sql: string) =>
    run('psql', ['-XAt', '-c', sql, url], { env: { ...process.env, PGCONNECT_TIMEOUT: '5' } });
  return { cli, url, psql, home };
}
