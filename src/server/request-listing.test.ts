/**
 * Request listings are complete: an approver sees a pending request they may review however many
 * newer requests they may not, and every listing pages with `cursor`/`next_cursor` through all it
 * may show, newest first, without gaps or repeats. Through HTTP, with real sign-ins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

const policyFile = new URL('../../test-support/policies/review.cedar', import.meta.url).pathname;
const newerOwnRequests = 600;

describe('request listings (HTTP)', () => {
  let h: Harness;
  let oldest: string;
  let sessions: Record<'alice' | 'bob' | 'dave', string>;

  before(async () => {
    h = await startHarness({ storage: 'sqlite', policyFile });
    sessions = { alice: await h.login('alice'), bob: await h.login('bob'), dave: await h.login('dave') };
    const created = await h.api(sessions.alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: 600,
      reason: 'the one bob may review',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    oldest = created.body.id as string;
    // Newer pending requests bob may not review: his own (as if he had asked 600 times since).
    const template = await h.portcullis.store.requests.get(oldest);
    assert.ok(template);
    for (let i = 0; i < newerOwnRequests; i++) {
      await h.portcullis.store.requests.insert({
        ...template,
        id: `bulk-${String(i).padStart(4, '0')}`,
        requesterId: 'demo:bob',
        createdAt: template.createdAt + 1 + i,
        updatedAt: template.createdAt + 1 + i,
      });
    }
  });
  after(async () => {
    await h?.close();
  });

  test('an approver sees an older pending request behind 600 newer ones they may not review', async () => {
    const reviewable = await h.api(sessions.bob, 'GET', '/api/v1/requests?scope=reviewable');
    assert.equal(reviewable.status, 200, JSON.stringify(reviewable.body));
    assert.deepEqual(
      (reviewable.body.requests as { id: string }[]).map((r) => r.id),
      [oldest],
    );
    assert.equal(reviewable.body.next_cursor, null);
  });

  test('pages follow next_cursor through every request, newest first, none twice', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/api/v1/requests?scope=all&limit=250${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await h.api(sessions.dave, 'GET', path);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      seen.push(...(page.body.requests as { id: string }[]).map((r) => r.id));
      cursor = page.body.next_cursor as string | null;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.equal(pages, 3);
    assert.equal(seen.length, newerOwnRequests + 1);
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(seen[0], `bulk-${String(newerOwnRequests - 1).padStart(4, '0')}`);
    assert.equal(seen.at(-1), oldest);
  });

  test('a cursor the server did not give out is a 400', async () => {
    for (const cursor of ['x', Buffer.from('12.bad id!').toString('base64url'), 'not*base64']) {
      const answer = await h.api(
        sessions.dave,
        'GET',
        `/api/v1/requests?scope=all&cursor=${encodeURIComponent(cursor)}`,
      );
      assert.equal(answer.status, 400, `${cursor}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.code, 'validation_failed');
    }
  });
});
