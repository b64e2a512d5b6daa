/** Logout ends a session at once, server-side: the token is refused from then on. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

let h: Harness;
before(async () => {
  h = await startHarness({ storage: 'sqlite' });
});
after(async () => {
  await h?.close();
});

test('a logged-out session token is refused at once; other sessions keep working', async () => {
  const first = await h.login('alice');
  const second = await h.login('alice');
  assert.equal((await h.api(first, 'GET', '/api/v1/me')).status, 200);

  const out = await h.api(first, 'POST', '/api/v1/auth/logout');
  assert.equal(out.status, 204);
  const refused = await h.api(first, 'GET', '/api/v1/me');
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, 'invalid_token');
  assert.equal(refused.body.reason, 'session_revoked');
  assert.equal((await h.api(first, 'POST', '/api/v1/auth/logout')).status, 401);

  assert.equal((await h.api(second, 'GET', '/api/v1/me')).status, 200, 'only that session ended');
  const events = await h.portcullis.store.auditLog.read(0, 10_000);
  assert.equal(events.filter((e) => e.type === 'auth.logout' && e.actor === 'demo:alice').length, 1);
});

test('logout needs a session', async () => {
  const response = await h.api(null, 'POST', '/api/v1/auth/logout');
  assert.equal(response.status, 401);
  assert.equal(response.body.code, 'unauthenticated');
});
