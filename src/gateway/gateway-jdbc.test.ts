/**
 * The gateway with a JDBC client: pgjdbc (Debian's libpostgresql-jdbc-java) over TLS with
 * sslmode=verify-full, driven by test-support/jdbc/GatewayJdbcProbe.java. It covers what JDBC does
 * differently from libpq and node-postgres: named server-side statements after prepareThreshold,
 * cursor reads in pieces (Execute with a row limit, PortalSuspended), pipelined batches, COPY
 * through CopyManager, its cancel path, catalog queries of DatabaseMetaData, and its startup
 * parameters.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  recordedStatements,
} from '../../test-support/gateway-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';

const run = promisify(execFile);
const probe = fileURLToPath(new URL('../../test-support/jdbc/GatewayJdbcProbe.java', import.meta.url));
const jar = process.env.PORTCULLIS_PGJDBC_JAR ?? '/usr/share/java/postgresql.jar';

let cluster: ScramCluster | undefined;
let skip: string | undefined;
let h: Harness;
let grant: GatewayGrant;
let certFile: string;
const sessions: Record<string, string> = {};
const dir = mkdtempSync(join(tmpdir(), 'portcullis-gateway-jdbc-'));

/** Why the JDBC tests cannot run here, or undefined; with CI=true a missing client is a failure. */
async function jdbcSkipReason(): Promise<string | undefined> {
  const missing: string[] = [];
  if (!existsSync(jar)) missing.push(`the pgjdbc jar (${jar})`);
  try {
    // The source launcher (java File.java) compiles with the JDK's compiler module.
    await run('javac', ['-J-XX:-UsePerfData', '-version']);
  } catch {
    missing.push('a JDK (javac)');
  }
  if (missing.length === 0) return undefined;
  const reason = `${missing.join(' and ')} not found: apt-get install libpostgresql-jdbc-java default-jdk-headless`;
  if (process.env.CI === 'true') throw new Error(reason);
  return reason;
}

