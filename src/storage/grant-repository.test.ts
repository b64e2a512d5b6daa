import assert from 'node:assert/strict';
import { beforeEach, it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import type { AccessRequest } from '../core/access-request.js';
import { PortcullisError } from '../core/errors.js';
import { beginRevocation, grantStatuses, markRevoked, markRevokeFailed } from '../core/grant.js';
import { testEpoch, testGrant, testPrincipal, testRequest } from './test-fixtures.js';

const isCode = (code: string) => (error: unknown) => error instanceof PortcullisError && error.code === code;

forEachDialect('GrantRepository', (ctx) => {
  const requests: AccessRequest[] = [];

  beforeEach(async () => {
    requests.length = 0;
    for (const id of ['r1', 'r2', 'r3', 'r4']) {
      const request = testRequest(id, {
        state: 'active',
        activatedAt: testEpoch,
        expiresAt: testEpoch + 60_000,
      });
      await ctx.store.requests.insert(request);
      requests.push(request);
    }
  });
  const request = (index: number) => requests[index] as AccessRequest;

  it('stores and reads back a grant, by id and by request', async () => {
    const grant = testGrant('g1', request(0));
    await ctx.store.grants.insert(grant);
    assert.deepEqual(await ctx.store.grants.get('g1'), grant);
    assert.deepEqual(await ctx.store.grants.getByRequest('r1'), grant);
    assert.equal(await ctx.store.grants.get('missing'), undefined);
    assert.equal(await ctx.store.grants.getByRequest('r2'), undefined);
  });

  it('allows one grant per request: the second is a conflict', async () => {
    await ctx.store.grants.insert(testGrant('g1', request(0)));
    await assert.rejects(ctx.store.grants.insert(testGrant('g2', request(0))), isCode('conflict'));
  });

  it('updateIfStatus writes only over an expected status (concurrent revokers: the first wins)', async () => {
    const grant = testGrant('g1', request(0));
    await ctx.store.grants.insert(grant);
    const revoking = beginRevocation(grant, testEpoch + 1);
    await ctx.store.grants.update(revoking);
    const unfinished = ['revoking', 'revoke_failed'] as const;
    const revoked = markRevoked(revoking, testEpoch + 2);
    assert.equal(await ctx.store.grants.updateIfStatus(revoked, unfinished), true);
    // The loser's failure is not recorded over the winner's success.
    const failed = markRevokeFailed(revoking, 'lost the race', testEpoch + 3);
    assert.equal(await ctx.store.grants.updateIfStatus(failed, unfinished), false);
    assert.deepEqual(await ctx.store.grants.get('g1'), revoked);
    assert.equal(await ctx.store.grants.updateIfStatus(testGrant('missing', request(1)), unfinished), false);
  });

  it('refuses a grant for a request that does not exist (foreign keys are enforced)', async () => {
    await assert.rejects(ctx.store.grants.insert(testGrant('g1', testRequest('nowhere'))));
  });

  it('updates every field but the sealed credentials; an unknown grant is not_found', async () => {
    const grant = testGrant('g1', request(0));
    await ctx.store.grants.insert(grant);
    await ctx.store.grants.setSealedCredentials('g1', 'sealed');
    const failed = markRevokeFailed(
      beginRevocation(grant, testEpoch + 1),
      'connection refused',
      testEpoch + 2,
    );
    await ctx.store.grants.update({ ...failed, artefacts: { roleName: 'pc_g1', dropped: false } });
    assert.deepEqual(await ctx.store.grants.get('g1'), {
      ...failed,
      artefacts: { roleName: 'pc_g1', dropped: false },
    });
    assert.equal(await ctx.store.grants.getSealedCredentials('g1'), 'sealed');
    await assert.rejects(ctx.store.grants.update(testGrant('ghost', request(1))), isCode('not_found'));
  });

  it('lists grants by principal, status and resource, newest first', async () => {
    const carol = testPrincipal('carol');
    await ctx.store.grants.insert(testGrant('g1', request(0), { notBefore: testEpoch + 1 }));
    await ctx.store.grants.insert(
      testGrant('g2', request(1), { notBefore: testEpoch + 2, status: 'revoked' }),
    );
    await ctx.store.grants.insert(
      testGrant('g3', request(2), {
        notBefore: testEpoch + 3,
        principalId: carol.id,
        resourceId: 'staging-db',
      }),
    );
    const ids = (grants: readonly { id: string }[]) => grants.map((grant) => grant.id);
    const alice = request(0).requesterId;

    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([alice])), ['g2', 'g1']);
    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([alice], ['active'])), ['g1']);
    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([alice], [])), []);
    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([carol.id])), ['g3']);
    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([carol.id, alice])), ['g3', 'g2', 'g1']);
    assert.deepEqual(ids(await ctx.store.grants.listForPrincipals([])), []);
    assert.deepEqual(ids(await ctx.store.grants.list({})), ['g3', 'g2', 'g1']);
    assert.deepEqual(ids(await ctx.store.grants.list({ statuses: ['active'] })), ['g3', 'g1']);
    assert.deepEqual(ids(await ctx.store.grants.list({ resourceId: 'staging-db' })), ['g3']);
    assert.deepEqual(ids(await ctx.store.grants.list({ limit: 1 })), ['g3']);
    // What someone who is not an administrator may see: their own, and those on resources they own.
    const visible = (principalIds: string[], resourceIds: string[]) =>
      ctx.store.grants.list({ visibleTo: { principalIds, resourceIds } }).then(ids);
    assert.deepEqual(await visible([carol.id], []), ['g3']);
    assert.deepEqual(await visible(['demo:nobody'], ['staging-db']), ['g3']);
    assert.deepEqual(await visible([carol.id, alice], []), ['g3', 'g2', 'g1']);
    assert.deepEqual(await visible([], ['prod-db']), ['g2', 'g1']);
    assert.deepEqual(await visible([], []), []);
  });

  it('lists due revocations, earliest first, and the next attempt', async () => {
    assert.equal(await ctx.store.grants.nextRevocationAttempt(), null);
    await ctx.store.grants.insert(testGrant('active', request(0)));
    await ctx.store.grants.insert(
      testGrant('later', request(1), { status: 'revoke_failed', nextAttemptAt: testEpoch + 5000 }),
    );
    await ctx.store.grants.insert(
      testGrant('soon', request(2), { status: 'revoking', nextAttemptAt: testEpoch + 1000 }),
    );
    await ctx.store.grants.insert(
      markRevoked(beginRevocation(testGrant('done', request(3)), testEpoch), testEpoch + 1),
    );

    assert.strictEqual(await ctx.store.grants.nextRevocationAttempt(), testEpoch + 1000);
    const due = async (now: number, limit = 10) =>
      (await ctx.store.grants.listDueRevocations(now, limit)).map((grant) => grant.id);
    assert.deepEqual(await due(testEpoch), []);
    assert.deepEqual(await due(testEpoch + 1000), ['soon']);
    assert.deepEqual(await due(testEpoch + 9000), ['soon', 'later']);
    assert.deepEqual(await due(testEpoch + 9000, 1), ['soon']);
  });

  it('treats a pending revocation without a next attempt as due now', async () => {
    await ctx.store.grants.insert(
      testGrant('timed', request(0), { status: 'revoking', nextAttemptAt: testEpoch }),
    );
    await ctx.store.grants.insert(
      testGrant('untimed', request(1), { status: 'revoking', nextAttemptAt: null }),
    );
    assert.deepEqual(
      (await ctx.store.grants.listDueRevocations(testEpoch, 10)).map((grant) => grant.id),
      ['untimed', 'timed'],
    );
    assert.strictEqual(await ctx.store.grants.nextRevocationAttempt(), 0);
  });

  it('counts by status, with every status present', async () => {
    await ctx.store.grants.insert(testGrant('g1', request(0)));
    await ctx.store.grants.insert(testGrant('g2', request(1)));
    await ctx.store.grants.insert(testGrant('g3', request(2), { status: 'revoking' }));
    const counts = await ctx.store.grants.countByStatus();
    assert.deepEqual(Object.keys(counts).sort(), [...grantStatuses].sort());
    assert.strictEqual(counts.active, 2);
    assert.strictEqual(counts.revoking, 1);
    assert.strictEqual(counts.revoked, 0);
  });

  it('keeps sealed credentials apart from the grant, and clears them', async () => {
    const grant = testGrant('g1', request(0));
    await ctx.store.grants.insert(grant);
    assert.equal(await ctx.store.grants.getSealedCredentials('g1'), null);
    await ctx.store.grants.setSealedCredentials('g1', 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..sealed');
    assert.equal(
      await ctx.store.grants.getSealedCredentials('g1'),
      'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..sealed',
    );
    assert.deepEqual(await ctx.store.grants.get('g1'), grant, 'not part of the grant');
    await ctx.store.grants.setSealedCredentials('g1', null);
    assert.equal(await ctx.store.grants.getSealedCredentials('g1'), null);
    assert.equal(await ctx.store.grants.getSealedCredentials('missing'), null);
    await assert.rejects(ctx.store.grants.setSealedCredentials('missing', 'x'), isCode('not_found'));
  });

  it('lists every grant of a resource ended before its deadline, however many ended since', async () => {
    const victim = {
      ...testGrant('victim', request(0)),
      status: 'revoked' as const,
      expiresAt: testEpoch + 3_600_000,
    };
    await ctx.store.grants.insert(victim);
    await ctx.store.grants.insert({ ...testGrant('live', request(1)), expiresAt: testEpoch + 3_600_000 });
    await ctx.store.grants.insert({
      ...testGrant('elsewhere', request(2)),
      resourceId: 'other-db',
      status: 'revoked',
      expiresAt: testEpoch + 3_600_000,
    });
    // More grants that ended at their deadline than any list page holds, all newer than the victim.
    await ctx.store.transaction(async (tx) => {
      for (let i = 0; i < 1100; i++) {
        const made = testRequest(`short-${i}`, { state: 'active', activatedAt: testEpoch + 1000 + i });
        await tx.requests.insert(made);
        await tx.grants.insert({
          ...testGrant(`short-${i}`, made),
          notBefore: testEpoch + 1000 + i,
          status: 'revoked',
          expiresAt: testEpoch + 2000 + i,
        });
      }
    });
    const ended = await ctx.store.grants.listEndedBeforeTheirTime('prod-db', testEpoch + 10_000);
    assert.deepEqual(
      ended.map((g) => g.id),
      ['victim'],
    );
    assert.equal((await ctx.store.grants.listEndedBeforeTheirTime('prod-db', testEpoch)).length, 1101);
  });
});
