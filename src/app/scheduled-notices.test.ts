/**
 * Reminders on both databases: a request still pending `remind_after` after it was made gets one
 * `request.reminded`, however often and on however many replicas the pass runs; decided or young
 * requests get none.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { ManualClock } from '../core/clock.js';
import { testEpoch, testGrant, testRequest } from '../storage/test-fixtures.js';
import type { Store } from './ports.js';
import { ScheduledNotices } from './scheduled-notices.js';

const hour = 3_600_000;

function reminders(store: Store, owner: string) {
  return new ScheduledNotices({
    store,
    clock: new ManualClock(testEpoch),
    remindAfterMs: 4 * hour,
    warnBeforeExpiryMs: 10 * 60_000,
    owner,
    onError: (error) => {
      throw error;
    },
  });
}

async function remindedEvents(store: Store) {
  return (await store.auditLog.read(0, 1000)).filter((event) => event.type === 'request.reminded');
}

forEachDialect('request reminders', (ctx) => {
  it('reminds once of a request pending past remind_after, never of a young or decided one', async () => {
    const store = ctx.store;
    await store.transaction(async (tx) => {
      await tx.requests.insert(testRequest('old', { createdAt: testEpoch }));
      await tx.requests.insert(testRequest('young', { createdAt: testEpoch + 3 * hour }));
      await tx.requests.insert(testRequest('decided', { createdAt: testEpoch, state: 'denied' }));
    });
    const job = reminders(store, 'a');
    assert.equal(await job.giveDue(testEpoch + 4 * hour - 1), 0);
    assert.equal(await job.giveDue(testEpoch + 4 * hour), 1);
    assert.equal(await job.giveDue(testEpoch + 5 * hour), 0, 'once');
    const [event] = await remindedEvents(store);
    assert.equal(event?.requestId, 'old');
    assert.equal(event?.actor, 'system');
    assert.deepEqual(event?.data, {
      waitingSeconds: 4 * 3600,
      approvals: [],
      approvalsRequired: 1,
      reviewBy: testEpoch + 24 * hour,
    });
    assert.equal(await job.giveDue(testEpoch + 7 * hour), 1, 'the young one, in its turn');
    assert.deepEqual(
      (await remindedEvents(store)).map((e) => e.requestId),
      ['old', 'young'],
    );
  });

  it('runs on one replica at a time; another takes over once it stops', async () => {
    await ctx.store.transaction((tx) =>
      tx.requests.insert(testRequest('r1', { createdAt: testEpoch - 5 * hour })),
    );
    const replica = await ctx.openStore();
    const a = reminders(ctx.store, 'a');
    const b = reminders(replica, 'b');
    assert.equal(await b.giveDue(testEpoch), 1);
    await ctx.store.transaction((tx) =>
      tx.requests.insert(testRequest('r2', { createdAt: testEpoch - 5 * hour })),
    );
    assert.equal(await a.giveDue(testEpoch + 60_000), undefined, 'b holds the lease');
    await b.stop();
    assert.equal(await a.giveDue(testEpoch + 120_000), 1, 'r2 only: r1 was reminded');
    assert.deepEqual(
      (await remindedEvents(ctx.store)).map((e) => e.requestId),
      ['r1', 'r2'],
    );
  });

  it('warns once of access ending within warn_before_expiry, never of access already ended', async () => {
    const store = ctx.store;
    const ending = testRequest('ending', {
      state: 'active',
      activatedAt: testEpoch,
      expiresAt: testEpoch + hour,
    });
    const revoked = testRequest('revoked', {
      state: 'active',
      activatedAt: testEpoch,
      expiresAt: testEpoch + hour,
    });
    await store.transaction(async (tx) => {
      await tx.requests.insert(ending);
      await tx.grants.insert(testGrant('g-ending', ending));
      await tx.requests.insert(revoked);
      await tx.grants.insert({ ...testGrant('g-revoked', revoked), status: 'revoking' });
    });
    const job = reminders(store, 'a');
    assert.equal(await job.giveDue(testEpoch + 49 * 60_000), 0);
    assert.equal(await job.giveDue(testEpoch + 50 * 60_000), 1);
    assert.equal(await job.giveDue(testEpoch + 55 * 60_000), 0, 'once');
    const warned = (await store.auditLog.read(0, 1000)).filter((event) => event.type === 'grant.expiring');
    assert.deepEqual(
      warned.map((e) => [e.requestId, e.grantId, e.data]),
      [['ending', 'g-ending', { expiresAt: testEpoch + hour, remainingSeconds: 600 }]],
    );
    assert.equal(await job.giveDue(testEpoch + hour + 1), 0, 'an access past its end is the expiry loop’s');
  });

  // PostgreSQL only: SQLite has one writer, so two transactions never overlap (and two connections
  // in one test process would wait on each other's lock).
  if (ctx.dialect === 'postgres')
    it('gives a notice once even when two replicas both believe they hold the lease', async () => {
      await ctx.store.transaction(async (tx) => {
        for (let i = 0; i < 40; i++)
          await tx.requests.insert(testRequest(`r${i}`, { createdAt: testEpoch - 5 * hour }));
      });
      const replica = await ctx.openStore();
      // b's clock runs past a's lease: both claim it and look at the same due requests at once.
      const [a, b] = await Promise.all([
        reminders(ctx.store, 'a').giveDue(testEpoch),
        reminders(replica, 'b').giveDue(testEpoch + 5 * 60_000 + 1),
      ]);
      assert.equal((a ?? 0) + (b ?? 0), 40);
      assert.equal((await remindedEvents(ctx.store)).length, 40);
    });

  it('does not let requests already reminded crowd out one due now', async () => {
    await ctx.store.transaction(async (tx) => {
      for (let i = 0; i < 1005; i++) {
        await tx.requests.insert(testRequest(`old-${i}`, { createdAt: testEpoch - 10 * hour }));
        await tx.ephemeral.put('request-reminded', `old-${i}`, 'earlier', testEpoch + 48 * hour);
      }
      await tx.requests.insert(testRequest('new', { createdAt: testEpoch - 5 * hour }));
    });
    assert.equal(await reminders(ctx.store, 'a').giveDue(testEpoch), 1);
    assert.deepEqual(
      (await remindedEvents(ctx.store)).map((e) => e.requestId),
      ['new'],
    );
  });
});
