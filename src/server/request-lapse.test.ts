/**
 * A request waits for its reviews at most `requests.pending_ttl`: past its `review_by` no review is
 * taken (409 request_expired), and the expiry loop, or `recover()` at the next start, ends it
 * `expired` by `system` with a `request.expired` audit event. On PostgreSQL storage, through HTTP,
 * with real sign-ins through the OIDC IdP; time is a manual clock.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { eventsOfRequest, requestDemoApi } from '../../test-support/requests.js';
import { waitFor } from '../../test-support/wait-for.js';
import { ManualClock } from '../core/clock.js';

const policyFile = new URL('../../test-support/policies/review.cedar', import.meta.url).pathname;
const pendingTtlMs = 2 * 60_000;

async function requestOperator(h: Harness, session: string, reason: string) {
  const created = await requestDemoApi(h, session, 'operator', reason);
  assert.equal(created.state, 'pending');
  return created;
}

describe('requests not reviewed in time', () => {
  const harnesses: Harness[] = [];
  after(async () => {
    await Promise.all(harnesses.map((h) => h.close()));
  });

  async function harness(clock: ManualClock, pollInterval: string): Promise<Harness> {
    const h = await startHarness({
      storage: 'postgres',
      policyFile,
      clock,
      configOverrides: { requests: { pending_ttl: '2m' }, expiry: { poll_interval: pollInterval } },
    });
    harnesses.push(h);
    return h;
  }

  test('a review at the deadline is refused; the next start ends the request expired', async () => {
    const clock = new ManualClock(Date.now());
    // The loop's safety-net poll is an hour away, so nothing lapses the request behind the test's back.
    const h = await harness(clock, '1h');
    const [alice, bob] = [await h.login('alice'), await h.login('bob')];
    const created = await requestOperator(h, alice, 'deploy hotfix');
    const id = created.id as string;
    assert.equal(
      Date.parse(created.review_by as string),
      Date.parse(created.created_at as string) + pendingTtlMs,
    );

    clock.advance(pendingTtlMs - 1_000);
    const partial = await h.api(alice, 'GET', `/api/v1/requests/${id}`);
    assert.equal(partial.body.state, 'pending', 'still reviewable a second before the deadline');

    clock.advance(1_000);
    const late = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, { reason: 'lgtm' });
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.match(late.contentType, /^application\/problem\+json/);
    assert.equal(late.body.code, 'request_expired');
    assert.equal(late.body.reviewBy, created.review_by);
    assert.equal(
      (await h.portcullis.store.requests.get(id))?.reviews.length,
      0,
      'the late review was not kept',
    );

    await h.restart();
    const ended = await h.api(alice, 'GET', `/api/v1/requests/${id}`);
    assert.equal(ended.body.state, 'expired');
    assert.equal(ended.body.end_reason, 'not reviewed in time');
    assert.equal(ended.body.ended_at, created.review_by, 'dated at its deadline');
    assert.equal(ended.body.grant_id, null);
    assert.equal(ended.body.expires_at, null, 'no access was given');
    const events = await eventsOfRequest(h.portcullis.store, id);
    assert.deepEqual(
      events.map((e) => e.type),
      ['request.created', 'request.expired'],
    );
    const expired = events.at(-1);
    assert.equal(expired?.actor, 'system');
    assert.equal(expired?.reason, 'not reviewed in time');
    assert.deepEqual(expired?.data, {
      reviewBy: Date.parse(created.review_by as string),
      approvals: [],
      approvalsRequired: 1,
    });

    // Nothing more happens to it: a review now is refused as for any request that is not pending.
    const after = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, { reason: 'lgtm' });
    assert.equal(after.body.code, 'invalid_transition');
  });

  test('the running expiry loop ends a request at its deadline; an earlier request by then reviewed is untouched', async () => {
    const clock = new ManualClock(Date.now());
    const h = await harness(clock, '1s');
    const [alice, bob] = [await h.login('alice'), await h.login('bob')];
    const reviewed = (await requestOperator(h, alice, 'approved in time')).id as string;
    const forgotten = (await requestOperator(h, alice, 'nobody looks')).id as string;
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${reviewed}/approve`, { reason: 'ok' });
    assert.equal(approved.body.state, 'active');

    clock.advance(pendingTtlMs);
    await waitFor('the forgotten request to lapse', async () => {
      const now = await h.api(alice, 'GET', `/api/v1/requests/${forgotten}`);
      return now.body.state === 'expired' ? true : undefined;
    });
    assert.equal((await h.api(alice, 'GET', `/api/v1/requests/${reviewed}`)).body.state, 'active');
    const lapsed = (await eventsOfRequest(h.portcullis.store, forgotten)).filter(
      (e) => e.type === 'request.expired',
    );
    assert.equal(lapsed.length, 1, 'lapsed once');
  });
});
