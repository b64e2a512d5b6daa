/**
 * SessionService through real HTTP against a started server and the real demo OIDC provider:
 * IdP-issued bearer tokens while the IdP is down; refused CLI code exchanges and device polls
 * audited as `auth.login_failed`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { signInThroughBrowser } from '../../test-support/oidc-browser.js';
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

describe('an IdP-issued bearer token while the database fails', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ storage: 'postgres' });
  });
  after(async () => {
    await h?.close();
  });

  async function onStorage(statement: string): Promise<void> {
    const client = new pg.Client({ connectionString: h.storageUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }

  test('is a 500 server fault, not a 401 that would send the client to sign in again', async () => {
    const token = await obtainIdpAccessToken(
      h.idp,
      { username: 'bob', password: 'bob-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    // The principals table is gone for a moment: the token is fine, the server is not.
    await onStorage('alter table principals rename to principals_elsewhere');
    try {
      const response = await h.api(token, 'GET', '/api/v1/me');
      assert.equal(response.status, 500, JSON.stringify(response.body));
      assert.match(response.contentType, /^application\/problem\+json/);
      assert.equal(response.body.code, 'internal');
    } finally {
      await onStorage('alter table principals_elsewhere rename to principals');
    }
    const again = await h.api(token, 'GET', '/api/v1/me');
    assert.equal(again.status, 200, JSON.stringify(again.body));
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    assert.deepEqual(
      events.filter((e) => e.type === 'auth.token_rejected'),
      [],
      'the token was never rejected',
    );
  });
});

describe('refused CLI sign-ins are audited as auth.login_failed', () => {
  let h: Harness;
  const loopback = 'http://127.0.0.1:1/callback';
  before(async () => {
    h = await startHarness({ storage: 'sqlite' });
  });
  after(async () => {
    await h?.close();
  });

  /** A CLI loopback sign-in up to the one-time code (the real IdP, the user's browser). */
  async function cliCode(username: string): Promise<{ code: string; verifier: string }> {
    const user = h.idp.users.find((u) => u.username === username) ?? assert.fail();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const start = await fetch(
      `${h.url}/auth/oidc/demo/login?redirect_uri=${encodeURIComponent(loopback)}&code_challenge=${challenge}&code_challenge_method=S256&state=s1`,
      { redirect: 'manual' },
    );
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const callback = await signInThroughBrowser(new URL(start.headers.get('location') ?? assert.fail()), {
      username,
      password: user.password,
    });
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie } });
    const code = new URL(finished.headers.get('location') ?? assert.fail()).searchParams.get('code');
    return { code: code ?? assert.fail(), verifier };
  }
  const exchange = (code: string, verifier: string) =>
    h.api(null, 'POST', '/api/v1/auth/cli/token', { code, code_verifier: verifier, redirect_uri: loopback });
  /** The auth.login_failed events appended by `action`. */
  async function failuresOf(action: () => Promise<unknown>) {
    const from = (await h.portcullis.store.auditLog.head()).seq;
    await action();
    return (await h.portcullis.store.auditLog.read(from, 100)).filter((e) => e.type === 'auth.login_failed');
  }

  test('an unknown code', async () => {
    const events = await failuresOf(async () => {
      const refused = await exchange('no-such-code', randomBytes(32).toString('base64url'));
      assert.deepEqual(
        [refused.status, refused.body.code, refused.body.reason],
        [400, 'login_failed', 'code_invalid'],
      );
    });
    assert.equal(events.length, 1);
    assert.equal(events[0]?.actor, 'anonymous');
    assert.equal(events[0]?.severity, 'warning');
    assert.deepEqual(events[0]?.data, { client: 'cli', code: 'login_failed', failure: 'code_invalid' });
  });

  test("another verifier (pkce_mismatch), then the code's second use", async () => {
    const { code, verifier } = await cliCode('bob');
    const events = await failuresOf(async () => {
      const refused = await exchange(code, randomBytes(32).toString('base64url'));
      assert.deepEqual([refused.status, refused.body.reason], [400, 'pkce_mismatch']);
      const reused = await exchange(code, verifier);
      assert.deepEqual([reused.status, reused.body.reason], [400, 'code_invalid']);
    });
    assert.deepEqual(
      events.map((e) => e.data),
      [
        { idp: 'demo', client: 'cli', principal: 'demo:bob', code: 'login_failed', failure: 'pkce_mismatch' },
        { client: 'cli', code: 'login_failed', failure: 'code_invalid' },
      ],
    );
  });

  test('a principal locked between sign-in and exchange', async () => {
    const dave = await h.login('dave');
    const { code, verifier } = await cliCode('carol');
    const locked = await h.api(dave, 'POST', '/api/v1/principals/demo:carol/lock', { reason: 'left' });
    assert.equal(locked.status, 200, JSON.stringify(locked.body));
    const events = await failuresOf(async () => {
      const refused = await exchange(code, verifier);
      assert.deepEqual([refused.status, refused.body.code], [403, 'principal_locked']);
    });
    assert.deepEqual(
      events.map((e) => e.data),
      [
        {
          idp: 'demo',
          client: 'cli',
          principal: 'demo:carol',
          code: 'principal_locked',
          failure: 'principal_locked',
        },
      ],
    );
  });

  test('a device login poll with an unknown handle', async () => {
    const events = await failuresOf(async () => {
      const refused = await h.api(null, 'POST', '/api/v1/auth/device/token', { device_id: 'no-such-device' });
      assert.deepEqual([refused.status, refused.body.reason], [400, 'code_invalid']);
    });
    assert.deepEqual(
      events.map((e) => e.data),
      [{ client: 'cli-device', code: 'login_failed', failure: 'code_invalid' }],
    );
  });
});
