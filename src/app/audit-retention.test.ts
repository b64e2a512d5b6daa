/**
 * Audit retention on both databases: the log is cut only at a signed checkpoint and only once the
 * cut is recorded, what remains exports and verifies offline, streams keep what they have not
 * delivered, and rows under the floor are never read while they wait for deletion.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import {
  appendTestEvents,
  auditTestEpoch,
  exportToLines,
  testAuditKey,
} from '../audit/audit-test-support.js';
import { AuditCheckpointer, checkpointSignatureValid, ed25519PublicKey } from '../audit/checkpoint.js';
import { verifyAuditExport } from '../audit/verify.js';
import { ManualClock } from '../core/clock.js';
import { AuditRetention, type AuditRetentionOptions } from './audit-retention.js';
import type { AuditReader, Store } from './ports.js';

const day = 86_400_000;
const key = testAuditKey();

function retention(store: Store, now: number, options: Partial<AuditRetentionOptions> = {}): AuditRetention {
  return new AuditRetention({
    store,
    clock: new ManualClock(now),
    retentionMs: 30 * day,
    streams: [],
    owner: 'replica-a',
    signingKey: async () => key,
    checkpointValid: async (checkpoint) =>
      checkpointSignatureValid(checkpoint, ed25519PublicKey(key.publicJwk)),
    onError: (error) => {
      throw error;
    },
    ...options,
  });
}

/** Events 1–10 on the first day, checkpointed at 5 and 10; events 11–15 on day 35, checkpointed. */
async function twoMonthsOfLog(store: Store): Promise<AuditCheckpointer> {
  const checkpointer = new AuditCheckpointer(store.auditLog, key);
  await appendTestEvents(store, 1, 5);
  await checkpointer.checkpointNow(auditTestEpoch + 10_000);
  await appendTestEvents(store, 6, 10);
  await checkpointer.checkpointNow(auditTestEpoch + 20_000);
  for (let n = 11; n <= 15; n++) {
    await store.transaction((tx) =>
      tx.audit.append({ type: 'auth.login', actor: `u${n}` }, auditTestEpoch + 35 * day),
    );
  }
  await checkpointer.checkpointNow(auditTestEpoch + 35 * day);
  return checkpointer;
}

async function verifiedExport(store: Store, checkpointer: AuditCheckpointer, now: number) {
  await checkpointer.checkpointNow(now);
  const lines = await exportToLines(store.auditLog);
  return { lines, result: await verifyAuditExport(lines, [key.publicJwk]) };
}

