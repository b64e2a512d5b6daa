/**
 * Someone who may not see a request or grant learns nothing about it from acting on it: approve,
 * deny, cancel and revoke answer exactly as for an id that does not exist (404 not_found) — not
 * 403 or 409, which would confirm that it exists, hint at its state or name its approver groups.
 * The attempt is still audited as a security event.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

let h: Harness;
const tokens: Record<string, string> = {};

before(async () => {
  // demo-api is owned by sre; only sre approves (review.cedar): carol (dba) has no business here.
  h = await startHarness({
    storage: 'sqlite',
    policyFile: join(import.meta.dirname, '..', '..', 'test-support', 'policies', 'review.cedar'),
  });
  for (const user of ['alice', 'bob', 'carol']) tokens[user] = await h.login(user);
});
after(async () => {
  await h?.close();
});

function assertNotFound(response: { status: number; body: Record<string, unknown> }) {
  assert.equal(response.status, 404, JSON.stringify(response.body));
  assert.equal(response.body.code, 'not_found', JSON.stringify(response.body));
  assert.equal(response.body.approverGroups, undefined);
}

describe('acting on what you cannot see', () => {
  test('answers like an unknown id, changes nothing, and is audited', async () => {
    const carol = tokens.carol ?? '';
    const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: '10m',
      reason: 'visibility test',
    });
    assert.equal(created.body.state, 'pending', JSON.stringify(created.body));
    const id = created.body.id as string;
    const before = (await h.portcullis.store.auditLog.head()).seq;

    assertNotFound(await h.api(carol, 'GET', `/api/v1/requests/${id}`));
    for (const verdict of ['approve', 'deny']) {
      assertNotFound(await h.api(carol, 'POST', `/api/v1/requests/${id}/${verdict}`, {}));
      assertNotFound(await h.api(carol, 'POST', `/api/v1/requests/${randomUUID()}/${verdict}`, {}));
    }
    assertNotFound(await h.api(carol, 'POST', `/api/v1/requests/${id}/cancel`));
    assertNotFound(await h.api(carol, 'POST', `/api/v1/requests/${randomUUID()}/cancel`));
    const still = await h.api(tokens.alice ?? '', 'GET', `/api/v1/requests/${id}`);
    assert.equal(still.body.state, 'pending');
    assert.deepEqual(still.body.reviews, []);

    const approved = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const grantId = approved.body.grant_id as string;
    // Once it is no longer pending, a stranger still learns nothing (not "409: it is active").
    assertNotFound(await h.api(carol, 'POST', `/api/v1/requests/${id}/approve`, {}));
    assertNotFound(await h.api(carol, 'GET', `/api/v1/grants/${grantId}`));
    assertNotFound(await h.api(carol, 'POST', `/api/v1/grants/${grantId}/revoke`, {}));
    assertNotFound(await h.api(carol, 'POST', `/api/v1/grants/${randomUUID()}/revoke`, {}));
    const grant = await h.api(tokens.alice ?? '', 'GET', `/api/v1/grants/${grantId}`);
    assert.equal(grant.body.status, 'active');

    const events = await h.portcullis.store.auditLog.read(before, 1000);
    const byCarol = events.filter((e) => e.actor === 'demo:carol').map((e) => e.type);
    assert.ok(byCarol.filter((t) => t === 'request.review_rejected').length >= 3, byCarol.join());
    assert.ok(byCarol.includes('security.denied'), byCarol.join());
  });

  test('those who may see it still get the precise answer', async () => {
    const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: '10m',
      reason: 'visibility test 2',
    });
    const id = created.body.id as string;
    const self = await h.api(tokens.alice ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(self.body.code, 'self_review');
    const denied = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/deny`, {});
    assert.equal(denied.body.state, 'denied');
    const again = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(again.status, 409);
    const cancel = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/cancel`);
    assert.equal(cancel.status, 403);
  });
});
