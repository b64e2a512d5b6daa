/**
 * Two revocations of one grant at once (a release repeated while the first is still taking the
 * login back, or the expiry loop retrying while a release runs) converge on one outcome: the
 * grant is revoked once, with one `grant.revocation_completed` event and no spurious failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';

describe('concurrent revocations of one grant', () => {
  let h: Harness;
  let skip: string | undefined;
  let superuser: pg.Client;

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    h = await startHarness({ storage: 'sqlite', targetAdminUrl: sharedPostgresAdminUrl });
    superuser = new pg.Client({ connectionString: sharedPostgresAdminUrl });
    await superuser.connect();
  });
  after(async () => {
    await superuser?.end();
    await h?.close();
  });

  test('complete once', async (t) => {
    if (skip) return t.skip(skip);
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '10m',
      reason: 'concurrent revocation test',
    });
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const grantId = approved.body.grant_id as string;
    const grant = await h.portcullis.store.grants.get(grantId);
    const login = String(grant?.artefacts.login);

    // Hold the login's catalogue row, so both revocations wait at the same step.
    await superuser.query('begin');
    await superuser.query(`alter role ${login} connection limit 2`);
    let first: Promise<{ status: number; body: Record<string, unknown> }> | undefined;
    let second: Promise<{ status: number; body: Record<string, unknown> }> | undefined;
    try {
      first = h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const r = await h.api(alice, 'GET', `/api/v1/requests/${created.body.id}`);
        if (r.body.state === 'revoked') break;
        await sleep(20);
      }
      second = h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done, again' });
      await sleep(300);
    } finally {
      await superuser.query('rollback');
    }
    const answers = await Promise.all([first, second]);
    for (const answer of answers) {
      assert.equal(answer?.status, 200, JSON.stringify(answer?.body));
      assert.equal(answer?.body.status, 'revoked', JSON.stringify(answer?.body));
    }
    await sleep(500); // let the expiry loop have its say too
    assert.equal((await h.portcullis.store.grants.get(grantId))?.status, 'revoked');
    const events = (await h.portcullis.store.auditLog.read(0, 10_000)).filter((e) => e.grantId === grantId);
    const types = events.map((e) => e.type);
    assert.equal(types.filter((x) => x === 'grant.revocation_completed').length, 1, types.join());
    assert.equal(types.filter((x) => x === 'grant.revocation_failed').length, 0, types.join());
    const left = await superuser.query('select 1 from pg_roles where rolname = $1', [login]);
    assert.equal(left.rowCount, 0);
  });
});
