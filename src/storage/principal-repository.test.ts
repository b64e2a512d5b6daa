import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { testEpoch, testPrincipal } from './test-fixtures.js';

forEachDialect('PrincipalRepository', (ctx) => {
  it('inserts a principal at first login', async () => {
    const alice = testPrincipal('alice', ['engineering', 'sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    assert.deepEqual(await ctx.store.principals.get(alice.id), {
      ...alice,
      groupsAssertedAt: testEpoch,
      disabled: false,
    });
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
      disabled: false,
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

  it("keys a linked sign-in's row by its canonical identity, beside the identity's pre-link row", async () => {
    const before = { ...testPrincipal('alice'), id: 'google:al', idp: 'google', subject: 'al' };
    await ctx.store.principals.upsert(before, testEpoch);
    // google:al is now linked to okta:alice: its sign-in carries the canonical id.
    await ctx.store.principals.upsert({ ...before, id: 'okta:alice', groups: ['sre'] }, testEpoch + 1);
    const stored = await ctx.store.principals.get('okta:alice');
    assert.deepEqual([stored?.idp, stored?.subject, stored?.groups], ['okta', 'alice', ['sre']]);
    assert.deepEqual((await ctx.store.principals.get('google:al'))?.groups, before.groups);
  });

  it('disables and re-enables a principal; a login keeps it disabled; an unseen one gets a bare row', async () => {
    const alice = testPrincipal('alice', ['engineering']);
    await ctx.store.principals.upsert(alice, testEpoch);
    await ctx.store.principals.setDisabled(alice.id, true, testEpoch + 1);
    await ctx.store.principals.upsert(alice, testEpoch + 2);
    assert.equal((await ctx.store.principals.get(alice.id))?.disabled, true);
    assert.deepEqual((await ctx.store.principals.get(alice.id))?.groups, ['engineering']);
    await ctx.store.principals.setDisabled(alice.id, false, testEpoch + 3);
    assert.equal((await ctx.store.principals.get(alice.id))?.disabled, false);

    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockEnabled(alice.id)), true);
    await ctx.store.principals.setDisabled(alice.id, true, testEpoch + 4);
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockEnabled(alice.id)), false);
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockEnabled('okta:unknown')), true);

    await ctx.store.principals.setDisabled('okta:never-seen', true, testEpoch);
    const bare = await ctx.store.principals.get('okta:never-seen');
    assert.equal(bare?.disabled, true);
    assert.deepEqual(bare?.groups, []);
  });

  it('replaces the groups of an existing principal only', async () => {
    const alice = testPrincipal('alice', ['engineering', 'sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    assert.equal(await ctx.store.principals.setGroups(alice.id, ['sre'], testEpoch + 5), true);
    const stored = await ctx.store.principals.get(alice.id);
    assert.deepEqual(stored?.groups, ['sre']);
    assert.equal(stored?.groupsAssertedAt, testEpoch + 5);
    assert.equal(await ctx.store.principals.setGroups('okta:nobody', ['sre'], testEpoch), false);
  });
});
