/**
 * Two activations of one approved request at once (every replica runs recover() at boot, which
 * activates approved requests another replica may be activating): only the one that claims the
 * activation touches the target, so the password the target has is the one the stored credentials
 * hold. PostgreSQL storage, and a target that only accepts SCRAM passwords.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import pg from 'pg';
import { demoPrincipal } from '../../test-support/demo-principal.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
import { eventsOfRequest } from '../../test-support/requests.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import type { Principal } from '../core/principal.js';

const origin = { sourceIp: '127.0.0.1', userAgent: 'test', channel: 'api' };
const alice = demoPrincipal('alice', ['engineering']);

describe('concurrent activation of one request (PostgreSQL storage)', () => {
  let cluster: ScramCluster | undefined;
  let skip: string | undefined;
  let h: Harness;

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    const started = await startScramClusterOrSkip();
    cluster = started.cluster;
    skip = started.skip;
    if (!cluster) return;
    h = await startHarness({ storage: 'postgres', targetAdminUrl: cluster.adminUrl });
    await h.portcullis.store.principals.upsert(alice, Date.now());
  });
  /**
   * A pending request for demo-db, then approved as by a review whose replica died before activating
   * it; `approvedAgoMs` backdates the approval.
   */
  async function approvedRequest(reason: string, approvedAgoMs?: number) {
    const { access, store } = h.portcullis;
    const request = await access.createRequest(
      alice,
      { resourceId: 'demo-db', role: 'readonly', durationSeconds: 600, reason, ticket: null },
      origin,
    );
    assert.equal(request.state, 'pending');
    const approved = {
      ...request,
      state: 'approved' as const,
      version: request.version + 1,
      ...(approvedAgoMs !== undefined && { updatedAt: Date.now() - approvedAgoMs }),
    };
    assert.ok(await store.requests.update(approved, request.version));
    return request;
  }

  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  test('a second activate() while the first provisions stops without touching the target', async (t) => {
    if (skip || !cluster) return t.skip(skip);
    const { access, store } = h.portcullis;
    const request = await approvedRequest('race');
    const first = access.activate(request.id);
    // As soon as the first has claimed it (its grant row exists), while it provisions.
    while ((await store.grants.getByRequest(request.id)) === undefined) await setImmediate();
    const second = access.activate(request.id);
    const [a, b] = await Promise.all([first, second]);
    assert.ok([a.state, b.state].includes('active'), `${a.state} / ${b.state}`);

    const stored = await store.requests.get(request.id);
    assert.equal(stored?.state, 'active');
    const events = await eventsOfRequest(store, request.id);
    assert.equal(events.filter((e) => e.type === 'grant.activated').length, 1);
    assert.equal(events.filter((e) => e.type === 'grant.failed').length, 0);

    // The stored credentials log in: the target's SCRAM verifier is for the stored password.
    const grant = await store.grants.getByRequest(request.id);
    assert.equal(grant?.status, 'active');
    const credentials = await access.credentials(alice, grant?.id ?? '', origin);
    const session = new pg.Client({ connectionString: credentials.connection_string });
    await session.connect();
    try {
      assert.equal((await session.query('select current_user as u')).rows[0].u, credentials.username);
    } finally {
      await session.end();
    }
  });

  test('an activation whose claim is fresh is left alone by recover(); the next pass does nothing twice', async (t) => {
    if (skip || !cluster) return t.skip(skip);
    const { access, store } = h.portcullis;
    const request = await approvedRequest('recover race');
    // Two replicas booting at once: both recover() the same approved request.
    const [first, second, direct] = await Promise.all([
      access.recover(),
      access.recover(),
      access.activate(request.id),
    ]);
    assert.equal(
      first.activated + second.activated + (direct.state === 'active' ? 1 : 0) >= 1,
      true,
      'someone activated it',
    );
    assert.ok(first.activated + second.activated <= 1, 'recover() counts only what it activated');
    const events = await eventsOfRequest(store, request.id);
    assert.equal(events.filter((e) => e.type === 'grant.activated').length, 1);
    const grant = await store.grants.getByRequest(request.id);
    const credentials = await access.credentials(alice, grant?.id ?? '', origin);
    const session = new pg.Client({ connectionString: credentials.connection_string });
    await session.connect();
    await session.end();
  });

  test("the expiry loop's pass leaves a just-approved request to its approver, and takes an orphaned one", async (t) => {
    if (skip || !cluster) return t.skip(skip);
    const { access, store } = h.portcullis;
    const fresh = (await approvedRequest('fresh', 0)).id;
    const orphaned = (await approvedRequest('orphaned', 60_000)).id;
    await access.resumeActivations();
    assert.equal((await store.requests.get(orphaned))?.state, 'active');
    assert.equal((await store.requests.get(fresh))?.state, 'approved');
    assert.equal(await store.grants.getByRequest(fresh), undefined, 'not even claimed');
  });
});
