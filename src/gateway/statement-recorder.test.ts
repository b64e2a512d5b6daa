import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEventInput } from '../core/audit-event.js';
import { StatementRecorder, type TimedEvent } from './statement-recorder.js';

const event = (n: number): AuditEventInput => ({ type: 'gateway.statement', actor: 'p', data: { n } });

describe('StatementRecorder', () => {
  test('batches events into one write per flush, in order, without waiting in record()', async () => {
    const batches: TimedEvent[][] = [];
    const recorder = new StatementRecorder({
      write: async (events) => {
        batches.push([...events]);
      },
      now: () => 1,
      flushIntervalMs: 10,
      maxBatch: 3,
      onUnwritable: () => assert.fail('unwritable'),
      onError: () => {},
    });
    for (let n = 0; n < 7; n++) recorder.record(event(n));
    assert.equal(batches.length, 0);
    await recorder.flush();
    assert.deepEqual(
      batches.map((b) => b.map((e) => e.event.data?.n)),
      [[0, 1, 2], [3, 4, 5], [6]],
    );
  });

  test('retries a failed batch, then turns unwritable, keeps the events, and recovers', async () => {
    let failing = true;
    const written: unknown[] = [];
    let unwritable = 0;
    const recorder = new StatementRecorder({
      write: async (events) => {
        if (failing) throw new Error('disk full');
        written.push(...events.map((e) => e.event.data?.n));
      },
      now: () => 1,
      flushIntervalMs: 5,
      retryIntervalMs: 20,
      maxAttempts: 2,
      highWaterMark: 1,
      onUnwritable: () => unwritable++,
      onError: () => {},
    });
    recorder.record(event(1));
    recorder.record(event(2));
    assert.equal(recorder.congested, true);
    let drained = false;
    recorder.onDrain(() => {
      drained = true;
    });
    await recorder.flush();
    assert.equal(unwritable, 1);
    assert.equal(recorder.writable, false);
    await assert.rejects(recorder.writeNow(event(3)), /disk full/);
    failing = false;
    await sleep(60);
    assert.equal(recorder.writable, true);
    assert.equal(drained, true);
    assert.deepEqual(written, [1, 2]);
    await recorder.close();
  });
});
