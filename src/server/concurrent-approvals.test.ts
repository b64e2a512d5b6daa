/**
 * Real concurrency on real PostgreSQL storage: many approvals racing on one request produce
 * exactly one grant, and one person counts once however often they press the button.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { demoPrincipal } from '../../test-support/demo-principal.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
import type { Principal } from '../core/principal.js';

const origin = { sourceIp: '127.0.0.1', userAgent: 'test', channel: 'api' };
const approvers: Principal[] = Array.from({ length: 20 }, (_, i) => ({
  id: `demo:approver-${i}`,
  idp: 'demo',
  subject: `approver-${i}`,
  displayName: `Approver ${i}`,
  email: null,
  groups: ['sre'],
}));
const requester = demoPrincipal('requester', ['engineering']);

describe('concurrent approvals on PostgreSQL', () => {
  let h: Harness;
  let skip: string | undefined;

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    h = await startHarness({
      storage: 'postgres',
      policyFile: join(import.meta.dirname, '../../test-support/policies/review.cedar'),
    });
    // As a sign-in would: the approval re-checks the request with the requester's stored groups.
    await h.portcullis.store.principals.upsert(requester, Date.now());
  });
  after(async () => {
    await h?.close();
  });

  async function eventsFor(requestId: string): Promise<string[]> {
    const all = await h.portcullis.store.auditLog.read(0, 10_000);
    return all.filter((e) => e.requestId === requestId).map((e) => e.type);
  }

  test('twenty approvers racing on a one-approval request yield exactly one grant', async (t) => {
    if (skip) return t.skip(skip);
    const access = h.portcullis.access;
    const request = await access.createRequest(
      requester,
      { resourceId: 'demo-api', role: 'operator', durationSeconds: 600, reason: 'race', ticket: null },
      origin,
    );
    assert.equal(request.state, 'pending');
    const results = await Promise.allSettled(
      approvers.map((a) => access.review(a, request.id, 'approve', 'lgtm', origin)),
    );
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    assert.equal(fulfilled.length, 1, 'exactly one approval wins');
    for (const r of results) {
      if (r.status === 'rejected')
        assert.ok(['invalid_transition', 'conflict'].includes((r.reason as { code: string }).code));
    }
    const grants = await h.portcullis.store.grants.list({ limit: 1000 });
    assert.equal(grants.filter((g) => g.requestId === request.id).length, 1);
    assert.equal((await h.portcullis.store.requests.get(request.id))?.state, 'active');
    const events = await eventsFor(request.id);
    assert.equal(events.filter((e) => e === 'request.approved').length, 1);
    assert.equal(events.filter((e) => e === 'grant.activated').length, 1);
    // A token role activates in the approval's own transaction: its three events are one append.
    const chain = (await h.portcullis.store.auditLog.read(0, 10_000)).filter(
      (e) => e.requestId === request.id,
    );
    const approval = chain.slice(-3);
    assert.deepEqual(
      approval.map((e) => e.type),
      ['request.reviewed', 'request.approved', 'grant.activated'],
    );
    assert.deepEqual(
      approval.map((e) => e.seq - (approval[0]?.seq ?? 0)),
      [0, 1, 2],
    );
    assert.equal(new Set(approval.map((e) => e.at)).size, 1);
  });

  test('twenty approvers racing on a two-approval request: one grant, exactly two distinct approvals', async (t) => {
    if (skip) return t.skip(skip);
    const access = h.portcullis.access;
    const request = await access.createRequest(
      requester,
      { resourceId: 'demo-api', role: 'reader', durationSeconds: 600, reason: 'race two', ticket: null },
      origin,
    );
    await Promise.allSettled(approvers.map((a) => access.review(a, request.id, 'approve', '', origin)));
    const stored = await h.portcullis.store.requests.get(request.id);
    assert.equal(stored?.state, 'active');
    assert.equal(stored?.reviews.length, 2);
    assert.equal(new Set(stored?.reviews.map((r) => r.reviewerId)).size, 2);
    const grants = await h.portcullis.store.grants.list({ limit: 1000 });
    assert.equal(grants.filter((g) => g.requestId === request.id).length, 1);
  });

  test('one person approving twenty times at once counts once', async (t) => {
    if (skip) return t.skip(skip);
    const access = h.portcullis.access;
    const request = await access.createRequest(
      requester,
      { resourceId: 'demo-api', role: 'reader', durationSeconds: 600, reason: 'same person', ticket: null },
      origin,
    );
    const same = approvers[0] as Principal;
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => access.review(same, request.id, 'approve', '', origin)),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const stored = await h.portcullis.store.requests.get(request.id);
    assert.equal(stored?.state, 'pending');
    assert.equal(stored?.reviews.length, 1);
  });
});
