/**
 * The OIDC callback through the real HTTP route, a real server and real IdPs: a wrong state, a
 * wrong nonce, a reused authorization code and a response from another IdP (mix-up) are each
 * refused with `login_failed` and its stable `reason`, yield no session, and are audited as
 * `auth.login_failed`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signInThroughBrowser } from '../../test-support/oidc-browser.js';
import { demoIdpSettings, MemoryEphemeralStore } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type DemoIdentityProvider, startDemoIdentityProvider } from '../identity/demo-identity-provider.js';
import { OidcLogin, pendingLoginKind } from '../identity/oidc-login.js';

const alice = { username: 'alice', password: 'alice-demo-password' };

let h: Harness;
let other: DemoIdentityProvider;

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
  other = await startDemoIdentityProvider({ port: 0, redirectUris: ['http://127.0.0.1:9/callback'] });
});
after(async () => {
  await h?.close();
  await other?.stop();
});

async function startLogin(): Promise<{ cookie: string; authorizationUrl: URL; state: string }> {
  const start = await fetch(`${h.url}/auth/oidc/demo/login`, { redirect: 'manual' });
  assert.equal(start.status, 302);
  const authorizationUrl = new URL(start.headers.get('location') ?? '');
  return {
    cookie: (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '',
    authorizationUrl,
    state: authorizationUrl.searchParams.get('state') ?? '',
  };
}

async function callback(
  url: URL,
  cookie: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const local = new URL(`${url.pathname}${url.search}`, h.url);
  const response = await fetch(local, { redirect: 'manual', headers: { cookie } });
  return {
    status: response.status,
    body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
  };
}

async function failedLogins(): Promise<number> {
  return (await h.portcullis.store.auditLog.read(0, 100_000)).filter((e) => e.type === 'auth.login_failed')
    .length;
}

async function refused(url: URL, cookie: string, reason: string): Promise<void> {
  const before = await failedLogins();
  const answer = await callback(url, cookie);
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.code, 'login_failed');
  assert.equal(answer.body.reason, reason);
  assert.equal(await failedLogins(), before + 1, `${reason} is audited`);
}

describe('OIDC callback refusals', () => {
  test('a state that is not a pending sign-in', async () => {
    const { cookie, authorizationUrl } = await startLogin();
    const real = await signInThroughBrowser(authorizationUrl, alice);
    const forged = new URL(real);
    forged.searchParams.set('state', 'not-a-pending-state');
    await refused(forged, cookie, 'state_mismatch');
  });

  test('an ID token whose nonce is not the one sent', async () => {
    const { cookie, authorizationUrl, state } = await startLogin();
    const ephemeral = h.portcullis.store.ephemeral;
    const pending = await ephemeral.take(pendingLoginKind, state, Date.now());
    assert.ok(pending);
    const tampered = { ...JSON.parse(pending), nonce: 'another-nonce' };
    await ephemeral.put(pendingLoginKind, state, JSON.stringify(tampered), tampered.expiresAt);
    await refused(await signInThroughBrowser(authorizationUrl, alice), cookie, 'nonce_mismatch');
  });

  test('an authorization code used twice', async () => {
    const first = await startLogin();
    const used = await signInThroughBrowser(first.authorizationUrl, alice);
    assert.equal((await callback(used, first.cookie)).status, 302, 'signed in: on to the console');
    const second = await startLogin();
    const replay = new URL(used);
    replay.searchParams.set('state', second.state);
    await refused(replay, second.cookie, 'code_invalid');
  });

  test("another IdP's code and issuer delivered with our state (mix-up)", async () => {
    const elsewhere = new OidcLogin(demoIdpSettings(other, { id: 'other' }), {
      ephemeral: new MemoryEphemeralStore(),
    });
    const foreignStart = await elsewhere.begin({ redirectUri: 'http://127.0.0.1:9/callback' });
    const foreign = await signInThroughBrowser(foreignStart.authorizationUrl, alice);
    const ours = await startLogin();
    const mixed = new URL(`${h.url}/auth/oidc/demo/callback${foreign.search}`);
    mixed.searchParams.set('state', ours.state);
    await refused(mixed, ours.cookie, 'issuer_mismatch');
  });
});
