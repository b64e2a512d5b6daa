import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { PortcullisError } from '../core/errors.js';
import { testEpoch, testKey } from './test-fixtures.js';

const hour = 3_600_000;

forEachDialect('KeyRepository', (ctx) => {
  it('stores keys per purpose and lists them newest first', async () => {
    const first = testKey('k1', { createdAt: testEpoch });
    const second = testKey('k2', {
      createdAt: testEpoch + hour,
      active: false,
      publishUntil: testEpoch + 2 * hour,
    });
    const audit = testKey('a1', { purpose: 'audit' });
    for (const key of [first, second, audit]) await ctx.store.keys.insert(key);
    assert.deepEqual(await ctx.store.keys.list('token'), [second, first]);
    assert.deepEqual(await ctx.store.keys.list('audit'), [audit]);
    await assert.rejects(
      ctx.store.keys.insert(first),
      (error: unknown) => error instanceof PortcullisError && error.code === 'conflict',
    );
  });

  it('retires every other key of the purpose, published until the given time', async () => {
    await ctx.store.keys.insert(testKey('old', { createdAt: testEpoch }));
    await ctx.store.keys.insert(testKey('new', { createdAt: testEpoch + hour }));
    await ctx.store.keys.insert(testKey('audit', { purpose: 'audit' }));
    await ctx.store.keys.retireOthers('token', 'new', testEpoch + 2 * hour);

    const [newest, oldest] = await ctx.store.keys.list('token');
    assert.deepEqual(
      { active: newest?.active, publishUntil: newest?.publishUntil },
      { active: true, publishUntil: null },
    );
    assert.deepEqual(
      { active: oldest?.active, publishUntil: oldest?.publishUntil },
      { active: false, publishUntil: testEpoch + 2 * hour },
    );
    assert.equal((await ctx.store.keys.list('audit'))[0]?.active, true, 'other purposes untouched');
  });

  it('never extends the publication of a key retired earlier', async () => {
    await ctx.store.keys.insert(testKey('k1', { active: false, publishUntil: testEpoch + hour }));
    await ctx.store.keys.insert(testKey('k2', { createdAt: testEpoch + 1 }));
    await ctx.store.keys.insert(testKey('k3', { createdAt: testEpoch + 2 }));
    await ctx.store.keys.retireOthers('token', 'k3', testEpoch + 5 * hour);
    const byKid = new Map((await ctx.store.keys.list('token')).map((key) => [key.kid, key.publishUntil]));
    assert.deepEqual(Object.fromEntries(byKid), { k1: testEpoch + hour, k2: testEpoch + 5 * hour, k3: null });
  });

  it('refuses to retire everything for a kid it does not hold', async () => {
    await ctx.store.keys.insert(testKey('k1'));
    await assert.rejects(
      ctx.store.keys.retireOthers('token', 'typo', testEpoch),
      (error: unknown) => error instanceof PortcullisError && error.code === 'not_found',
    );
    await assert.rejects(ctx.store.keys.retireOthers('audit', 'k1', testEpoch), /No audit key k1/);
    assert.equal((await ctx.store.keys.list('token'))[0]?.active, true);
  });

  it('deletes inactive keys whose publication has ended, and only those', async () => {
    await ctx.store.keys.insert(testKey('active'));
    await ctx.store.keys.insert(testKey('ended', { active: false, publishUntil: testEpoch }));
    await ctx.store.keys.insert(testKey('published', { active: false, publishUntil: testEpoch + hour }));
    await ctx.store.keys.insert(testKey('no-end', { active: false, publishUntil: null }));
    await ctx.store.keys.insert(
      testKey('audit-ended', { purpose: 'audit', active: false, publishUntil: testEpoch }),
    );

    assert.strictEqual(await ctx.store.keys.deleteUnpublished('token', testEpoch), 1);
    assert.deepEqual((await ctx.store.keys.list('token')).map((key) => key.kid).sort(), [
      'active',
      'no-end',
      'published',
    ]);
    assert.equal(await ctx.store.keys.deleteUnpublished('token', testEpoch), 0);
    assert.equal((await ctx.store.keys.list('audit')).length, 1, 'other purposes untouched');
  });
});
