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
      lastLoginAt: testEpoch,
      disabled: false,
      lock: null,
      sessionsValidAfter: null,
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
      lastLoginAt: testEpoch + 60_000,
      disabled: false,
      lock: null,
      sessionsValidAfter: null,
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

    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockStanding(alice.id)), 'enabled');
    await ctx.store.principals.setDisabled(alice.id, true, testEpoch + 4);
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockStanding(alice.id)), 'disabled');
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockStanding('okta:unknown')), 'enabled');

    await ctx.store.principals.setDisabled('okta:never-seen', true, testEpoch);
    const bare = await ctx.store.principals.get('okta:never-seen');
    assert.equal(bare?.disabled, true);
    assert.deepEqual(bare?.groups, []);
  });

  it('locks apart from SCIM: a reactivation or login keeps the lock; unlock clears it; lists by standing', async () => {
    const alice = testPrincipal('alice', ['engineering']);
    const bob = testPrincipal('bob', ['sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    await ctx.store.principals.upsert(bob, testEpoch);
    const lock = { at: testEpoch + 10, by: 'okta:admin', reason: 'laptop stolen' };
    await ctx.store.principals.setLock(alice.id, lock, testEpoch + 10);
    await ctx.store.principals.setDisabled(alice.id, false, testEpoch + 11);
    await ctx.store.principals.upsert(alice, testEpoch + 12);
    const locked = await ctx.store.principals.get(alice.id);
    assert.deepEqual(locked?.lock, lock);
    assert.equal(locked?.sessionsValidAfter, testEpoch + 10);
    assert.equal(locked?.disabled, false);
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockStanding(alice.id)), 'locked');

    await ctx.store.principals.setDisabled(bob.id, true, testEpoch + 13);
    await ctx.store.principals.setLock('okta:never-seen', { ...lock, at: testEpoch + 20 }, testEpoch + 20);
    const bare = await ctx.store.principals.get('okta:never-seen');
    assert.deepEqual([bare?.lastLoginAt, bare?.disabled, bare?.groups], [0, false, []]);
    assert.deepEqual(
      (await ctx.store.principals.listRestricted('locked', 10)).map((p) => p.id),
      ['okta:never-seen', alice.id],
    );
    assert.deepEqual(
      (await ctx.store.principals.listRestricted('locked', 1)).map((p) => p.id),
      ['okta:never-seen'],
    );
    assert.deepEqual(
      (await ctx.store.principals.listRestricted('disabled', 10)).map((p) => p.id),
      [bob.id],
    );

    await ctx.store.principals.setLock(alice.id, null, testEpoch + 30);
    assert.equal((await ctx.store.principals.get(alice.id))?.lock, null);
    assert.equal(
      (await ctx.store.principals.get(alice.id))?.sessionsValidAfter,
      testEpoch + 10,
      'an unlock keeps earlier sessions dead',
    );
    assert.equal((await ctx.store.principals.get(bob.id))?.sessionsValidAfter, testEpoch + 13);
    assert.equal(await ctx.store.transaction((tx) => tx.principals.lockStanding(alice.id)), 'enabled');
    assert.deepEqual((await ctx.store.principals.get(alice.id))?.groups, ['engineering']);
  });

  it('replaces the groups of an existing principal only, keeping when they were asserted', async () => {
    const alice = testPrincipal('alice', ['engineering', 'sre']);
    await ctx.store.principals.upsert(alice, testEpoch);
    assert.equal(await ctx.store.principals.setGroups(alice.id, ['sre']), true);
    const stored = await ctx.store.principals.get(alice.id);
    assert.deepEqual(stored?.groups, ['sre']);
    assert.equal(stored?.groupsAssertedAt, testEpoch, 'only a sign-in or an IdP token restarts the clock');
    assert.equal(await ctx.store.principals.setGroups('okta:nobody', ['sre']), false);
  });
});
