import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { testEpoch } from './test-fixtures.js';

forEachDialect('EphemeralStore', (ctx) => {
  it('returns a value once, then never again', async () => {
    await ctx.store.ephemeral.put('oidc_state', 'abc', '{"nonce":"n"}', testEpoch + 60_000);
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'abc', testEpoch), '{"nonce":"n"}');
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'abc', testEpoch), undefined);
  });

  it('keeps kinds apart', async () => {
    await ctx.store.ephemeral.put('oidc_state', 'k', 'state', testEpoch + 60_000);
    await ctx.store.ephemeral.put('device_code', 'k', 'code', testEpoch + 60_000);
    assert.equal(await ctx.store.ephemeral.take('device_code', 'k', testEpoch), 'code');
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'k', testEpoch), 'state');
  });

  it('treats a value as gone from its expiry on, and does not hand it out later', async () => {
    await ctx.store.ephemeral.put('oidc_state', 'abc', 'v', testEpoch + 1000);
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'abc', testEpoch + 1000), undefined);
    assert.equal(
      await ctx.store.ephemeral.take('oidc_state', 'abc', testEpoch),
      undefined,
      'deleted by the take',
    );
  });

  it('replaces the value of a key that is put again', async () => {
    await ctx.store.ephemeral.put('oidc_state', 'abc', 'first', testEpoch + 1000);
    await ctx.store.ephemeral.put('oidc_state', 'abc', 'second', testEpoch + 5000);
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'abc', testEpoch + 2000), 'second');
  });

  it('hands a value to exactly one of many concurrent takers', async () => {
    await ctx.store.ephemeral.put('login_code', 'ABCD-EFGH', 'session', testEpoch + 60_000);
    const replica = await ctx.openStore();
    const takes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? ctx.store : replica).ephemeral.take('login_code', 'ABCD-EFGH', testEpoch),
      ),
    );
    assert.deepEqual(
      takes.filter((value) => value !== undefined),
      ['session'],
    );
  });

  it('purges expired values and reports how many', async () => {
    await ctx.store.ephemeral.put('oidc_state', 'old', 'v', testEpoch);
    await ctx.store.ephemeral.put('oidc_state', 'older', 'v', testEpoch - 1);
    await ctx.store.ephemeral.put('oidc_state', 'live', 'v', testEpoch + 1);
    assert.strictEqual(await ctx.store.ephemeral.purgeExpired(testEpoch), 2);
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 'live', testEpoch), 'v');
  });

  it('lists the live values of one kind by key', async () => {
    await ctx.store.ephemeral.put('gateway_sessions', 'replica-b', '[2]', testEpoch + 60_000);
    await ctx.store.ephemeral.put('gateway_sessions', 'replica-a', '[1]', testEpoch + 60_000);
    await ctx.store.ephemeral.put('gateway_sessions', 'replica-gone', '[]', testEpoch);
    await ctx.store.ephemeral.put('oidc_state', 'other-kind', 'v', testEpoch + 60_000);
    assert.deepEqual(await ctx.store.ephemeral.list('gateway_sessions', testEpoch), [
      { key: 'replica-a', value: '[1]' },
      { key: 'replica-b', value: '[2]' },
    ]);
  });
});
