import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { AuditReader, Store } from '../app/ports.js';
import { openStore } from '../storage/open-store.js';
import { appendTestEvents, auditTestEpoch, exportToLines, testAuditKey } from './audit-test-support.js';
import { AuditCheckpointer } from './checkpoint.js';
import { exportAudit } from './export.js';
import { hashedFieldNames } from './hash.js';
import { verifyAuditExport } from './verify.js';

describe('exportAudit', () => {
  let store: Store;
  const key = testAuditKey();

  before(async () => {
    store = await openStore('sqlite::memory:');
    const checkpointer = new AuditCheckpointer(store.auditLog, key, { everyEvents: 4 });
    for (let n = 1; n <= 10; n++) {
      await appendTestEvents(store, n, n);
      await checkpointer.checkpointIfDue(auditTestEpoch + n);
    }
  });
  after(() => store.close());

  it('writes a header, the checkpoints in order, then every event in order', async () => {
    const lines = (await exportToLines(store.auditLog, { pageSize: 3 })).map((line) => JSON.parse(line));
    const head = await store.auditLog.head();
    assert.deepEqual(lines[0], {
      kind: 'header',
      format: 'portcullis-audit/1',
      exported_at: auditTestEpoch,
      first_seq: 1,
      head_seq: 10,
      head_hash: head.hash,
      events: 10,
      checkpoints: 3,
      chain: {
        hash: 'lowercase hex SHA-256 of UTF-8 (prev_hash followed by the RFC 8785 canonical JSON of the hashed fields)',
        hashed_fields: [...hashedFieldNames],
        genesis_prev_hash: '0'.repeat(64),
      },
      checkpoint_signature: 'base64url Ed25519 over the RFC 8785 canonical JSON of {seq, at, head_hash, kid}',
    });
    assert.deepEqual(
      lines.slice(1, 4).map((line) => [line.kind, line.seq]),
      [
        ['checkpoint', 1],
        ['checkpoint', 5],
        ['checkpoint', 9],
      ],
    );
    assert.deepEqual(Object.keys(lines[1]), ['kind', 'seq', 'at', 'head_hash', 'kid', 'signature']);
    const events = lines.slice(4);
    assert.deepEqual(
      events.map((line) => line.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(Object.keys(events[0]), [...hashedFieldNames, 'hash', 'kind']);
    const stored = await store.auditLog.read(0, 10);
    assert.deepEqual(
      events.map((line) => line.hash),
      stored.map((record) => record.hash),
    );
  });

  it('is a snapshot: events and checkpoints written after the head was read are left out', async () => {
    let appended = false;
    const growing: AuditReader = {
      head: () => store.auditLog.head(),
      prunedThrough: () => store.auditLog.prunedThrough(),
      lastCheckpointSignedBefore: (before, maxSeq) =>
        store.auditLog.lastCheckpointSignedBefore(before, maxSeq),
      checkpoints: async () => {
        if (!appended) {
          appended = true;
          await appendTestEvents(store, 11, 12);
          await new AuditCheckpointer(store.auditLog, key).checkpointNow(auditTestEpoch + 12);
        }
        return store.auditLog.checkpoints();
      },
      read: (afterSeq, limit) => store.auditLog.read(afterSeq, limit),
      insertCheckpoint: (checkpoint) => store.auditLog.insertCheckpoint(checkpoint),
      lastCheckpoint: () => store.auditLog.lastCheckpoint(),
    };
    const lines = await exportToLines(growing, { pageSize: 100 });
    assert.equal(JSON.parse(lines[0] as string).head_seq, 10);
    assert.equal(lines.length, 1 + 3 + 10);
    const result = await verifyAuditExport(lines, [key.publicJwk]);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.unsignedEvents, 1);
  });

  it('waits for a slow writable instead of buffering everything', async () => {
    let writes = 0;
    let drainsAwaited = 0;
    const slow = new Writable({
      highWaterMark: 16,
      write(_chunk, _encoding, done) {
        writes++;
        setImmediate(done);
      },
    });
    slow.on('drain', () => drainsAwaited++);
    const summary = await exportAudit(store.auditLog, slow, { pageSize: 2, now: auditTestEpoch });
    assert.equal(summary.events, (await store.auditLog.head()).seq);
    assert.ok(writes > 5);
    assert.ok(drainsAwaited > 0);
  });

  it('exports an empty chain as a header that verifies', async () => {
    const empty = await openStore('sqlite::memory:');
    try {
      const lines = await exportToLines(empty.auditLog);
      assert.equal(lines.length, 1);
      const result = await verifyAuditExport(lines, [key.publicJwk]);
      assert.equal(result.ok, true);
      assert.equal(result.headSeq, 0);
    } finally {
      await empty.close();
    }
  });
});
