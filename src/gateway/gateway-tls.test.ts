/**
 * The gateway with TLS: psql with sslmode=require logs in over TLS; without TLS the gateway
 * (plaintext not allowed) refuses before asking for the token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  connectViaGateway,
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  recordedStatements,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';

const run = promisify(execFile);

let cluster: ScramCluster | undefined;
let skip: string | undefined;
let h: Harness;
let grant: GatewayGrant;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-gateway-tls-'));

before(async () => {
  const started = await startScramClusterOrSkip();
  cluster = started.cluster;
  skip = started.skip;
  if (!cluster) return;
  const { certFile, keyFile } = createSelfSignedCertificate(dir);
  h = await startHarness({
    storage: 'sqlite',
    targetAdminUrl: cluster.adminUrl,
    gateway: {
      allow_plaintext_on_loopback: false,
      tls: { cert: certFile, key: { file: keyFile } },
    },
  });
  const sessions: Record<string, string> = {};
  for (const user of ['alice', 'bob']) sessions[user] = await h.login(user);
  grant = await liveGrant(h, sessions);
});
after(async () => {
  await h?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway with TLS', () => {
  test('psql sslmode=require logs in over TLS', async (t) => {
    if (skip) return t.skip(skip);
    const { stdout } = await run('psql', ['-XAt', '-c', 'select count(*) from items'], {
      env: {
        ...process.env,
        PGHOST: '127.0.0.1',
        PGPORT: String(h.portcullis.gateway?.port),
        PGUSER: grant.grantId,
        PGDATABASE: 'demo-db',
        PGPASSWORD: grant.token,
        PGSSLMODE: 'require',
      },
    });
    assert.equal(stdout, '2\n');
    const started = await gatewayEvents(h, 'gateway.session_started');
    assert.equal(started.at(-1)?.data.tls, true);
  });

  test('without TLS the token is never asked for: 28000', async (t) => {
    if (skip) return t.skip(skip);
    const error = await rejection(connectViaGateway(viaGateway(h, 'demo:alice', grant.token)));
    assert.equal(error.code, '28000');
    assert.match(error.message, /requires TLS/);
  });

  test('statements are recorded without parameters unless configured', async (t) => {
    if (skip) return t.skip(skip);
    const c = await connectViaGateway({
      ...viaGateway(h, 'demo:alice', grant.token),
      ssl: { rejectUnauthorized: false },
    });
    await c.query('select $1::text as s', ['not recorded']);
    await c.end();
    const execute = (await recordedStatements(h)).find(
      (e) => e.data.kind === 'execute' && e.data.sql === 'select $1::text as s',
    );
    assert.equal(execute?.data.kind, 'execute');
    assert.equal(execute?.data.parameters, undefined);
  });
});
