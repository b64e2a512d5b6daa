/**
 * The pending sign-in is bound to the browser that started it (docs/security.md, "Login"): an IdP
 * callback that arrives without that browser's login cookie is refused. Otherwise someone who
 * starts a CLI login (their loopback port, their PKCE verifier) and gets a victim to open the
 * authorization URL has the victim's one-time code sent to that port — on a shared host, theirs.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { signInThroughBrowser } from '../../test-support/oidc-browser.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

let h: Harness;

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
});
after(async () => {
  await h?.close();
});

/** Starts a CLI login as an attacker would, and has `victim` sign in at the IdP. */
async function victimSignsInToAttackersLogin(victim: string) {
  const user = h.idp.users.find((u) => u.username === victim) ?? assert.fail();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const start = await fetch(
    `${h.url}/auth/oidc/demo/login?redirect_uri=${encodeURIComponent('http://127.0.0.1:7/callback')}&code_challenge=${challenge}&code_challenge_method=S256&state=s`,
    { redirect: 'manual' },
  );
  assert.equal(start.status, 302);
  const attackerCookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  assert.match(attackerCookie, /^portcullis_login=./);
  const callback = await signInThroughBrowser(start.headers.get('location') ?? assert.fail(), {
    username: victim,
    password: user.password,
  });
  return { callback, attackerCookie, verifier };
}

describe('OIDC callback browser binding', () => {
  test('a callback without the login cookie is refused, audited, and yields no code', async () => {
    const before = (await h.portcullis.store.auditLog.head()).seq;
    const { callback } = await victimSignsInToAttackersLogin('bob');
    // The victim's browser never received the attacker's cookie.
    const finished = await fetch(callback, { redirect: 'manual' });
    const body = (await finished.json()) as Record<string, unknown>;
    assert.equal(finished.status, 400, JSON.stringify(body));
    assert.equal(finished.headers.get('location'), null);
    assert.equal(body.code, 'login_failed');
    assert.equal(body.reason, 'browser_mismatch');
    const events = await h.portcullis.store.auditLog.read(before, 100);
    assert.ok(events.some((e) => e.type === 'auth.login_failed'));
    assert.ok(!events.some((e) => e.type === 'auth.login'));
  });

  test('an empty login cookie is refused too', async () => {
    const { callback } = await victimSignsInToAttackersLogin('bob');
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie: 'portcullis_login=' } });
    assert.equal(finished.status, 400);
    assert.equal(((await finished.json()) as Record<string, unknown>).reason, 'browser_mismatch');
  });

  test('the browser that started the login still finishes it', async () => {
    const { callback, attackerCookie: ownCookie } = await victimSignsInToAttackersLogin('alice');
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie: ownCookie } });
    assert.equal(finished.status, 302);
    assert.match(finished.headers.get('location') ?? '', /^http:\/\/127\.0\.0\.1:7\/callback\?code=/);
  });

  test('the session token answer and API answers are never cached (RFC 6749 §5.1)', async () => {
    const { callback, attackerCookie: ownCookie, verifier } = await victimSignsInToAttackersLogin('alice');
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie: ownCookie } });
    assert.equal(finished.headers.get('cache-control'), 'no-store');
    const code = new URL(finished.headers.get('location') ?? '').searchParams.get('code');
    const exchanged = await fetch(`${h.url}/api/v1/auth/cli/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, code_verifier: verifier, redirect_uri: 'http://127.0.0.1:7/callback' }),
    });
    assert.equal(exchanged.status, 200);
    assert.equal(exchanged.headers.get('cache-control'), 'no-store');
    const { session_token: token } = (await exchanged.json()) as { session_token: string };
    const me = await fetch(`${h.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    assert.equal(me.headers.get('cache-control'), 'no-store');
    // The public key set stays cacheable.
    const jwks = await fetch(`${h.url}/.well-known/jwks.json`);
    assert.match(jwks.headers.get('cache-control') ?? '', /max-age/);
  });
});
