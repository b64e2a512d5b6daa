/**
 * Audit streams over a real store (SQLite and PostgreSQL), the real webhook sink and a real HTTP
 * collector (test-support/audit-collector.ts) that checks signatures and the chain: every event
 * once, in order, across a collector outage, a stop, and two replicas.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, it } from 'node:test';
import { type AuditCollector, startAuditCollector } from '../../test-support/audit-collector.js';
import { forEachDialect } from '../../test-support/dialects.js';
import { WebhookAuditStreamSink } from '../audit/webhook-stream-sink.js';
import { ManualClock } from '../core/clock.js';
import { testEpoch } from '../storage/test-fixtures.js';
import {
  type AuditStream,
  AuditStreamRelay,
  type AuditStreamRelayOptions,
  type AuditStreamSink,
  LeaseLost,
} from './audit-stream-relay.js';
import type { Store } from './ports.js';

const secret = 'whsec-audit-stream-0123456789abcdef0123';
let collector: AuditCollector;
before(async () => {
  collector = await startAuditCollector({ secret });
});
after(() => collector.close());
beforeEach(() => {
  collector.events.clear();
  collector.requests.length = 0;
  collector.failNext = 0;
});

async function append(store: Store, count: number): Promise<void> {
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      await tx.audit.append(
        { type: 'request.created', actor: 'okta:alice', reason: `event ${i}` },
        testEpoch + i,
      );
    }
  });
}

function stream(overrides: Partial<AuditStream> = {}): AuditStream {
  return {
    sink: new WebhookAuditStreamSink('siem', { url: collector.url, secret, timeoutMs: 2000 }),
    batchSize: 3,
    startAt: 'beginning',
    ...overrides,
  };
}

function relay(
  store: Store,
  streams: AuditStream[],
  owner: string,
  options: Partial<AuditStreamRelayOptions> = {},
) {
  const errors: string[] = [];
  const r = new AuditStreamRelay({
    store,
    streams,
    clock: new ManualClock(testEpoch),
    owner,
    onError: (error) => errors.push(String(error)),
    baseDelayMs: 1,
    maxDelayMs: 2,
    ...options,
  });
  return Object.assign(r, { errors });
}

forEachDialect('AuditStreamRelay', (ctx) => {
  it('sends every event once, in order, as signed JSON Lines in batches; the copy is one chain', async () => {
    await append(ctx.store, 7);
    const s = stream();
    const r = relay(ctx.store, [s], 'replica-a');
    await r.drain(s);
    const copy = collector.inOrder();
    assert.deepEqual(
      copy.map((e) => e.seq),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.equal(copy[0]?.kind, 'event');
    assert.deepEqual(
      collector.requests.map((q) => [q.batch, q.lines, q.contentType]),
      [
        ['1-3', 3, 'application/x-ndjson'],
        ['4-6', 3, 'application/x-ndjson'],
        ['7-7', 1, 'application/x-ndjson'],
      ],
    );
    // The lines are the store's own events, hashes included.
    const stored = await ctx.store.auditLog.read(0, 10);
    assert.deepEqual(
      copy.map((e) => e.hash),
      stored.map((e) => e.hash),
    );
    await append(ctx.store, 2);
    await r.drain(s);
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(r.errors, []);
  });

  it('a stream configured with start_at: end begins after the events already there', async () => {
    await append(ctx.store, 4);
    const s = stream({ startAt: 'end' });
    const r = relay(ctx.store, [s], 'replica-a');
    await r.drain(s);
    assert.equal(collector.events.size, 0);
    await append(ctx.store, 2);
    await r.drain(s);
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [5, 6],
    );
  });

  it('a collector that is down holds the stream: retried until taken, nothing skipped', async () => {
    await append(ctx.store, 5);
    collector.failNext = 4;
    const s = stream();
    const r = relay(ctx.store, [s], 'replica-a');
    await r.drain(s);
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(collector.requests.filter((q) => q.status === 503).length, 4);
    assert.equal(r.errors.length, 4);
    assert.match(
      r.errors[0] ?? '',
      /batch after event 0 not taken \(attempt 1\): audit stream siem: HTTP 503/,
    );
  });

  it('a wrong signing secret is never taken: the stream waits, and the position does not move', async () => {
    await append(ctx.store, 2);
    const wrong = stream({
      sink: new WebhookAuditStreamSink('siem', {
        url: collector.url,
        secret: 'x'.repeat(40),
        timeoutMs: 2000,
      }),
    });
    const r = relay(ctx.store, [wrong], 'replica-a');
    const draining = r.drain(wrong);
    while (collector.requests.length < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    await r.stop();
    await draining;
    assert.equal(collector.events.size, 0);
    assert.ok(collector.requests.every((q) => q.status === 401));
    // The next holder, with the right secret, starts at the first event.
    const s = stream();
    await relay(ctx.store, [s], 'replica-b').drain(s);
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [1, 2],
    );
  });

  it('one replica sends at a time; after a stop the other resumes where it ended', async () => {
    await append(ctx.store, 3);
    const s = stream();
    const a = relay(ctx.store, [s], 'replica-a');
    await a.drain(s);
    await append(ctx.store, 2);
    const b = relay(ctx.store, [s], 'replica-b');
    await b.drain(s);
    assert.equal(collector.events.size, 3, 'replica-b does not hold the lease');
    await a.stop();
    await b.drain(s);
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
    // Each event was sent once: no batch was sent twice.
    assert.equal(
      collector.requests.reduce((n, q) => n + q.lines, 0),
      5,
    );
  });
  it('a replica whose lease went elsewhere mid-batch sends no further request of it', async () => {
    await append(ctx.store, 4);
    const clock = new ManualClock(testEpoch);
    const taken: number[] = [];
    let b: ReturnType<typeof relay> | undefined;
    const bStream = stream();
    const slow: AuditStreamSink = {
      name: 'siem',
      async send(records, keepLease) {
        for (const record of records) {
          if (!(await keepLease())) throw new LeaseLost();
          taken.push(record.seq);
          // While the first request is in flight, the lease runs out and replica-b takes over.
          clock.advance(61_000);
          if (!b) {
            b = relay(ctx.store, [bStream], 'replica-b', { clock });
            await b.drain(bStream);
          }
        }
      },
    };
    const a = relay(ctx.store, [stream({ sink: slow, batchSize: 10 })], 'replica-a', { clock });
    await a.drain(stream({ sink: slow, batchSize: 10 }));
    assert.deepEqual(taken, [1], 'replica-a stopped after its lease went to replica-b');
    assert.deepEqual(
      collector.inOrder().map((e) => e.seq),
      [1, 2, 3, 4],
    );
  });
});
