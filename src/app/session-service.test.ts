/**
 * SessionService through real HTTP against a started server and the real demo OIDC provider:
 * IdP-issued bearer tokens while the IdP is down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

describe('an IdP-issued bearer token while the IdP is down', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ storage: 'sqlite' });
  });
  after(async () => {
    await h?.close();
  });

  test('is 502 identity_provider_unavailable, not a token rejection', async () => {
    const token = await obtainIdpAccessToken(
      h.idp,
      { username: 'bob', password: 'bob-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    await h.idp.stop();
    for (let i = 0; i < 2; i++) {
      const response = await h.api(token, 'GET', '/api/v1/me');
      assert.equal(response.status, 502, JSON.stringify(response.body));
      assert.match(response.contentType, /^application\/problem\+json/);
      assert.equal(response.body.code, 'identity_provider_unavailable');
    }
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    assert.deepEqual(
      events.filter((e) => e.type === 'auth.token_rejected'),
      [],
      'the token was not rejected: it could not be checked',
    );
  });
});
