import assert from 'node:assert/strict';
import { it } from 'node:test';
import pg from 'pg';
import { forEachDialect } from '../../test-support/dialects.js';
import { isPortcullisError } from '../core/errors.js';
import BetterSqlite3 from '../storage/better-sqlite3.js';
import { testPrincipal } from '../storage/test-fixtures.js';
import {
  appendTestEvents,
  auditTestEpoch,
  exportToLines,
  testAuditKey,
  testEvent,
} from './audit-test-support.js';
import { AuditCheckpointer } from './checkpoint.js';
import { eventHash, genesisHash, hashedFieldsOf } from './hash.js';
import { verifyAuditExport } from './verify.js';

const isAuditUnavailable = (error: unknown) => isPortcullisError(error) && error.code === 'audit_unavailable';

forEachDialect('ChainedAuditAppender', (ctx) => {
  it('chains events from the genesis hash, contiguous from 1', async () => {
    await appendTestEvents(ctx.store, 1, 25);
    const records = await ctx.store.auditLog.read(0, 100);
    assert.equal(records.length, 25);
    let previous = genesisHash;
    records.forEach((record, index) => {
      assert.equal(record.seq, index + 1);
      assert.equal(record.prevHash, previous);
      assert.equal(record.hash, eventHash(hashedFieldsOf(record)));
      previous = record.hash;
    });
    assert.deepEqual(await ctx.store.auditLog.head(), { seq: 25, hash: previous, prunedThrough: 0 });
    assert.deepEqual(
      (await ctx.store.auditLog.read(20, 3)).map((r) => r.seq),
      [21, 22, 23],
    );
  });

  it('appendAll writes the same chain as appending one by one, in one go', async () => {
    await appendTestEvents(ctx.store, 1, 3);
    const batch = Array.from({ length: 250 }, (_, i) => ({
      event: testEvent(4 + i),
      at: auditTestEpoch + i,
    }));
    const returned = await ctx.store.transaction((tx) => tx.audit.appendAll(batch));
    assert.deepEqual(
      returned.map((r) => r.seq),
      batch.map((_, i) => 4 + i),
    );
    const records = await ctx.store.auditLog.read(0, 1000);
    assert.equal(records.length, 253);
    let previous = genesisHash;
    for (const record of records) {
      assert.equal(record.prevHash, previous);
      assert.equal(record.hash, eventHash(hashedFieldsOf(record)));
      previous = record.hash;
    }
    assert.deepEqual(records.slice(3), returned);
    const key = testAuditKey();
    await new AuditCheckpointer(ctx.store.auditLog, key).checkpointNow(auditTestEpoch + 1000);
    const verdict = await verifyAuditExport(await exportToLines(ctx.store.auditLog), [key.publicJwk]);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });

  it('appendAll refuses the whole batch when one event is invalid, writing nothing', async () => {
    await appendTestEvents(ctx.store, 1, 2);
    const before = await ctx.store.auditLog.head();
    await assert.rejects(
      ctx.store.transaction((tx) =>
        tx.audit.appendAll([
          { event: testEvent(3), at: auditTestEpoch },
          { event: { ...testEvent(4), actor: '' }, at: auditTestEpoch },
        ]),
      ),
      isAuditUnavailable,
    );
    assert.deepEqual(await ctx.store.auditLog.head(), before);
  });

  it('chains text of every kind and batches of several megabytes to the same hashes as the verifier', async () => {
    const awkward = 'Zürich 東京 🔐 \u2028 tab\t quote" back\\slash \u0001 é (e\u0301) \uFEFF';
    const large = 'x'.repeat(3 * 1024 * 1024);
    const batch = [
      {
        event: {
          ...testEvent(1),
          actor: `okta:${awkward}`,
          reason: awkward,
          userAgent: awkward,
          policyIds: [awkward],
          data: { [awkward]: [awkward, -0, 1e21, 0.1, { '': null }], '10': 1, '9': 2 },
        },
        at: auditTestEpoch,
      },
      // Text that an array literal could mistake for NULL, empty or a separator stays that text.
      {
        event: { ...testEvent(2), reason: 'NULL', userAgent: '', sourceIp: 'null', data: { '{}': 'a,b' } },
        at: auditTestEpoch + 2,
      },
      // Three events of 3 MiB: more than one database statement's worth.
      ...[3, 4, 5].map((n) => ({ event: { ...testEvent(n), data: { large } }, at: auditTestEpoch + n })),
      ...Array.from({ length: 120 }, (_, i) => ({ event: testEvent(6 + i), at: auditTestEpoch + 6 + i })),
    ];
    const returned = await ctx.store.transaction((tx) => tx.audit.appendAll(batch));
    assert.deepEqual(
      returned.map((r) => r.seq),
      batch.map((_, i) => i + 1),
    );
    const records = await ctx.store.auditLog.read(0, 1000);
    assert.deepEqual(records, returned);
    let previous = genesisHash;
    for (const record of records) {
      assert.equal(record.prevHash, previous);
      assert.equal(record.hash, eventHash(hashedFieldsOf(record)));
      previous = record.hash;
    }
    assert.equal(records[0]?.reason, awkward);
    assert.equal(records[1]?.reason, 'NULL');
    assert.equal(records[1]?.userAgent, '');
    assert.equal(records[1]?.sourceIp, 'null');
    assert.deepEqual((await ctx.store.auditLog.head()).hash, previous);
  });

  it('returns the record as stored, with every fact of the event', async () => {
    const event = testEvent(6);
    const returned = await ctx.store.transaction((tx) => tx.audit.append(event, auditTestEpoch));
    const [stored] = await ctx.store.auditLog.read(0, 1);
    assert.deepEqual(stored, returned);
    assert.equal(returned.type, event.type);
    assert.equal(returned.actor, event.actor);
    assert.equal(returned.at, auditTestEpoch);
    assert.equal(returned.reason, event.reason);
    assert.equal(returned.userAgent, event.userAgent);
    assert.deepEqual(returned.policyIds, event.policyIds);
    assert.deepEqual(returned.data, event.data);
    assert.match(returned.id, /^[0-9a-f-]{36}$/);
  });

  it('rolls the event back with the transaction that failed after appending it', async () => {
    await appendTestEvents(ctx.store, 1, 2);
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.audit.append(testEvent(3), auditTestEpoch);
        throw new Error('the state change failed');
      }),
      /the state change failed/,
    );
    assert.equal((await ctx.store.auditLog.head()).seq, 2);
    await appendTestEvents(ctx.store, 3, 3);
    const result = await verifyAuditExport(await exportToLines(ctx.store.auditLog), [
      testAuditKey().publicJwk,
    ]);
    assert.equal(result.ok, true);
    assert.equal(result.headSeq, 3);
  });

  it('fails closed: an event that cannot be encoded refuses the whole transaction', async () => {
    const alice = testPrincipal('alice');
    const refused: Record<string, unknown>[] = [
      { data: { when: new Date(0) } },
      { data: { count: 10n } },
      { data: { ratio: Number.NaN } },
      { data: { missing: undefined } },
      { data: ['not', 'an', 'object'] },
      { reason: 'bad \uD800 surrogate' },
      { reason: 'nul \u0000 byte' },
      { actor: '' },
      { type: 'no.such.type' },
      { severity: 'critical' },
    ];
    for (const patch of refused) {
      await assert.rejects(
        ctx.store.transaction(async (tx) => {
          await tx.principals.upsert(alice, auditTestEpoch);
          await tx.audit.append({ ...testEvent(1), ...patch } as never, auditTestEpoch);
        }),
        isAuditUnavailable,
        JSON.stringify(Object.keys(patch)),
      );
    }
    assert.equal(await ctx.store.principals.get(alice.id), undefined);
    assert.equal((await ctx.store.auditLog.head()).seq, 0);
  });

  it('fails closed with audit_unavailable when the database refuses the write', async () => {
    await appendTestEvents(ctx.store, 1, 1);
    const alice = testPrincipal('alice');
    // A head rewound to 0 makes the next insert collide with event 1's primary key.
    await executeRaw(ctx.url, 'update audit_head set seq = 0');
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.principals.upsert(alice, auditTestEpoch);
        await tx.audit.append(testEvent(2), auditTestEpoch);
      }),
      (error: unknown) => isAuditUnavailable(error) && (error as Error).cause instanceof Error,
    );
    assert.equal(await ctx.store.principals.get(alice.id), undefined);
    assert.equal((await ctx.store.auditLog.read(0, 10)).length, 1);
  });

  it('keeps one checkpoint per sequence when two replicas race', async () => {
    await appendTestEvents(ctx.store, 1, 3);
    const key = testAuditKey();
    const replica = await ctx.openStore();
    const [a, b] = await Promise.all([
      new AuditCheckpointer(ctx.store.auditLog, key).checkpointIfDue(auditTestEpoch),
      new AuditCheckpointer(replica.auditLog, key).checkpointIfDue(auditTestEpoch + 1),
    ]);
    // Either both sign the head (the store keeps one), or the later one already sees it signed
    // and has nothing to do: which happens depends on timing.
    const written = [a, b].filter((checkpoint) => checkpoint !== undefined);
    assert.ok(written.length >= 1);
    for (const checkpoint of written) assert.equal(checkpoint.seq, 3);
    assert.equal((await ctx.store.auditLog.checkpoints()).length, 1);
  });

  if (ctx.dialect === 'postgres') {
    it('serialises 20 concurrent transactions into one contiguous, valid chain', async () => {
      const pool = await ctx.openStore({ maxConnections: 25 });
      const key = testAuditKey();
      const records = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          pool.transaction(async (tx) => {
            const record = await tx.audit.append(testEvent(n + 1), auditTestEpoch + n);
            // Hold the transaction open a little so that the others queue on the head row.
            await new Promise((resolve) => setTimeout(resolve, 5));
            return record;
          }),
        ),
      );
      assert.deepEqual(
        records.map((r) => r.seq).sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, n) => n + 1),
      );
      await new AuditCheckpointer(pool.auditLog, key).checkpointIfDue(auditTestEpoch + 100);
      const result = await verifyAuditExport(await exportToLines(pool.auditLog), [key.publicJwk]);
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.headSeq, 20);
      assert.equal(result.signedThroughSeq, 20);
    });
  }
});

/** Runs one statement on the test database behind the store's back. */
async function executeRaw(url: string, statement: string): Promise<void> {
  if (url.startsWith('sqlite:')) {
    const database = new BetterSqlite3(url.slice('sqlite:'.length));
    try {
      database.prepare(statement).run();
    } finally {
      database.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
