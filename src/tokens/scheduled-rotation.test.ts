import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { type DialectTestContext, forEachDialect } from '../../test-support/dialects.js';
import type { KeyRepository, Store } from '../app/ports.js';
import { ManualClock } from '../core/clock.js';
import { JweSecretBox } from '../crypto/secret-box.js';
import { SigningKeyStore, signingKeySealPurpose } from './key-store.js';
import { ScheduledKeyRotation } from './scheduled-rotation.js';

const start = Date.UTC(2026, 0, 1, 12, 0, 0);
const day = 86_400;
const box = new JweSecretBox(randomBytes(32)).withPurpose(signingKeySealPurpose);

/**
 * One replica: a key store whose cache clock stays at `start` (so its view of the keys is only
 * re-read when it is told to), and the scheduled rotation over `store`.
 */
function replica(
  store: Store,
  intervalSeconds: number | null = 30 * day,
  prepublishSeconds: number | null = null,
) {
  const options = { longestTokenLifetimeSeconds: 3600, clock: new ManualClock(start) };
  const keys = new SigningKeyStore(store.keys, box, options);
  const rotation = new ScheduledKeyRotation({
    store,
    keys,
    keysIn: (repository: KeyRepository) => new SigningKeyStore(repository, box, options),
    intervalSeconds,
    overlapSeconds: day,
    prepublishSeconds,
  });
  return { keys, rotation };
}

async function rotationEvents(store: Store) {
  return (await store.auditLog.read(0, 100)).filter((event) => event.type === 'keys.rotated');
}

async function activeKids(ctx: DialectTestContext): Promise<string[]> {
  return (await ctx.store.keys.list('token')).filter((key) => key.active).map((key) => key.kid);
}

