/**
 * An IdP-issued JWT used as a bearer token asserts the caller's groups, and those groups decide
 * who may approve. When they are new or changed, the audit log shows it, as it does for a login.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

let h: Harness;

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
});
after(async () => {
  await h?.close();
});

describe('IdP-issued bearer tokens', () => {
  test('a principal first seen, or whose groups changed, is audited; an unchanged one is not', async () => {
    const token = await obtainIdpAccessToken(
      h.idp,
      { username: 'carol', password: 'carol-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    const store = h.portcullis.store;
    const logins = async () =>
      (await store.auditLog.read(0, 10_000)).filter(
        (e) => e.type === 'auth.login' && e.actor === 'demo:carol',
      );

    assert.equal((await h.api(token, 'GET', '/api/v1/me')).status, 200);
    const first = await logins();
    assert.equal(first.length, 1);
    assert.deepEqual(first[0]?.data, { idp: 'demo', groups: ['dba'], client: 'idp_token' });

    assert.equal((await h.api(token, 'GET', '/api/v1/me')).status, 200);
    assert.equal((await logins()).length, 1);

    // The stored groups differ from what the token asserts (e.g. changed at the IdP since).
    const known = await store.principals.get('demo:carol');
    assert.ok(known);
    await store.principals.upsert({ ...known, groups: ['sre'] }, Date.now());
    assert.equal((await h.api(token, 'GET', '/api/v1/me')).status, 200);
    const after = await logins();
    assert.equal(after.length, 2);
    assert.deepEqual(after[1]?.data, {
      idp: 'demo',
      groups: ['dba'],
      client: 'idp_token',
      previousGroups: ['sre'],
    });
  });
});

describe('IdP-issued bearer tokens and the IdP rules', () => {
  test("a token of a user the IdP's deny rules refuse is rejected, audited, and creates no principal", async () => {
    const strict = await startHarness({ storage: 'sqlite', demoIdpOverrides: { deny: [{ group: 'dba' }] } });
    try {
      const token = await obtainIdpAccessToken(
        strict.idp,
        { username: 'carol', password: 'carol-demo-password' },
        `${strict.url}/auth/oidc/demo/callback`,
      );
      const response = await strict.api(token, 'GET', '/api/v1/me');
      assert.equal(response.status, 403);
      assert.equal(response.body.code, 'sign_in_not_allowed');
      const rejected = (await strict.portcullis.store.auditLog.read(0, 10_000)).filter(
        (e) => e.type === 'auth.token_rejected',
      );
      assert.equal(rejected.at(-1)?.reason, 'deny[0] matched');
      assert.equal(await strict.portcullis.store.principals.get('demo:carol'), undefined);
    } finally {
      await strict.close();
    }
  });
});
