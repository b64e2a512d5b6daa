/**
 * Identities linked into one person (`identity_links`) are one person when a request is reviewed,
 * also when the request or an earlier approval was made before the link existed: nobody approves
 * their own request under another identity, and two identities of one person count once.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { requestDemoApi } from '../../test-support/requests.js';

describe('reviews across linked identities (HTTP)', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      policyFile: join(import.meta.dirname, '../../test-support/policies/identity-links.cedar'),
    });
  });
  after(async () => {
    await h?.close();
  });

  /** Restarts with these `identity_links` (as an operator adding a link would). */
  async function link(links: { principal: string; also: string[] }[]) {
    const config = parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(h.configPath, stringify({ ...config, identity_links: links }));
    await h.restart();
  }

  async function requestReader(token: string, reason: string): Promise<string> {
    return (await requestDemoApi(h, token, 'reader', reason)).id as string;
  }

  test('a request made before its requester was linked into the approver cannot be self-approved', async () => {
    await link([]);
    const alice = await h.login('alice');
    const id = await requestReader(alice, 'made as demo:alice');
    // demo:alice is now one of bob's identities: bob approving is alice approving her own request.
    await link([{ principal: 'demo:bob', also: ['demo:alice'] }]);
    const bob = await h.login('bob');
    const refused = await h.api(bob, 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'self_review');
    const stored = await h.portcullis.store.requests.get(id);
    assert.equal(stored?.state, 'pending');
    assert.deepEqual(stored?.reviews, []);
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    const rejected = events.filter((e) => e.requestId === id && e.type === 'request.review_rejected');
    assert.equal(rejected.length, 1);
  });

  test('an approval under an identity later linked counts once with the same person', async () => {
    await link([]);
    const alice = await h.login('alice');
    const oldCarol = await h.login('carol');
    const id = await requestReader(alice, 'needs two people');
    const first = await h.api(oldCarol, 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.state, 'pending');

    // demo:carol is linked into demo:bob: carol signing in again is demo:bob, and so is bob.
    await link([{ principal: 'demo:bob', also: ['demo:carol'] }]);
    for (const user of ['carol', 'bob']) {
      const token = await h.login(user);
      const again = await h.api(token, 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(again.status, 409, `${user}: ${JSON.stringify(again.body)}`);
      assert.equal(again.body.code, 'already_reviewed');
    }
    const stored = await h.portcullis.store.requests.get(id);
    assert.equal(stored?.state, 'pending', 'one person, one approval: a second person is still needed');
    assert.equal(stored?.reviews.length, 1);
  });

  test("requests and grants made under an identity later linked are the person's: listed, shown, cancelled, released", async () => {
    await link([]);
    const alice = await h.login('alice');
    const [bob, carol] = [await h.login('bob'), await h.login('carol')];
    const waiting = await requestReader(alice, 'still waiting');
    const granted = await requestReader(alice, 'approved before the link');
    for (const approver of [bob, carol]) {
      const answer = await h.api(approver, 'POST', `/api/v1/requests/${granted}/approve`, {});
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    }
    const grantId = (await h.api(alice, 'GET', `/api/v1/requests/${granted}`)).body.grant_id as string;
    assert.ok(grantId);

    // alice's sign-ins now resolve to demo:bob, who signs in as the same person.
    await link([{ principal: 'demo:bob', also: ['demo:alice'] }]);
    const person = await h.login('alice');
    const mine = await h.api(person, 'GET', '/api/v1/requests?scope=mine');
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    const ids = (mine.body.requests as { id: string }[]).map((r) => r.id);
    assert.ok(ids.includes(waiting) && ids.includes(granted), JSON.stringify(ids));
    assert.equal((await h.api(person, 'GET', `/api/v1/requests/${waiting}`)).status, 200);
    const grants = await h.api(person, 'GET', '/api/v1/grants?scope=mine');
    assert.ok(
      (grants.body.grants as { id: string }[]).some((g) => g.id === grantId),
      JSON.stringify(grants.body),
    );

    const cancelled = await h.api(person, 'POST', `/api/v1/requests/${waiting}/cancel`, {});
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.state, 'cancelled');
    const released = await h.api(person, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    const ended = events.find((e) => e.grantId === grantId && e.type === 'grant.released');
    assert.equal(ended?.actor, 'demo:bob', 'released by the requester, under the identity signed in');

    // carol, an approver of it, is another person: it is not hers to cancel.
    const other = await requestReader(person, 'made as demo:bob');
    const refused = await h.api(carol, 'POST', `/api/v1/requests/${other}/cancel`, {});
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'forbidden');
  });
});
