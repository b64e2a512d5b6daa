/**
 * A requester may withdraw an approved request until it is active (approved → cancelled). When
 * that happens while the provisioner is creating the access, what it created must be taken back:
 * no PostgreSQL login may be left behind for a request that never became active.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { eventsOfRequest } from '../../test-support/requests.js';
import { waitFor } from '../../test-support/wait-for.js';

describe('cancel while access is being provisioned', () => {
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

  test('leaves no login behind and ends the grant, audited', async (t) => {
    if (skip) return t.skip(skip);
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '10m',
      reason: 'cancel race test',
    });
    assert.equal(created.body.state, 'pending', JSON.stringify(created.body));
    const requestId = created.body.id as string;

    // Hold the target database's catalogue row, so provisioning waits at GRANT CONNECT.
    await superuser.query('begin');
    await superuser.query(`grant connect on database ${h.targetDatabase} to app_readonly`);
    let approval: Promise<{ status: number; body: Record<string, unknown> }> | undefined;
    try {
      approval = h.api(bob, 'POST', `/api/v1/requests/${requestId}/approve`, {});
      await waitFor(
        'the approval',
        async () => {
          const r = await h.api(alice, 'GET', `/api/v1/requests/${requestId}`);
          return r.body.state === 'approved' ? true : undefined;
        },
        10_000,
      );
      await sleep(200); // provisioning is now waiting for the lock
      const cancelled = await h.api(alice, 'POST', `/api/v1/requests/${requestId}/cancel`);
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assert.equal(cancelled.body.state, 'cancelled');
    } finally {
      await superuser.query('rollback');
    }
    const approved = await approval;
    assert.ok(approved.status < 500, JSON.stringify(approved.body));

    const store = h.portcullis.store;
    const grant = await store.grants.getByRequest(requestId);
    assert.ok(grant, 'the grant row exists');
    const login = String(grant.artefacts.login);
    const final = await waitFor(
      'the grant to be taken back',
      async () => {
        const g = await store.grants.get(grant.id);
        return g?.status === 'revoked' ? g : undefined;
      },
      10_000,
    );
    assert.equal(final.status, 'revoked');
    const left = await superuser.query('select 1 from pg_roles where rolname = $1', [login]);
    assert.equal(left.rowCount, 0, `login ${login} was left behind`);
    assert.equal((await store.requests.get(requestId))?.state, 'cancelled');
    const events = await eventsOfRequest(store, requestId);
    const types = events.map((e) => e.type);
    assert.ok(types.includes('request.cancelled'), types.join());
    assert.ok(types.includes('grant.failed'), types.join());
    assert.ok(types.includes('grant.revocation_completed'), types.join());
  });
});