forEachDialect('scheduled token-key rotation', (ctx) => {
  it('does nothing before the key is due, then rotates once, audited as the system', async () => {
    const { keys, rotation } = replica(ctx.store);
    const first = await keys.ensureActiveKey('token', start);
    assert.equal(await rotation.rotateIfDue(start + 30 * day * 1000 - 1), null);
    assert.deepEqual(await rotationEvents(ctx.store), []);

    const due = start + 30 * day * 1000;
    const rotated = await rotation.rotateIfDue(due);
    assert.ok(rotated);
    assert.deepEqual(rotated.retiredKids, [first.kid]);
    assert.equal(rotated.publishUntil, due + day * 1000);
    // The replica signs with the new key at once, not after its next refresh.
    assert.equal((await keys.activeSigningKey('token')).kid, rotated.kid);
    assert.deepEqual(
      (await keys.publicKeys('token', due)).keys.map((key) => key.kid),
      [rotated.kid, first.kid],
    );
    const [event, ...more] = await rotationEvents(ctx.store);
    assert.deepEqual(more, []);
    assert.equal(event?.actor, 'system');
    assert.deepEqual(event?.data, {
      purpose: 'token',
      trigger: 'schedule',
      kid: rotated.kid,
      alg: 'EdDSA',
      retiredKids: [first.kid],
      publishUntil: due + day * 1000,
      deleted: 0,
    });
    // The new key is young: nothing more is due.
    assert.equal(await rotation.rotateIfDue(due + 1000), null);
  });

  it('publishes the next key a day ahead, once across replicas; the rotation makes that key sign', async () => {
    const a = replica(ctx.store, 30 * day, day);
    const b = replica(await ctx.openStore(), 30 * day, day);
    const first = await a.keys.ensureActiveKey('token', start);
    const due = start + 30 * day * 1000;
    assert.equal(await a.rotation.rotateIfDue(due - day * 1000 - 1), null);
    assert.equal((await ctx.store.keys.list('token')).length, 1, 'not yet');

    const ahead = due - day * 1000;
    assert.equal(await a.rotation.rotateIfDue(ahead), null);
    assert.equal(await b.rotation.rotateIfDue(ahead + 1000), null);
    const next = await a.keys.nextKid();
    assert.ok(next);
    // Published, not signing: the JWKS lists the active key first, then the next one.
    assert.deepEqual(
      (await a.keys.publicKeys('token', ahead)).keys.map((key) => key.kid),
      [first.kid, next],
    );
    assert.equal((await a.keys.activeSigningKey('token')).kid, first.kid);
    const published = (await ctx.store.auditLog.read(0, 100)).filter((e) => e.type === 'keys.next_published');
    assert.deepEqual(
      published.map((e) => [e.actor, e.data]),
      [['system', { purpose: 'token', kid: next, activeFrom: due }]],
    );

    const rotated = await b.rotation.rotateIfDue(due);
    assert.equal(rotated?.kid, next, 'the key verifiers already hold');
    b.keys.invalidate();
    assert.equal((await b.keys.activeSigningKey('token')).kid, next);
    assert.deepEqual(await activeKids(ctx), [next]);
    assert.equal(await b.keys.nextKid(), undefined);
    // Its age counts from when it was made, a day before it signed: the next rotation is due 29 days
    // after this one, and its key is published a day before that.
    const nextAgain = due + 28 * day * 1000;
    a.keys.invalidate();
    await a.rotation.rotateIfDue(nextAgain);
    const second = await a.keys.nextKid();
    assert.ok(second && second !== next);
  });

  it('never rotates when the interval is off', async () => {
    const { keys, rotation } = replica(ctx.store, null);
    await keys.ensureActiveKey('token', start);
    assert.equal(await rotation.rotateIfDue(start + 3650 * day * 1000), null);
    assert.equal((await ctx.store.keys.list('token')).length, 1);
  });

  it('a replica whose view is stale finds the key already rotated and does nothing', async () => {
    const a = replica(ctx.store);
    const b = replica(await ctx.openStore());
    const first = await a.keys.ensureActiveKey('token', start);
    assert.equal((await b.keys.activeSigningKey('token')).kid, first.kid);
    const due = start + 31 * day * 1000;
    const rotated = await a.rotation.rotateIfDue(due);
    assert.ok(rotated);
    // b still believes `first` signs, finds it due, and loses the compare-and-set.
    assert.equal(await b.rotation.rotateIfDue(due + 1), null);
    assert.equal((await b.keys.activeSigningKey('token')).kid, rotated.kid);
    assert.deepEqual(await activeKids(ctx), [rotated.kid]);
    assert.equal((await rotationEvents(ctx.store)).length, 1);
  });

  it('refuses the rotation when its audit event cannot be written (fail closed)', async () => {
    const { keys } = replica(ctx.store);
    const first = await keys.ensureActiveKey('token', start);
    const options = { longestTokenLifetimeSeconds: 3600 };
    const rotation = new ScheduledKeyRotation({
      store: {
        transaction: (work) =>
          ctx.store.transaction((tx) =>
            work({
              ...tx,
              audit: {
                append: async () => {
                  throw new Error('audit log unavailable');
                },
                appendAll: async () => {
                  throw new Error('audit log unavailable');
                },
              },
            }),
          ),
      },
      keys,
      keysIn: (repository) => new SigningKeyStore(repository, box, options),
      intervalSeconds: 30 * day,
      overlapSeconds: day,
    });
    await assert.rejects(rotation.rotateIfDue(start + 31 * day * 1000), /audit log unavailable/);
    assert.deepEqual(await activeKids(ctx), [first.kid]);
    assert.equal((await ctx.store.keys.list('token')).length, 1);
  });
});

forEachDialect(
  'scheduled token-key rotation, replicas at once',
  (ctx) => {
    it('of replicas that find the key due at the same moment, exactly one rotates', async () => {
      const replicas = [replica(ctx.store)];
      for (let i = 0; i < 3; i++) replicas.push(replica(await ctx.openStore()));
      const first = await replicas[0]?.keys.ensureActiveKey('token', start);
      for (const { keys } of replicas) assert.equal((await keys.activeSigningKey('token')).kid, first?.kid);
      const due = start + 31 * day * 1000;
      const results = await Promise.all(replicas.map(({ rotation }) => rotation.rotateIfDue(due)));
      const made = results.filter((result) => result !== null);
      assert.equal(made.length, 1, JSON.stringify(results));
      assert.deepEqual(await activeKids(ctx), [made[0]?.kid]);
      assert.equal((await ctx.store.keys.list('token')).length, 2);
      assert.equal((await rotationEvents(ctx.store)).length, 1);
    });
  },
  // SQLite transactions of one process's connections do not overlap (BEGIN IMMEDIATE in one thread).
  { dialects: ['postgres'] },
);
