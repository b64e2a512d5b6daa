import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { testEpoch, testPrincipal } from './test-fixtures.js';

forEachDialect('PrincipalRepository', (ctx) => {
  it('inserts a principal at first login', async () => {
    const alice = testPrincipal('alice', ['engineering', 'sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    assert.deepEqual(await ctx.store.principals.get(alice.id), { ...alice, groupsAssertedAt: testEpoch });
    assert.equal(await ctx.store.principals.get('okta:nobody'), undefined);
  });

  it('refreshes name, e-mail and groups at the next login', async () => {
    const alice = testPrincipal('alice', ['engineering', 'sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    const later = { ...alice, displayName: 'Alice B.', email: null, groups: ['engineering'] };
    await ctx.store.principals.upsert(later, testEpoch + 60_000);
    assert.deepEqual(await ctx.store.principals.get(alice.id), {
      ...later,
      groupsAssertedAt: testEpoch + 60_000,
    });
  });

  it('keeps principals of different IdPs apart', async () => {
    const okta = testPrincipal('alice');
    const google = { ...okta, id: 'google:alice', idp: 'google', groups: ['contractors'] };
    await ctx.store.principals.upsert(okta, testEpoch);
    await ctx.store.principals.upsert(google, testEpoch);
    assert.deepEqual((await ctx.store.principals.get(okta.id))?.groups, okta.groups);
    assert.deepEqual((await ctx.store.principals.get(google.id))?.groups, ['contractors']);
  });
});
