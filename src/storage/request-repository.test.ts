import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { type AccessRequest, activate, applyReview, cancel, requestStates } from '../core/access-request.js';
import { PortcullisError } from '../core/errors.js';
import { testEpoch, testPrincipal, testRequest } from './test-fixtures.js';

const minute = 60_000;
const bob = testPrincipal('bob', ['sre']);

function approved(request: AccessRequest, at = testEpoch + minute): AccessRequest {
  return applyReview(request, { reviewer: bob, verdict: 'approve', reason: 'ok', policyAllows: true }, at);
}

forEachDialect('RequestRepository', (ctx) => {
  it('stores and reads back every field, JSON columns and nulls included', async () => {
    const request = activate(approved(testRequest('r1')), testEpoch + 2 * minute);
    await ctx.store.requests.insert(request);
    assert.deepEqual(await ctx.store.requests.get('r1'), request);
    assert.deepEqual(await ctx.store.requests.get('r1-missing'), undefined);

    const bare = testRequest('r2', { ticket: null });
    await ctx.store.requests.insert(bare);
    assert.deepEqual(await ctx.store.requests.get('r2'), bare);
  });

  it('refuses a second request with the same id as a conflict', async () => {
    await ctx.store.requests.insert(testRequest('r1'));
    await assert.rejects(
      ctx.store.requests.insert(testRequest('r1')),
      (error: unknown) => error instanceof PortcullisError && error.code === 'conflict',
    );
  });

  it('updates by compare-and-swap on the version', async () => {
    const request = testRequest('r1');
    await ctx.store.requests.insert(request);
    const next = approved(request);
    assert.equal(await ctx.store.requests.update(next, request.version), true);
    assert.deepEqual(await ctx.store.requests.get('r1'), next);

    const stale = cancel(request, testPrincipal('alice'), testEpoch + minute);
    assert.equal(await ctx.store.requests.update(stale, request.version), false);
    assert.deepEqual(await ctx.store.requests.get('r1'), next, 'the losing write changed nothing');
    assert.equal(await ctx.store.requests.update(testRequest('ghost', { version: 2 }), 1), false);
  });

  it('refuses an update that does not move the version forward', async () => {
    const request = testRequest('r1');
    await ctx.store.requests.insert(request);
    await assert.rejects(ctx.store.requests.update(request, request.version), /must be greater/);
  });

  it('lets exactly one of 20 concurrent updates of the same version win', async () => {
    const request = testRequest('r1');
    await ctx.store.requests.insert(request);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ctx.store.transaction(async (tx) => {
          const won = await tx.requests.update({ ...approved(request), endReason: `writer ${i}` }, 1);
          // Hold the row a little, so the others really wait on it (PostgreSQL) or queue (SQLite).
          await new Promise((resolve) => setTimeout(resolve, 5));
          return won;
        }),
      ),
    );
    assert.equal(outcomes.filter(Boolean).length, 1);
    const stored = await ctx.store.requests.get('r1');
    assert.equal(stored?.version, 2);
    assert.equal(stored?.endReason, `writer ${outcomes.indexOf(true)}`);

    const direct = await Promise.all(
      Array.from({ length: 20 }, () => ctx.store.requests.update({ ...approved(request), version: 3 }, 2)),
    );
    assert.equal(direct.filter(Boolean).length, 1, 'also without an explicit transaction');
  });

  it('lists by requester, resource and state, newest first, within the limit', async () => {
    const carol = testPrincipal('carol');
    const requests = [
      testRequest('r1', { createdAt: testEpoch }),
      testRequest('r2', { createdAt: testEpoch + 1, state: 'approved' }),
      testRequest('r3', { createdAt: testEpoch + 2, requesterId: carol.id }),
      testRequest('r4', { createdAt: testEpoch + 3, resourceId: 'staging-db' }),
      testRequest('r5', { createdAt: testEpoch + 4, state: 'denied' }),
    ];
    for (const request of requests) await ctx.store.requests.insert(request);
    const ids = async (filter: Parameters<typeof ctx.store.requests.list>[0]) =>
      (await ctx.store.requests.list(filter)).map((request) => request.id);

    assert.deepEqual(await ids({}), ['r5', 'r4', 'r3', 'r2', 'r1']);
    assert.deepEqual(await ids({ requesterIds: [carol.id] }), ['r3']);
    assert.deepEqual(await ids({ resourceId: 'staging-db' }), ['r4']);
    assert.deepEqual(await ids({ states: ['pending'] }), ['r4', 'r3', 'r1']);
    assert.deepEqual(await ids({ states: ['approved', 'denied'] }), ['r5', 'r2']);
    assert.deepEqual(await ids({ states: [] }), []);
    assert.deepEqual(await ids({ states: ['pending'], resourceId: 'prod-db', limit: 1 }), ['r3']);
    assert.deepEqual(await ids({ limit: 2 }), ['r5', 'r4']);
    assert.deepEqual(
      await ids({ requesterIds: [carol.id, 'demo:nobody', requests[0]?.requesterId ?? ''] }).then(
        (l) => l.length,
      ),
      5,
    );
    assert.deepEqual(await ids({ requesterIds: [] }), []);
  });

  it('continues a newest-first listing strictly after a position, ties broken by id', async () => {
    // r-b and r-c were made in the same millisecond: the id orders them.
    const requests = [
      testRequest('r-a', { createdAt: testEpoch }),
      testRequest('r-b', { createdAt: testEpoch + 1 }),
      testRequest('r-c', { createdAt: testEpoch + 1 }),
      testRequest('r-d', { createdAt: testEpoch + 2 }),
    ];
    for (const request of requests) await ctx.store.requests.insert(request);
    const page = async (before?: { createdAt: number; id: string }) =>
      (await ctx.store.requests.list({ limit: 2, ...(before ? { before } : {}) })).map((r) => r.id);
    assert.deepEqual(await page(), ['r-d', 'r-c']);
    assert.deepEqual(await page({ createdAt: testEpoch + 1, id: 'r-c' }), ['r-b', 'r-a']);
    assert.deepEqual(await page({ createdAt: testEpoch, id: 'r-a' }), []);
  });

  it('finds expired active requests oldest first, and the next expiry', async () => {
    assert.equal(await ctx.store.requests.nextExpiry(), null);
    const active = (id: string, expiresAt: number) =>
      testRequest(id, { state: 'active', activatedAt: testEpoch, expiresAt });
    await ctx.store.requests.insert(active('late', testEpoch + 3 * minute));
    await ctx.store.requests.insert(active('early', testEpoch + minute));
    await ctx.store.requests.insert(active('on-time', testEpoch + 2 * minute));
    // Not active: never "expired", whatever their expires_at says.
    await ctx.store.requests.insert(testRequest('revoked', { state: 'revoked', expiresAt: testEpoch }));
    await ctx.store.requests.insert(testRequest('pending'));

    assert.strictEqual(await ctx.store.requests.nextExpiry(), testEpoch + minute);
    const expired = async (now: number, limit = 10) =>
      (await ctx.store.requests.listExpired(now, limit)).map((request) => request.id);
    assert.deepEqual(await expired(testEpoch + minute - 1), []);
    assert.deepEqual(await expired(testEpoch + 2 * minute), ['early', 'on-time'], 'at expires_at exactly');
    assert.deepEqual(await expired(testEpoch + 10 * minute, 2), ['early', 'on-time']);
  });

  it('finds pending requests past their review deadline oldest deadline first, and the next deadline', async () => {
    assert.equal(await ctx.store.requests.nextReviewDeadline(), null);
    const pending = (id: string, reviewBy: number) => testRequest(id, { reviewBy });
    await ctx.store.requests.insert(pending('late', testEpoch + 3 * minute));
    await ctx.store.requests.insert(pending('early', testEpoch + minute));
    await ctx.store.requests.insert(pending('on-time', testEpoch + 2 * minute));
    // Not pending: never lapses, whatever its review_by says; nor does one without a deadline.
    await ctx.store.requests.insert(testRequest('approved', { state: 'approved', reviewBy: testEpoch }));
    const { reviewBy: _none, ...withoutDeadline } = testRequest('no-deadline');
    await ctx.store.requests.insert(withoutDeadline);
    assert.deepEqual(await ctx.store.requests.get('no-deadline'), withoutDeadline);

    assert.strictEqual(await ctx.store.requests.nextReviewDeadline(), testEpoch + minute);
    const due = async (now: number, limit = 10) =>
      (await ctx.store.requests.listPastReviewDeadline(now, limit)).map((request) => request.id);
    assert.deepEqual(await due(testEpoch + minute - 1), []);
    assert.deepEqual(await due(testEpoch + 2 * minute), ['early', 'on-time'], 'at review_by exactly');
    assert.deepEqual(await due(testEpoch + 10 * minute, 2), ['early', 'on-time']);
  });

  it('lists approved requests awaiting activation, oldest approval first', async () => {
    await ctx.store.requests.insert(testRequest('r1', { state: 'approved', updatedAt: testEpoch + 2 }));
    await ctx.store.requests.insert(testRequest('r2', { state: 'approved', updatedAt: testEpoch + 1 }));
    await ctx.store.requests.insert(testRequest('r3'));
    const awaiting = await ctx.store.requests.listApprovedAwaitingActivation(10);
    assert.deepEqual(
      awaiting.map((request) => request.id),
      ['r2', 'r1'],
    );
  });

  it('counts by state, with every state present', async () => {
    await ctx.store.requests.insert(testRequest('r1'));
    await ctx.store.requests.insert(testRequest('r2'));
    await ctx.store.requests.insert(testRequest('r3', { state: 'active', expiresAt: testEpoch }));
    const counts = await ctx.store.requests.countByState();
    assert.deepEqual(Object.keys(counts).sort(), [...requestStates].sort());
    assert.strictEqual(counts.pending, 2);
    assert.strictEqual(counts.active, 1);
    assert.strictEqual(counts.expired, 0);
  });
});