forEachDialect('audit retention', (ctx) => {
  it('cuts at the newest checkpoint signed before the cutoff, records it, and the rest verifies', async () => {
    const checkpointer = await twoMonthsOfLog(ctx.store);
    const now = auditTestEpoch + 40 * day;
    const run = await retention(ctx.store, now, { deleteBatch: 3 }).run(now);

    assert.ok(run);
    assert.equal(run.cutAt?.seq, 10);
    assert.equal(run.deletedEvents, 10);
    assert.equal(await ctx.store.auditLog.prunedThrough(), 10);
    const kept = await ctx.store.auditLog.read(0, 100);
    assert.deepEqual(
      kept.map((event) => event.seq),
      [11, 12, 13, 14, 15, 16],
    );
    const cut = kept.at(-1);
    assert.equal(cut?.type, 'audit.pruned');
    assert.equal(cut?.severity, 'warning');
    const { signature, ...unsigned } = cut?.data ?? {};
    assert.deepEqual(unsigned, {
      throughSeq: 10,
      throughHash: run.cutAt?.headHash,
      checkpointAt: auditTestEpoch + 20_000,
      events: 10,
      retentionSeconds: 30 * 86_400,
      cutoff: now - 30 * day,
      kid: key.kid,
    });
    assert.match(String(signature), /^[A-Za-z0-9_-]{86}$/, 'the cut is signed with the audit key');
    assert.deepEqual(
      (await ctx.store.auditLog.checkpoints()).map((c) => c.seq),
      [10, 15],
      'checkpoints below the anchor are gone, the anchor stays',
    );
    assert.equal(await ctx.store.auditRetention.deletePrunedEvents(100), 0, 'no row left under the floor');

    const { lines, result } = await verifiedExport(ctx.store, checkpointer, now);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.firstSeq, 11);
    assert.equal(result.events, 6);
    assert.equal(result.unsignedEvents, 0);
    const header = JSON.parse(lines[0] as string);
    assert.deepEqual([header.first_seq, header.head_seq, header.events], [11, 16, 6]);
  });

  it('cuts nothing while no checkpoint is older than the retention', async () => {
    await twoMonthsOfLog(ctx.store);
    const now = auditTestEpoch + 20 * day;
    const run = await retention(ctx.store, now).run(now);
    assert.equal(run?.cutAt, undefined);
    assert.equal(run?.deletedEvents, 0);
    assert.equal((await ctx.store.auditLog.head()).seq, 15, 'no audit.pruned event either');
    assert.equal((await ctx.store.auditLog.read(0, 1))[0]?.seq, 1);
  });

  it('keeps what a stream has not delivered, and says which stream held it back', async () => {
    await twoMonthsOfLog(ctx.store);
    const now = auditTestEpoch + 40 * day;
    const cursors = ctx.store.notificationCursors;
    await cursors.claim('audit-stream:siem', 'relay', now, now + 60_000, 0);
    await cursors.advance('audit-stream:siem', 'relay', 7, now + 60_000);
    const logged: unknown[] = [];
    const job = retention(ctx.store, now, {
      streams: ['siem', 'archive'],
      log: (message, fields) => logged.push({ message, ...fields }),
    });

    // `archive` has no position yet: its relay may start at the first event.
    const waiting = await job.run(now);
    assert.equal(waiting?.cutAt, undefined);
    assert.deepEqual(waiting?.heldBackBy, ['siem', 'archive']);

    await cursors.claim('audit-stream:archive', 'relay', now, now + 60_000, 15);
    const run = await job.run(now);
    assert.equal(run?.cutAt?.seq, 5, 'the newest checkpoint the slowest stream has passed');
    assert.deepEqual(run?.heldBackBy, ['siem']);
    assert.deepEqual(
      (await ctx.store.auditLog.read(0, 1)).map((e) => e.seq),
      [6],
    );
    assert.deepEqual((await ctx.store.auditLog.read(0, 100)).at(-1)?.data?.heldBackBy, ['siem']);
    assert.ok(logged.some((entry) => (entry as { message: string }).message.includes('held back')));
  });

  it('never lets readers see rows under the floor, and deletes them on the next run', async () => {
    await twoMonthsOfLog(ctx.store);
    // As a crash right after the cut was committed would leave it: the floor moved, nothing deleted.
    await ctx.store.transaction((tx) => tx.auditRetention.markPrunedThrough(10));
    assert.deepEqual(
      (await ctx.store.auditLog.read(0, 2)).map((e) => e.seq),
      [11, 12],
    );
    assert.deepEqual(
      (await ctx.store.auditLog.read(3, 2)).map((e) => e.seq),
      [11, 12],
    );
    assert.equal(
      await ctx.store.transaction((tx) => tx.auditRetention.markPrunedThrough(5)),
      false,
      'the floor never moves back',
    );
    assert.equal(
      await ctx.store.transaction((tx) => tx.auditRetention.markPrunedThrough(16)),
      false,
      'nor past the head',
    );

    // A cut with no audit.pruned event is what an attacker deleting old events would leave.
    const lines = await exportToLines(ctx.store.auditLog);
    const result = await verifyAuditExport(lines, [key.publicJwk]);
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.problem.kind, 'removed');

    const now = auditTestEpoch + 20 * day;
    const run = await retention(ctx.store, now, { deleteBatch: 4 }).run(now);
    assert.equal(run?.cutAt, undefined);
    assert.equal(run?.deletedEvents, 10);
  });

  it('cuts again later, and the newest cut is what an export proves', async () => {
    const checkpointer = await twoMonthsOfLog(ctx.store);
    await retention(ctx.store, auditTestEpoch + 40 * day).run(auditTestEpoch + 40 * day);
    await checkpointer.checkpointNow(auditTestEpoch + 40 * day);
    await appendTestEvents(ctx.store, 100, 102);
    const now = auditTestEpoch + 80 * day;
    const run = await retention(ctx.store, now).run(now);
    assert.equal(run?.cutAt?.seq, 16, 'the checkpoint over the first audit.pruned event');
    const { result } = await verifiedExport(ctx.store, checkpointer, now);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.firstSeq, 17);
  });

  it('runs on one replica at a time, once per interval', async () => {
    await twoMonthsOfLog(ctx.store);
    const now = auditTestEpoch + 40 * day;
    const replica = await ctx.openStore();
    const a = retention(ctx.store, now, { owner: 'a' });
    const b = retention(replica, now, { owner: 'b' });
    assert.equal((await a.runIfDue(now))?.cutAt?.seq, 10);
    assert.equal(await b.runIfDue(now + 60_000), undefined, 'the lease is a’s');
    assert.equal(await a.runIfDue(now + 60_000), undefined, 'not due before the hour');
    await a.stop();
    const later = await b.runIfDue(now + 3_600_000);
    assert.ok(later, 'b takes over once a has stopped and the hour has passed');
    assert.equal(later.cutAt, undefined);
  });

  it('does not cut at a checkpoint that does not verify', async () => {
    await twoMonthsOfLog(ctx.store);
    const now = auditTestEpoch + 40 * day;
    const job = retention(ctx.store, now, { checkpointValid: async () => false });
    await assert.rejects(job.run(now), /does not verify under the published audit keys/);
    assert.equal(await ctx.store.auditLog.prunedThrough(), 0);
    assert.equal((await ctx.store.auditLog.head()).seq, 15, 'no audit.pruned either');
  });

  it('refuses an export that retention cut under it', async () => {
    await twoMonthsOfLog(ctx.store);
    const store = ctx.store;
    // The floor is read before retention moves it; the events are read after.
    const racing: AuditReader = {
      head: () => store.auditLog.head(),
      prunedThrough: async () => 0,
      lastCheckpointSignedBefore: (before, maxSeq) =>
        store.auditLog.lastCheckpointSignedBefore(before, maxSeq),
      checkpoints: () => store.auditLog.checkpoints(),
      read: async (afterSeq, limit) => {
        await store.transaction((tx) => tx.auditRetention.markPrunedThrough(5));
        return store.auditLog.read(afterSeq, limit);
      },
      insertCheckpoint: (checkpoint) => store.auditLog.insertCheckpoint(checkpoint),
      lastCheckpoint: () => store.auditLog.lastCheckpoint(),
    };
    await assert.rejects(exportToLines(racing), /removed by retention during the export/);
  });
});
