/**
 * The requester's `request` decision is made again when the approval that completes the route is
 * recorded, and again before an approved request is provisioned: a requester who left the eligible
 * group, an office-hours permit outside office hours, a change freeze added after the request, or a
 * policy that now asks for more approvals all end the request `denied` instead of giving access.
 */

import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { demoPrincipal } from '../../test-support/demo-principal.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { eventsOfRequest, requestDemoApi } from '../../test-support/requests.js';
import { ManualClock } from '../core/clock.js';
import type { Principal } from '../core/principal.js';

const policies = join(import.meta.dirname, '../../test-support/policies/recheck.cedar');

describe('policy re-check through the HTTP API', () => {
  let h: Harness;
  let policyDir: string;
  let policyFile: string;
  let alice: string;
  let bob: string;

  before(async () => {
    policyDir = mkdtempSync(join(tmpdir(), 'portcullis-recheck-'));
    policyFile = join(policyDir, 'recheck.cedar');
    copyFileSync(policies, policyFile);
    h = await startHarness({ storage: 'sqlite', policyFile });
  });
  after(async () => {
    await h?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  async function signIn() {
    alice = await h.login('alice');
    bob = await h.login('bob');
  }

  async function requestReader(reason: string): Promise<string> {
    const created = await requestDemoApi(h, alice, 'reader', reason);
    assert.equal(created.state, 'pending');
    return created.id as string;
  }

  test('a requester removed from the eligible group is denied at approval', async () => {
    await signIn();
    const id = await requestReader('before leaving engineering');
    // The IdP says she is no longer in engineering (as a SCIM membership change or a new login would).
    assert.ok(await h.portcullis.store.principals.setGroups('demo:alice', ['contractors']));
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, { reason: 'lgtm' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.state, 'denied');
    assert.equal(approved.body.grant_id, null);
    assert.match(approved.body.end_reason as string, /denied on re-check: the policy no longer allows it/);
    const events = await eventsOfRequest(h.portcullis.store, id);
    assert.deepEqual(
      events.map((e) => e.type),
      ['request.created', 'request.reviewed', 'request.denied'],
    );
    const denied = events.at(-1);
    assert.equal(denied?.actor, 'system');
    assert.equal((denied?.data as { recheck: string }).recheck, 'approval');
    assert.equal((await h.portcullis.store.grants.getByRequest(id)) ?? null, null);
    // Back in the group (her next login), a new request goes through as usual.
    assert.ok(await h.portcullis.store.principals.setGroups('demo:alice', ['engineering']));
    const again = await requestReader('back in engineering');
    const ok = await h.api(bob, 'POST', `/api/v1/requests/${again}/approve`, {});
    assert.equal(ok.body.state, 'active', JSON.stringify(ok.body));
  });

  test('a change freeze added after the request (policy reload) stops its approval', async () => {
    await signIn();
    const id = await requestReader('before the freeze');
    appendFileSync(
      policyFile,
      `
@id("change-freeze")
forbid (principal, action == Portcullis::Action::"request", resource);
`,
    );
    try {
      await h.restart();
      await signIn();
      const approved = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'denied');
      assert.match(approved.body.end_reason as string, /forbidden by policy change-freeze/);
      const denied = (await eventsOfRequest(h.portcullis.store, id)).at(-1);
      assert.equal(denied?.type, 'request.denied');
      assert.deepEqual(denied?.policyIds, ['change-freeze']);
    } finally {
      copyFileSync(policies, policyFile);
      await h.restart();
    }
  });

  test('a policy that now asks for two approvals: one approval ends the request denied', async () => {
    await signIn();
    const id = await requestReader('before the stricter rule');
    appendFileSync(
      policyFile,
      `
@id("reader-two-approvals")
@approvals("2")
@approver_groups("sre")
@max_duration("1h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/reader"
);
`,
    );
    try {
      await h.restart();
      await signIn();
      const approved = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(approved.body.state, 'denied', JSON.stringify(approved.body));
      assert.match(approved.body.end_reason as string, /reader-two-approvals now asks for more/);
      const denied = (await eventsOfRequest(h.portcullis.store, id)).at(-1);
      assert.equal(
        (denied?.data as { currentRoute: { requiredApprovals: number } }).currentRoute.requiredApprovals,
        2,
      );
    } finally {
      copyFileSync(policies, policyFile);
      await h.restart();
    }
  });
});

describe('policy re-check against the clock (service)', () => {
  // Friday 17:30 in Europe/Berlin (the harness's time zone), 2025-01-10.
  const fridayEvening = Date.parse('2025-01-10T16:30:00Z');
  const saturdayNight = Date.parse('2025-01-11T02:00:00Z');
  const clock = new ManualClock(fridayEvening);
  const origin = { sourceIp: '127.0.0.1', userAgent: 'test', channel: 'api' };
  const alice = demoPrincipal('alice', ['engineering']);
  const bob = demoPrincipal('bob', ['sre']);
  let h: Harness;

  before(async () => {
    h = await startHarness({ storage: 'sqlite', policyFile: policies, clock });
    await h.portcullis.store.principals.upsert(alice, fridayEvening);
    await h.portcullis.store.principals.upsert(bob, fridayEvening);
  });
  after(async () => {
    await h?.close();
  });

  function requestOperator(reason: string) {
    return h.portcullis.access.createRequest(
      alice,
      { resourceId: 'demo-api', role: 'operator', durationSeconds: 1800, reason, ticket: null },
      origin,
    );
  }

  test('an office-hours permit: requested Friday 17:30, approved Saturday 03:00 is denied', async () => {
    clock.set(fridayEvening);
    const request = await requestOperator('friday evening');
    assert.equal(request.state, 'pending');
    clock.set(saturdayNight);
    const reviewed = await h.portcullis.access.review(bob, request.id, 'approve', 'sure', origin);
    assert.equal(reviewed.state, 'denied');
    assert.match(reviewed.endReason ?? '', /no policy permits demo:alice to request demo-api\/operator/);
    const stored = await h.portcullis.store.requests.get(request.id);
    assert.equal(stored?.state, 'denied');
    assert.equal(stored?.reviews.length, 1, 'the approval itself is kept');
    assert.equal(await h.portcullis.store.grants.getByRequest(request.id), undefined);
  });

  test('approved in office hours, activated (recover) on Saturday: denied before provisioning', async () => {
    clock.set(fridayEvening);
    const request = await requestOperator('activation waits');
    // Approved, then the replica died before activating it (as recover() finds it at boot).
    const approved = { ...request, state: 'approved' as const, version: request.version + 1 };
    assert.ok(await h.portcullis.store.requests.update(approved, request.version));
    clock.set(saturdayNight);
    const recovered = await h.portcullis.access.recover();
    assert.equal(recovered.activated, 0, 'denied by the re-check: not counted as activated');
    const stored = await h.portcullis.store.requests.get(request.id);
    assert.equal(stored?.state, 'denied');
    assert.equal(await h.portcullis.store.grants.getByRequest(request.id), undefined);
    const denied = (await eventsOfRequest(h.portcullis.store, request.id)).at(-1);
    assert.equal(denied?.type, 'request.denied');
    assert.equal((denied?.data as { recheck: string }).recheck, 'activation');
  });

  test('within office hours the same request activates', async () => {
    clock.set(fridayEvening);
    const request = await requestOperator('in time');
    const reviewed = await h.portcullis.access.review(bob, request.id, 'approve', 'ok', origin);
    assert.equal(reviewed.state, 'active');
  });
});
