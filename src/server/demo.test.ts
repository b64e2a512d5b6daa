/**
 * The `npm start` demo: SQLite, the built-in demo IdP, demo policies, and a real PostgreSQL
 * resource when the local server is reachable — walked through request → approve → use → expiry.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { demoPrincipal } from '../../test-support/demo-principal.js';
import { freePort } from '../../test-support/free-port.js';
import { postgresReachable, postgresSkipReason } from '../../test-support/postgres.js';
import { type RunningDemo, startDemo } from './demo.js';

describe('the demo', () => {
  let demo: RunningDemo;
  let dataDir: string;
  const lines: string[] = [];

  before(async () => {
    await postgresSkipReason(); // in CI, an unreachable PostgreSQL is a failure
    dataDir = mkdtempSync(join(tmpdir(), 'portcullis-demo-'));
    demo = await startDemo({
      port: await freePort(),
      idpPort: await freePort(),
      dataDir,
      log: (l) => lines.push(l),
    });
  });
  after(async () => {
    await demo?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts on SQLite, keeps its secrets private and prints what to do next', async () => {
    const ready = (await fetch(`${demo.url}/readyz`).then((r) => r.json())) as { ready: boolean };
    assert.equal(ready.ready, true);
    assert.equal(statSync(dataDir).mode & 0o077, 0);
    assert.equal(statSync(join(dataDir, 'key-encryption-key')).mode & 0o077, 0);
    assert.ok(statSync(join(dataDir, 'portcullis.db')).isFile());
    const banner = lines.join('\n');
    assert.match(banner, /alice-demo-password/);
    assert.match(banner, /portcullis login/);
    const providers = (await fetch(`${demo.url}/api/v1/auth/providers`).then((r) => r.json())) as {
      providers: { id: string }[];
    };
    assert.deepEqual(
      providers.providers.map((p) => p.id),
      ['demo'],
    );
    assert.equal(demo.postgres, await postgresReachable());
  });

  test('the demo policies let alice get demo-db/readonly with bob approving, and it really works', async (t) => {
    if (!demo.postgres) return t.skip('no local PostgreSQL');
    const access = demo.portcullis.access;
    const store = demo.portcullis.store;
    // Sign-in is covered elsewhere; here the demo users' groups as the demo IdP asserts them.
    const alice = demoPrincipal('alice', ['engineering']);
    const bob = demoPrincipal('bob', ['sre']);
    const origin = { sourceIp: null, userAgent: null, channel: 'cli' };
    // As their sign-in would: the approval re-checks alice's request with her stored groups.
    for (const p of [alice, bob]) await store.principals.upsert(p, Date.now());
    const request = await access.createRequest(
      alice,
      { resourceId: 'demo-db', role: 'readonly', durationSeconds: 60, reason: 'demo tour', ticket: null },
      origin,
    );
    assert.equal(request.state, 'pending');
    const active = await access.review(bob, request.id, 'approve', 'ok', origin);
    assert.equal(active.state, 'active');
    const grant = await store.grants.getByRequest(request.id);
    assert.ok(grant);
    const credentials = await access.credentials(alice, grant.id, origin);
    const client = new pg.Client({ connectionString: credentials.connection_string });
    await client.connect();
    const orders = await client.query('select count(*)::int as n from orders');
    assert.ok(orders.rows[0].n >= 3);
    await client.end();
    await access.revoke(alice, grant.id, 'tour done', origin);
    assert.equal((await store.grants.get(grant.id))?.status, 'revoked');
  });
});
