import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEventInput } from '../core/audit-event.js';
import { StatementRecorder, type TimedEvent } from './statement-recorder.js';
import type { SessionFacts } from './statement-tracker.js';

const facts = (sessionId: string): SessionFacts => ({
  sessionId,
  principalId: 'demo:alice',
  grantId: 'g1',
  resourceId: 'db',
  requestId: 'r1',
});
const statement = (n: number) => ({ at: n, kind: 'query', sql: `select ${n}` });
const ended = (session: string): AuditEventInput => ({
  type: 'gateway.session_ended',
  actor: 'demo:alice',
  data: { session },
});
const sqlOf = (e: TimedEvent) =>
  (e.event.data?.statements as { sql: string }[] | undefined)?.map((s) => s.sql) ?? e.event.type;

describe('StatementRecorder', () => {
  test('one gateway.statements event per session and flush, numbered without gaps, in order, never waiting', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = new StatementRecorder({
      write: async (events) => {
        writes.push([...events]);
      },
      now: () => 7,
      flushIntervalMs: 10_000,
      onUnwritable: () => assert.fail('unwritable'),
      onError: () => {},
    });
    const a = recorder.openSession(facts('a'));
    const b = recorder.openSession(facts('b'));
    recorder.recordStatement(a, statement(1));
    recorder.recordStatement(b, statement(2));
    recorder.recordStatement(a, statement(3));
    recorder.record(ended('b'));
    assert.equal(writes.length, 0, 'recording does not write');
    assert.equal(recorder.queued, 4);
    await recorder.flush();
    recorder.recordStatement(a, statement(4));
    await recorder.flush();

    assert.deepEqual(
      writes.map((w) => w.map(sqlOf)),
      [[['select 1', 'select 3'], ['select 2'], 'gateway.session_ended'], [['select 4']]],
    );
    const [first, second] = [writes[0]?.[0], writes[1]?.[0]];
    assert.equal(first?.event.type, 'gateway.statements');
    assert.equal(first?.event.grantId, 'g1');
    assert.equal(first?.event.actor, 'demo:alice');
    assert.equal(first?.at, 1, 'the event is dated by its first statement');
    assert.deepEqual(Object.keys(first?.event.data ?? {}), ['from', 'session', 'statements']);
    assert.equal(first?.event.data?.from, 1);
    assert.equal(second?.event.data?.from, 3, 'the next batch of session a continues at 3');
    assert.equal(recorder.queued, 0);
  });

  test('a full queue is written at once; writeNow resolves after its own write', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = new StatementRecorder({
      write: async (events) => {
        writes.push([...events]);
      },
      now: () => 1,
      flushIntervalMs: 10_000,
      flushAtStatements: 3,
      onUnwritable: () => assert.fail('unwritable'),
      onError: () => {},
    });
    const a = recorder.openSession(facts('a'));
    for (let n = 1; n <= 3; n++) recorder.recordStatement(a, statement(n));
    await sleep(20);
    assert.equal(writes.length, 1);
    recorder.recordStatement(a, statement(4));
    await recorder.writeNow({ type: 'gateway.session_started', actor: 'demo:alice' });
    assert.deepEqual(writes[1]?.map(sqlOf), [['select 4'], 'gateway.session_started']);
    await recorder.close();
  });

  test('retries a failed batch, then turns unwritable, keeps the events, and recovers', async () => {
    let failing = true;
    const written: TimedEvent[] = [];
    let unwritable = 0;
    const recorder = new StatementRecorder({
      write: async (events) => {
        if (failing) throw new Error('disk full');
        written.push(...events);
      },
      now: () => 1,
      flushIntervalMs: 5,
      retryIntervalMs: 20,
      maxAttempts: 2,
      highWaterMark: 1,
      onUnwritable: () => unwritable++,
      onError: () => {},
    });
    const a = recorder.openSession(facts('a'));
    recorder.recordStatement(a, statement(1));
    recorder.recordStatement(a, statement(2));
    assert.equal(recorder.congested, true);
    let drained = false;
    recorder.onDrain(() => {
      drained = true;
    });
    await recorder.flush();
    assert.equal(unwritable, 1);
    assert.equal(recorder.writable, false);
    await assert.rejects(
      recorder.writeNow({ type: 'gateway.session_started', actor: 'demo:alice' }),
      /disk full/,
    );
    recorder.recordStatement(a, statement(3));
    failing = false;
    await sleep(80);
    await recorder.flush();
    assert.equal(recorder.writable, true);
    assert.equal(drained, true);
    assert.deepEqual(written.map(sqlOf), [
      ['select 1', 'select 2'],
      'gateway.recording_failed',
      ['select 3'],
    ]);
    assert.equal(written[1]?.event.severity, 'high');
    assert.equal(written[2]?.event.data?.from, 3);
    await recorder.close();
  });

  test('a queue that stays congested turns the recorder unwritable (a stalled store)', async () => {
    let unwritable: unknown;
    const recorder = new StatementRecorder({
      write: () => new Promise<void>(() => {}), // never completes
      now: () => 1,
      flushIntervalMs: 1,
      highWaterMark: 2,
      maxStallMs: 30,
      onUnwritable: (error) => {
        unwritable = error;
      },
      onError: () => {},
    });
    const a = recorder.openSession(facts('a'));
    for (let n = 1; n <= 3; n++) recorder.recordStatement(a, statement(n));
    recorder.onDrain(() => assert.fail('must not drain'));
    await sleep(80);
    assert.equal(recorder.writable, false);
    assert.match(String(unwritable), /fell behind/);
  });
});
