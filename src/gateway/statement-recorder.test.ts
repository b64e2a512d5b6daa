import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEventInput } from '../core/audit-event.js';
import { StatementRecorder, type StatementRecorderOptions, type TimedEvent } from './statement-recorder.js';
import type { SessionFacts } from './statement-tracker.js';

const facts = (sessionId: string, grantId = 'g1'): SessionFacts => ({
  sessionId,
  principalId: grantId === 'g1' ? 'demo:alice' : 'demo:bob',
  grantId,
  resourceId: 'db',
  requestId: `r-${grantId}`,
});
interface Run {
  from: number;
  session: string;
  statements: { sql: string }[];
}
const statement = (n: number) => ({ at: n, kind: 'query', sql: `select ${n}` });
const ended = (session: string): AuditEventInput => ({
  type: 'gateway.session_ended',
  actor: 'demo:alice',
  data: { session },
});
const runsOf = (e: TimedEvent) => (e.event.data?.sessions as Run[] | undefined) ?? [];
/** An event as `session: sql, sql | session: sql` for a statements batch, else its type. */
const sqlOf = (e: TimedEvent) =>
  e.event.type === 'gateway.statements'
    ? runsOf(e)
        .map((run) => `${run.session}: ${run.statements.map((s) => s.sql).join(', ')}`)
        .join(' | ')
    : e.event.type;

/** A recorder whose writes land in `writes`, one array per write; no timed flushes unless told. */
function recorderInto(writes: TimedEvent[][], options: Partial<StatementRecorderOptions> = {}) {
  return new StatementRecorder({
    write: async (events) => {
      writes.push([...events]);
    },
    now: () => 7,
    flushIntervalMs: 10_000,
    onUnwritable: () => assert.fail('unwritable'),
    onError: () => {},
    ...options,
  });
}

describe('StatementRecorder', () => {
  test('one gateway.statements event per grant and flush, runs numbered without gaps, never waiting', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = recorderInto(writes);
    const a = recorder.openSession(facts('a'));
    const b = recorder.openSession(facts('b'));
    const c = recorder.openSession(facts('c', 'g2'));
    recorder.recordStatement(a, statement(1));
    recorder.recordStatement(b, statement(2));
    recorder.recordStatement(c, statement(3));
    recorder.recordStatement(a, statement(4));
    recorder.record(ended('b'));
    assert.equal(writes.length, 0, 'recording does not write');
    assert.equal(recorder.queued, 5);
    await recorder.flush();
    recorder.recordStatement(a, statement(5));
    await recorder.flush();

    assert.deepEqual(
      writes.map((w) => w.map(sqlOf)),
      [['a: select 1, select 4 | b: select 2', 'c: select 3', 'gateway.session_ended'], ['a: select 5']],
    );
    const [first, other, , second] = [writes[0]?.[0], writes[0]?.[1], undefined, writes[1]?.[0]];
    assert.equal(first?.event.type, 'gateway.statements');
    assert.equal(first?.event.grantId, 'g1');
    assert.equal(first?.event.actor, 'demo:alice');
    assert.equal(first?.event.requestId, 'r-g1');
    assert.equal(other?.event.grantId, 'g2');
    assert.equal(first?.at, 1, 'the event is dated by its first statement');
    assert.deepEqual(Object.keys(first?.event.data ?? {}), ['sessions']);
    assert.deepEqual(Object.keys(runsOf(first as TimedEvent)[0] ?? {}), ['from', 'session', 'statements']);
    assert.deepEqual(
      runsOf(first as TimedEvent).map((run) => run.from),
      [1, 1],
    );
    assert.equal(runsOf(second as TimedEvent)[0]?.from, 3, 'the next run of session a continues at 3');
    assert.equal(a.run, undefined, 'a written batch is not kept alive by the session');
    assert.equal(recorder.queued, 0);
  });

  test('an event seals the open batches: later statements follow it in the chain', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = recorderInto(writes);
    const a = recorder.openSession(facts('a'));
    recorder.recordStatement(a, statement(1));
    recorder.record({ type: 'gateway.session_started', actor: 'demo:alice', data: { session: 'b' } });
    const b = recorder.openSession(facts('b'));
    recorder.recordStatement(b, statement(2));
    recorder.recordStatement(a, statement(3));
    await recorder.flush();
    assert.deepEqual(writes[0]?.map(sqlOf), [
      'a: select 1',
      'gateway.session_started',
      'b: select 2 | a: select 3',
    ]);
    assert.deepEqual(
      writes[0]
        ?.filter((e) => e.event.type === 'gateway.statements')
        .flatMap((e) => runsOf(e).map((r) => r.from)),
      [1, 1, 2],
    );
  });

  test('a batch holds at most 1000 statements; the session continues in the next', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = recorderInto(writes, { flushAtStatements: 5000 });
    const a = recorder.openSession(facts('a'));
    for (let n = 1; n <= 1500; n++) recorder.recordStatement(a, statement(n));
    await recorder.flush();
    assert.deepEqual(
      writes.flat().map((e) => runsOf(e).map((run) => [run.from, run.statements.length])),
      [[[1, 1000]], [[1001, 500]]],
    );
  });

  test('a full queue is written at once; writeNow resolves after its own write', async () => {
    const writes: TimedEvent[][] = [];
    const recorder = recorderInto(writes, { flushAtStatements: 3 });
    const a = recorder.openSession(facts('a'));
    for (let n = 1; n <= 3; n++) recorder.recordStatement(a, statement(n));
    await sleep(20);
    assert.equal(writes.length, 1);
    recorder.recordStatement(a, statement(4));
    await recorder.writeNow({ type: 'gateway.session_started', actor: 'demo:alice' });
    assert.deepEqual(writes[1]?.map(sqlOf), ['a: select 4', 'gateway.session_started']);
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
      'a: select 1, select 2',
      'gateway.recording_failed',
      'a: select 3',
    ]);
    assert.equal(written[1]?.event.severity, 'high');
    assert.equal(runsOf(written[2] as TimedEvent)[0]?.from, 3);
    await recorder.close();
  });

  test('a few huge statements congest the queue as many small ones do (characters, not only records)', async () => {
    const written: TimedEvent[] = [];
    const recorder = new StatementRecorder({
      write: async (events) => {
        written.push(...events);
      },
      now: () => 1,
      flushIntervalMs: 1_000_000,
      highWaterChars: 100_000,
      onUnwritable: () => {},
      onError: () => {},
    });
    const a = recorder.openSession(facts('a'));
    recorder.recordStatement(a, { at: 1, kind: 'query', sql: 'x'.repeat(60_000) });
    assert.equal(recorder.congested, false);
    recorder.recordStatement(a, { at: 2, kind: 'query', sql: 'y'.repeat(60_000) });
    assert.equal(recorder.congested, true, 'two records, but 120,000 characters');
    let drained = false;
    recorder.onDrain(() => {
      drained = true;
    });
    await recorder.flush();
    assert.equal(drained, true);
    assert.equal(recorder.congested, false);
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