before(async () => {
  skip = await jdbcSkipReason();
  if (skip) return;
  const started = await startScramClusterOrSkip();
  cluster = started.cluster;
  skip = started.skip;
  if (!cluster) return;
  certFile = createSelfSignedCertificate(dir).certFile;
  h = await startHarness({
    storage: 'sqlite',
    targetAdminUrl: cluster.adminUrl,
    gateway: {
      allow_plaintext_on_loopback: false,
      record_parameters: true,
      tls: { cert: certFile, key: { file: join(dir, 'server.key') } },
    },
  });
  for (const user of ['alice', 'bob', 'carol']) sessions[user] = await h.login(user);
  grant = await liveGrant(h, sessions);
});
after(async () => {
  await h?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function jdbcUrl(sslmode: string): string {
  const port = h.portcullis.gateway?.port;
  const params = new URLSearchParams({ sslmode, ApplicationName: 'jdbc-probe' });
  if (sslmode === 'verify-full') params.set('sslrootcert', certFile);
  return `jdbc:postgresql://127.0.0.1:${port}/demo-db?${params}`;
}

/** Runs the probe and returns its "name<TAB>value" lines as a map. */
async function runProbe(args: readonly string[]): Promise<Map<string, string>> {
  const { stdout } = await run('java', ['-XX:-UsePerfData', '-cp', jar, probe, ...args], { timeout: 60_000 });
  const lines = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) lines.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return lines;
}

describe('gateway with JDBC (pgjdbc)', () => {
  test('verify-full TLS, prepared and named statements, cursor, errors, metadata, cancel', async (t) => {
    if (skip) return t.skip(skip);
    const out = await runProbe([jdbcUrl('verify-full'), grant.grantId, grant.token]);
    assert.equal(out.get('current_user'), grant.login, 'the session runs as the grant login');
    assert.equal(out.get('prepared'), 'first,second,first,second,first,second,first');
    assert.equal(out.get('types'), '42,h\u00e9llo \u2713,true');
    assert.equal(out.get('error_then_recovered'), '22012,7');
    assert.equal(out.get('insert_denied'), '42501');
    assert.equal(out.get('cursor'), '1000,500500');
    assert.equal(out.get('large'), '5000000');
    assert.equal(out.get('metadata'), 'items');
    const [cancelState, cancelMs] = (out.get('cancel') ?? '').split(',');
    assert.equal(cancelState, '57014', 'pg_sleep(30) cancelled through the gateway');
    assert.ok(Number(cancelMs) < 10_000, `cancelled after ${cancelMs} ms`);
    assert.equal(out.get('after_cancel'), 'still open');
    assert.equal(out.get('closed'), 'ok');
    assert.equal(out.get('cancel_error'), undefined);

    const started = (await gatewayEvents(h, 'gateway.session_started')).filter(
      (event) => event.grantId === grant.grantId,
    );
    assert.equal(started.at(-1)?.data.tls, true);
    const session = started.at(-1)?.data.session;
    const statements = (await recordedStatements(h)).filter((s) => s.data.session === session);
    const prepared = statements.filter(
      (s) => s.data.kind === 'execute' && s.data.sql === 'select name from items where id = $1',
    );
    assert.equal(prepared.length, 7, 'each execution is one record');
    // pgjdbc sends setInt in binary; the record shows the number, not base64.
    assert.deepEqual(
      prepared.map((s) => s.data.parameters),
      [['1'], ['2'], ['1'], ['2'], ['1'], ['2'], ['1']],
    );
    const typed = statements.find(
      (s) => s.data.kind === 'execute' && s.data.sql === 'select $1::int4 + 1, $2::text, now() is not null',
    );
    assert.deepEqual(typed?.data.parameters, ['41', 'h\u00e9llo \u2713']);
    assert.ok(
      prepared.some((s) => typeof s.data.statement === 'string' && s.data.statement.startsWith('S_')),
      'pgjdbc switched to a named server-side statement, and the record still names its SQL',
    );
    const cursor = statements.find(
      (s) => s.data.kind === 'execute' && s.data.sql === 'select g from generate_series(1, 1000) g',
    );
    assert.equal(cursor?.data.maxRows, 50, 'the cursor read is recorded with its row limit');
    assert.ok(statements.some((s) => s.data.sql === 'select pg_sleep(30)'));
    assert.ok(statements.every((s) => s.actor === 'demo:alice' && s.grantId === grant.grantId));
    const ended = (await gatewayEvents(h, 'gateway.session_ended')).filter((e) => e.data.session === session);
    assert.equal(ended.length, 1);
  });

  test('a readwrite grant: a pipelined batch insert, COPY in and COPY out, each recorded', async (t) => {
    if (skip) return t.skip(skip);
    const writer = await liveGrant(h, sessions, 600, 'readwrite');
    const out = await runProbe([jdbcUrl('verify-full'), writer.grantId, writer.token, 'write']);
    assert.equal(out.get('batch'), '5');
    assert.equal(out.get('copy_in'), '1000');
    assert.equal(out.get('copy_out'), '1000,true', 'COPY OUT returns exactly what COPY IN sent');
    assert.equal(out.get('batch_rows'), '5');
    assert.equal(out.get('closed'), 'ok');

    const statements = (await recordedStatements(h)).filter((s) => s.grantId === writer.grantId);
    const inserts = statements.filter(
      (s) => s.data.kind === 'execute' && s.data.sql === 'insert into items (name) values ($1)',
    );
    assert.deepEqual(
      inserts.map((s) => s.data.parameters),
      [1, 2, 3, 4, 5].map((i) => [`batch-${i}`]),
    );
    assert.ok(statements.some((s) => s.data.sql === 'COPY items (name) FROM STDIN'));
    assert.ok(statements.some((s) => String(s.data.sql).startsWith('COPY (select name from items')));
    // Numbered without gaps within the session, whatever the batching.
    const numbers = statements.map((s) => s.number);
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
    );
  });

  test('without TLS pgjdbc is refused before it sends the token: 28000', async (t) => {
    if (skip) return t.skip(skip);
    const out = await runProbe([jdbcUrl('disable'), grant.grantId, grant.token, 'refusal']);
    const [state, message] = (out.get('refused') ?? '').split('\t');
    assert.equal(state, '28000');
    assert.match(message ?? '', /requires TLS/);
  });

  test('a wrong token is refused with 28P01 over TLS', async (t) => {
    if (skip) return t.skip(skip);
    const out = await runProbe([jdbcUrl('verify-full'), grant.grantId, `${grant.token}x`, 'refusal']);
    assert.equal(out.get('refused')?.split('\t')[0], '28P01');
  });
});
