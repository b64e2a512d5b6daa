/**
 * End to end, through the real HTTP API, a real OIDC provider and a real PostgreSQL target with
 * scram-sha-256: sign-in → request → approval → real access → expiry/revocation → audit verify.
 * Runs on SQLite and on PostgreSQL storage.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { cliArgv } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { waitFor } from '../../test-support/wait-for.js';

const run = promisify(execFile);

async function connect(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

let cluster: ScramCluster | undefined;
let clusterSkip: string | undefined;

before(async () => {
  const started = await startScramClusterOrSkip();
  cluster = started.cluster;
  clusterSkip = started.skip;
});
after(async () => {
  await cluster?.stop();
});

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`access flow on ${storage} storage`, () => {
    let h: Harness;
    const tokens: Record<string, string> = {};
    let skip: string | undefined;

    before(async () => {
      skip = clusterSkip ?? (storage === 'postgres' ? await postgresSkipReason() : undefined);
      if (skip || !cluster) return;
      h = await startHarness({ storage, targetAdminUrl: cluster.adminUrl });
      for (const user of ['alice', 'bob', 'carol', 'dave']) tokens[user] = await h.login(user);
    });
    after(async () => {
      await h?.close();
    });

    test('request → approval → real PostgreSQL access → expiry kills the session and drops the login', async (t) => {
      if (skip) return t.skip(skip);
      const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
        resource: 'demo-db',
        role: 'readonly',
        duration: 3,
        reason: 'investigate orders',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.state, 'pending');
      assert.equal(created.body.approvals_required, 1);
      assert.equal(created.body.policy_id, 'eng-db-readonly');
      assert.equal(created.body.grant_id, null);
      const id = created.body.id as string;

      // No login exists before approval.
      const admin = await connect(cluster?.adminUrl ?? '');
      const logins = async () =>
        (await admin.query("select rolname from pg_roles where rolname like 'pc\\_%'")).rows;
      assert.deepEqual(await logins(), []);

      const self = await h.api(tokens.alice ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(self.status, 403);
      assert.equal(self.body.code, 'self_review');
      const outsider = await h.api(tokens.dave ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(outsider.status, 403);
      assert.equal(outsider.body.code, 'not_an_approver');

      await sleep(1200); // time spent waiting for approval must not shorten the grant
      const approved = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/approve`, {
        reason: 'ok',
      });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'active');
      const activatedAt = Date.parse(approved.body.activated_at as string);
      const expiresAt = Date.parse(approved.body.expires_at as string);
      assert.equal(expiresAt - activatedAt, 3000);
      assert.ok(activatedAt - Date.parse(approved.body.created_at as string) >= 1200);
      const grantId = approved.body.grant_id as string;

      const notMine = await h.api(tokens.bob ?? '', 'GET', `/api/v1/grants/${grantId}/credentials`);
      assert.equal(notMine.status, 404);
      const creds = await h.api(tokens.alice ?? '', 'GET', `/api/v1/grants/${grantId}/credentials`);
      assert.equal(creds.status, 200);
      const credentials = creds.body.credentials as Record<string, string>;
      const connectionString = credentials.connection_string ?? '';

      const wrong = new URL(connectionString);
      wrong.password = 'not-the-password';
      await assert.rejects(connect(wrong.toString()), /password authentication failed/);

      const session = await connect(connectionString);
      const rows = await session.query('select name from items order by id');
      assert.deepEqual(
        rows.rows.map((r) => r.name),
        ['first', 'second'],
      );
      await assert.rejects(session.query("insert into items (name) values ('nope')"), /permission denied/);

      // The deadline passes: the open session is killed and the login is gone within a second.
      const grant = await waitFor('revocation', async () => {
        const g = await h.api(tokens.alice ?? '', 'GET', `/api/v1/grants/${grantId}`);
        return g.body.status === 'revoked' ? g.body : undefined;
      });
      const lag = Date.parse(grant.revoked_at as string) - expiresAt;
      assert.ok(lag >= 0 && lag < 1000, `revoked ${lag} ms after expires_at`);
      await assert.rejects(session.query('select 1'));
      await assert.rejects(connect(connectionString));
      assert.deepEqual(await logins(), []);
      const request = await h.api(tokens.alice ?? '', 'GET', `/api/v1/requests/${id}`);
      assert.equal(request.body.state, 'expired');
      await admin.end();
    });

    test('tokens: EdDSA, exp within the grant, introspection inactive the moment the grant ends', async (t) => {
      if (skip) return t.skip(skip);
      const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
        resource: 'demo-api',
        role: 'reader',
        duration: '10m',
        reason: 'read orders',
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.state, 'active', 'auto-approved by policy');
      const grantId = created.body.grant_id as string;
      const issued = await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`);
      assert.equal(issued.status, 200);
      const token = issued.body.access_token as string;
      const header = decodeProtectedHeader(token);
      const claims = decodeJwt(token);
      assert.equal(header.alg, 'EdDSA');
      const jwks = await h.api(null, 'GET', '/.well-known/jwks.json');
      assert.ok((jwks.body.keys as { kid: string }[]).some((k) => k.kid === header.kid));
      assert.equal(claims.grant_id, grantId);
      assert.equal(claims.role, 'reader');
      assert.ok(claims.jti);
      assert.ok((claims.exp ?? 0) * 1000 <= Date.parse(created.body.expires_at as string));

      const active = await h.api(null, 'POST', '/api/v1/introspect', `token=${token}`, {
        'content-type': 'application/x-www-form-urlencoded',
      });
      assert.equal(active.body.active, true);
      assert.equal(active.body.grant_id, grantId);

      const released = await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/revoke`, {
        reason: 'done early',
      });
      assert.equal(released.status, 200);
      const inactive = await h.api(null, 'POST', '/api/v1/introspect', { token });
      assert.deepEqual(inactive.body, { active: false });
      const again = await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/revoke`, {});
      assert.equal(again.status, 200, 'revocation is idempotent');
      const refused = await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`);
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
    });

    test('keys rotate: tokens already issued stay valid, new tokens use the new key', async (t) => {
      if (skip) return t.skip(skip);
      const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
        resource: 'demo-api',
        role: 'reader',
        duration: '10m',
        reason: 'rotation',
      });
      const grantId = created.body.grant_id as string;
      const before = (await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`)).body
        .access_token as string;
      await run(process.execPath, cliArgv(['keys', 'rotate', '--config', h.configPath]), {
        env: { ...process.env, ...h.env },
      });
      h.portcullis.keys.invalidate(); // as the 5-second refresh would
      const after = (await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`)).body
        .access_token as string;
      assert.notEqual(decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid);
      for (const token of [before, after]) {
        const answer = await h.api(null, 'POST', '/api/v1/introspect', { token });
        assert.equal(answer.body.active, true);
      }
      const jwks = await h.api(null, 'GET', '/.well-known/jwks.json');
      const kids = (jwks.body.keys as { kid: string }[]).map((k) => k.kid);
      assert.deepEqual(kids, [decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid]);
      // A session token signed by the old key keeps working too.
      assert.equal((await h.api(tokens.alice ?? '', 'GET', '/api/v1/me')).status, 200);
    });

    test('two overlapping grants of the same role do not cut each other short', async (t) => {
      if (skip) return t.skip(skip);
      const grantIds: string[] = [];
      for (let i = 0; i < 2; i++) {
        const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
          resource: 'demo-db',
          role: 'readonly',
          duration: '30m',
          reason: `overlap ${i}`,
        });
        const approved = await h.api(
          tokens.bob ?? '',
          'POST',
          `/api/v1/requests/${created.body.id}/approve`,
          {},
        );
        assert.equal(approved.body.state, 'active');
        grantIds.push(approved.body.grant_id as string);
      }
      const [first, second] = grantIds;
      const creds = await h.api(tokens.alice ?? '', 'GET', `/api/v1/grants/${second}/credentials`);
      const secondSession = await connect(
        (creds.body.credentials as Record<string, string>).connection_string ?? '',
      );
      const revoked = await h.api(tokens.carol ?? '', 'POST', `/api/v1/grants/${first}/revoke`, {
        reason: 'owner ends it',
      });
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.status, 'revoked');
      assert.equal((await secondSession.query('select count(*)::int as n from items')).rows[0].n, 2);
      const fresh = await connect((creds.body.credentials as Record<string, string>).connection_string ?? '');
      await fresh.end();
      await secondSession.end();
      const notOwner = await h.api(tokens.bob ?? '', 'POST', `/api/v1/grants/${second}/revoke`, {});
      assert.equal(notOwner.status, 403);
      const admin = await h.api(tokens.dave ?? '', 'POST', `/api/v1/grants/${second}/revoke`, {});
      assert.equal(admin.status, 200);
    });

    test('the audit export verifies offline and tampering is pinpointed', async (t) => {
      if (skip) return t.skip(skip);
      const denied = await h.api(tokens.alice ?? '', 'GET', '/api/v1/audit/export');
      assert.equal(denied.status, 403);
      const response = await fetch(`${h.url}/api/v1/audit/export`, {
        headers: { authorization: `Bearer ${tokens.dave}` },
      });
      assert.equal(response.status, 200);
      const text = await response.text();
      const exportFile = join(h.dir, 'audit.jsonl');
      writeFileSync(exportFile, text);
      const keys = await h.api(null, 'GET', '/.well-known/portcullis-audit-keys.json');
      const keyFile = join(h.dir, 'audit-keys.json');
      writeFileSync(keyFile, JSON.stringify(keys.body));

      const types = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; type?: string });
      for (const type of [
        'config.loaded',
        'auth.login',
        'request.created',
        'request.review_rejected',
        'request.approved',
        'grant.activated',
        'credentials.shown',
        'token.issued',
        'grant.expired',
        'grant.released',
        'grant.revoked',
        'grant.revocation_completed',
      ]) {
        assert.ok(
          types.some((e) => e.type === type),
          `audit has ${type}`,
        );
      }
      const ok = await run(process.execPath, cliArgv(['audit', 'verify', exportFile, '--key', keyFile]));
      assert.match(ok.stdout, /intact|verified|ok/i);

      const lines = text.split('\n');
      const target = lines.findIndex((l) => l.includes('"type":"request.approved"'));
      lines[target] = (lines[target] ?? '').replace('"actor":"demo:', '"actor":"evil:');
      const tampered = join(h.dir, 'tampered.jsonl');
      writeFileSync(tampered, lines.join('\n'));
      const seq = (JSON.parse(text.split('\n')[target] ?? '{}') as { seq: number }).seq;
      await assert.rejects(
        run(process.execPath, cliArgv(['audit', 'verify', tampered, '--key', keyFile])),
        (error: unknown) => {
          const e = error as { code: number; stdout: string; stderr: string };
          assert.equal(e.code, 10);
          assert.match(`${e.stdout}${e.stderr}`, new RegExp(`\\b${seq}\\b`));
          return true;
        },
      );
    });
  });
}
