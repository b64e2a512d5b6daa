import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryEphemeralStore } from '../../test-support/oidc-fixtures.js';
import type { EphemeralStore } from '../app/ports.js';
import { ManualClock } from '../core/clock.js';
import { CancelKeys, type CancelKeysOptions, cancelKeyKind, type GatewayKey } from './cancel-keys.js';

const start = Date.UTC(2026, 10, 24, 12);
const upstream = { resourceId: 'demo-db', processId: 4242, secretKey: Buffer.from([9, 8, 7, 6]) };

function replica(store: CancelKeysOptions['store'], clock: ManualClock, maxLookups?: number) {
  const errors: unknown[] = [];
  const keys = new CancelKeys({
    store,
    now: () => clock.now(),
    onError: (error) => errors.push(error),
    ...(maxLookups === undefined ? {} : { maxLookups }),
  });
  return { keys, errors };
}

/** Lets the store writes that issue and release start (they are not awaited by their callers). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function otherSecret(key: GatewayKey): Buffer {
  const secret = Buffer.from(key.secretKey);
  secret[0] = (secret[0] ?? 0) ^ 0xff;
  return secret;
}

/** Two replicas on one store; A has issued a key for {@link upstream}, shared until a minute on. */
async function keyIssuedOnA() {
  const store = new MemoryEphemeralStore();
  const clock = new ManualClock(start);
  const a = replica(store, clock);
  const b = replica(store, clock);
  const key = a.keys.issue(upstream, start + 60_000);
  await settle();
  return { store, clock, a, b, key };
}

describe('CancelKeys', () => {
  it('routes a key to its target on the replica that issued it and, through the store, on another', async () => {
    const { a, b, key } = await keyIssuedOnA();

    assert.deepEqual(await a.keys.resolve(key.processId, key.secretKey), { found: 'here', target: upstream });
    assert.deepEqual(await b.keys.resolve(key.processId, key.secretKey), {
      found: 'shared',
      target: upstream,
    });
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  it('routes nothing for a wrong secret, a short secret or an unknown process id', async () => {
    const { a, b, key } = await keyIssuedOnA();

    for (const keys of [a.keys, b.keys]) {
      assert.deepEqual(await keys.resolve(key.processId, otherSecret(key)), { found: 'unknown' });
      assert.deepEqual(await keys.resolve(key.processId, key.secretKey.subarray(0, 3)), { found: 'unknown' });
      assert.deepEqual(await keys.resolve(key.processId ^ 1, key.secretKey), { found: 'unknown' });
    }
  });

  it('keeps the upstream key and the resource out of the store, and its row unrelated to the process id', async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const a = replica(store, clock);
    const key = a.keys.issue(upstream, start + 60_000);
    await settle();

    const rows = await store.list(cancelKeyKind, clock.now());
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.ok(row);
    assert.ok(!row.key.includes(String(key.processId)));
    assert.ok(!row.value.includes('demo-db'));
    assert.ok(!row.value.includes(String(upstream.processId)));
    assert.ok(!row.value.includes(upstream.secretKey.toString('base64')));
    assert.ok(!Buffer.from(row.value.split('.')[1] ?? '', 'base64url').includes(upstream.secretKey));
  });

  it('ignores a row that was altered in the store', async () => {
    const { store, clock, b, key } = await keyIssuedOnA();
    const [row] = await store.list(cancelKeyKind, clock.now());
    assert.ok(row);

    // One character of the sealed text changed (not the last, whose low bits may be padding).
    store.tamper(cancelKeyKind, row.key, (value) => {
      const at = value.length - 5;
      return `${value.slice(0, at)}${value[at] === 'A' ? 'B' : 'A'}${value.slice(at + 1)}`;
    });
    assert.deepEqual(await b.keys.resolve(key.processId, key.secretKey), { found: 'unknown' });
    store.tamper(cancelKeyKind, row.key, () => 'not a sealed row');
    assert.deepEqual(await b.keys.resolve(key.processId, key.secretKey), { found: 'unknown' });
    assert.deepEqual(b.errors, []);
  });

  it('withdraws the shared key when the session ends, and lets it lapse with the grant', async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const a = replica(store, clock);
    const b = replica(store, clock);
    const released = a.keys.issue(upstream, start + 60_000);
    const lapsing = a.keys.issue({ ...upstream, processId: 4343 }, start + 60_000);
    await settle();

    a.keys.release(released.processId);
    await settle();
    assert.deepEqual(await a.keys.resolve(released.processId, released.secretKey), { found: 'unknown' });
    assert.deepEqual(await b.keys.resolve(released.processId, released.secretKey), { found: 'unknown' });

    clock.advance(60_000);
    assert.deepEqual(await b.keys.resolve(lapsing.processId, lapsing.secretKey), { found: 'unknown' });
    assert.equal((await store.list(cancelKeyKind, clock.now())).length, 0);
  });

  it('still routes its own keys when the store fails, and reports the failure', async () => {
    const failing: CancelKeysOptions['store'] = {
      put: async () => {
        throw new Error('store down');
      },
      peek: async () => {
        throw new Error('store down');
      },
      take: async () => {
        throw new Error('store down');
      },
    };
    const clock = new ManualClock(start);
    const a = replica(failing, clock);
    const key = a.keys.issue(upstream, start + 60_000);
    await settle();
    assert.deepEqual(await a.keys.resolve(key.processId, key.secretKey), { found: 'here', target: upstream });
    assert.deepEqual(await a.keys.resolve(key.processId ^ 1, key.secretKey), { found: 'unknown' });
    a.keys.release(key.processId);
    await settle();
    assert.equal(a.errors.length, 3, 'the write, the read and the withdrawal');
  });

  it('drops CancelRequests for unknown keys beyond its look-ups under way', async () => {
    const memory = new MemoryEphemeralStore();
    const waiting: (() => void)[] = [];
    const slow: Pick<EphemeralStore, 'put' | 'peek' | 'take'> = {
      put: (...args) => memory.put(...args),
      take: (...args) => memory.take(...args),
      peek: (...args) => new Promise((resolve) => waiting.push(() => resolve(memory.peek(...args)))),
    };
    const clock = new ManualClock(start);
    const a = replica(memory, clock);
    const b = replica(slow, clock, 2);
    const key = a.keys.issue(upstream, start + 60_000);
    await settle();

    const first = b.keys.resolve(key.processId, key.secretKey);
    const second = b.keys.resolve(1, Buffer.from([1, 2, 3, 4]));
    assert.deepEqual(await b.keys.resolve(key.processId, key.secretKey), { found: 'dropped' });
    for (const release of waiting.splice(0)) release();
    assert.deepEqual(await first, { found: 'shared', target: upstream });
    assert.deepEqual(await second, { found: 'unknown' });
    // With the look-ups done, the next one goes through again.
    const third = b.keys.resolve(key.processId, key.secretKey);
    await settle();
    for (const release of waiting.splice(0)) release();
    assert.deepEqual(await third, { found: 'shared', target: upstream });
  });
});
