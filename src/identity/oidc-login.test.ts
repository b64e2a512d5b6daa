import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rejectsWith } from '../../test-support/assertions.js';
import { BrowserLoginError, OidcTestBrowser, signInThroughBrowser } from '../../test-support/oidc-browser.js';
import {
  closedPort,
  demoIdpSettings,
  MemoryEphemeralStore,
  oidcSettings,
  startSilentServer,
} from '../../test-support/oidc-fixtures.js';
import { ManualClock } from '../core/clock.js';
import { type DemoIdentityProvider, startDemoIdentityProvider } from './demo-identity-provider.js';
import { OidcLogin, pendingLoginKind } from './oidc-login.js';

const redirectUri = 'http://127.0.0.1:9/auth/oidc/corp/callback';
const alice = { username: 'alice', password: 'alice-demo-password' };
const bob = { username: 'bob', password: 'bob-demo-password' };

describe('OidcLogin against a real oidc-provider', () => {
  let primary: DemoIdentityProvider;
  /** A second IdP: strict OIDC (claims at userinfo only), and the "other issuer" for mix-up cases. */
  let secondary: DemoIdentityProvider;

  before(async () => {
    primary = await startDemoIdentityProvider({ port: 0, redirectUris: [redirectUri] });
    secondary = await startDemoIdentityProvider({
      port: 0,
      redirectUris: [redirectUri],
      claimsInIdToken: false,
    });
  });
  after(async () => {
    await primary.stop();
    await secondary.stop();
  });

  function loginFor(idp: DemoIdentityProvider, store = new MemoryEphemeralStore(), extra = {}) {
    return { store, login: new OidcLogin(demoIdpSettings(idp, extra), { ephemeral: store }) };
  }

  it('signs a user in and returns the principal with mapped groups', async () => {
    const { login, store } = loginFor(primary, undefined, {
      group_mapping: { sre: ['sre', 'oncall'], engineering: ['engineering'] },
    });
    const { authorizationUrl, loginId } = await login.begin({
      redirectUri,
      returnTo: '/requests?mine=1',
      context: '{"cli":true}',
    });

    const parameters = new URL(authorizationUrl).searchParams;
    assert.equal(parameters.get('code_challenge_method'), 'S256');
    assert.ok(parameters.get('code_challenge'));
    assert.ok(parameters.get('nonce'));
    assert.match(parameters.get('scope') ?? '', /\bgroups\b/);
    assert.equal(parameters.get('context'), null, 'the context stays on Portcullis');
    assert.equal(store.size, 1, 'the pending sign-in is stored');

    const callback = await signInThroughBrowser(authorizationUrl, bob);
    const { principal, returnTo, context } = await login.complete(callback, loginId);
    assert.deepEqual(principal, {
      id: 'corp:bob',
      idp: 'corp',
      subject: 'bob',
      displayName: 'Bob Brandt',
      email: 'bob@demo.portcullis.test',
      groups: ['oncall', 'sre'],
    });
    assert.equal(returnTo, '/requests?mine=1');
    assert.equal(context, '{"cli":true}');
    assert.equal(store.size, 0, 'the pending sign-in is consumed');
  });

  it('drops IdP groups the mapping does not list', async () => {
    const { login } = loginFor(primary, undefined, { group_mapping: { sre: ['sre'] } });
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const { principal } = await login.complete(await signInThroughBrowser(authorizationUrl, alice), loginId);
    assert.deepEqual(principal.groups, []);
  });

  it('applies the mapping rules: deny on a group, groups by e-mail domain, also from userinfo', async () => {
    const rules = {
      deny: [{ group: 'sre' }],
      mapping_rules: [{ when: { email_domain: 'demo.portcullis.test' }, groups: ['staff'] }],
    };
    for (const idp of [primary, secondary]) {
      const { login } = loginFor(idp, undefined, rules);
      const denied = await login.begin({ redirectUri });
      await assert.rejects(
        login.complete(await signInThroughBrowser(denied.authorizationUrl, bob), denied.loginId),
        {
          code: 'sign_in_not_allowed',
        },
      );
      const allowed = await login.begin({ redirectUri });
      const { principal } = await login.complete(
        await signInThroughBrowser(allowed.authorizationUrl, alice),
        allowed.loginId,
      );
      assert.deepEqual(principal.groups, ['staff']);
    }
  });

  it('reads profile and groups from userinfo when the ID token does not carry them', async () => {
    const { login } = loginFor(secondary, undefined, { id: 'strict' });
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const { principal } = await login.complete(await signInThroughBrowser(authorizationUrl, alice), loginId);
    assert.equal(principal.id, 'strict:alice');
    assert.equal(principal.displayName, 'Alice Anders');
    assert.deepEqual(principal.groups, ['engineering']);
  });

  it('refuses a callback whose state is not a pending sign-in', async () => {
    const { login } = loginFor(primary);
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    callback.searchParams.set('state', 'forged-state');
    await rejectsWith(login.complete(callback, loginId), 'login_failed', 'state_mismatch');
    const noState = new URL(callback);
    noState.searchParams.delete('state');
    await rejectsWith(login.complete(noState, loginId), 'login_failed', 'state_mismatch');
  });

  it('finishes a sign-in once: replaying the callback fails', async () => {
    const { login } = loginFor(primary);
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    await login.complete(callback, loginId);
    await rejectsWith(login.complete(callback, loginId), 'login_failed', 'state_mismatch');
  });

  it('refuses a replayed authorization code even with a valid pending sign-in', async () => {
    const { login, store } = loginFor(primary);
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    const state = callback.searchParams.get('state') ?? '';
    // An attacker who could re-create the pending record still cannot use the code twice.
    store.copy(pendingLoginKind, state, 'replay');
    await login.complete(callback, loginId);
    const replay = new URL(callback);
    replay.searchParams.set('state', 'replay');
    await rejectsWith(login.complete(replay, loginId), 'login_failed', 'code_invalid');
  });

  it('refuses to finish a sign-in in another browser (login CSRF)', async () => {
    const { login } = loginFor(primary);
    const { authorizationUrl } = await login.begin({ redirectUri });
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    await rejectsWith(
      login.complete(callback, 'another-browsers-login-id'),
      'login_failed',
      'browser_mismatch',
    );
    // The attempt consumed the pending sign-in: the right browser cannot reuse it either.
    await rejectsWith(login.complete(callback), 'login_failed', 'state_mismatch');
  });

  it('refuses an ID token whose nonce is not the one sent', async () => {
    const { login, store } = loginFor(primary);
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const state = new URL(authorizationUrl).searchParams.get('state') ?? '';
    store.tamper(pendingLoginKind, state, (raw) =>
      JSON.stringify({ ...JSON.parse(raw), nonce: 'another-nonce' }),
    );
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    await rejectsWith(login.complete(callback, loginId), 'login_failed', 'nonce_mismatch');
  });

  it('refuses a response from another identity provider (mix-up)', async () => {
    const store = new MemoryEphemeralStore();
    const atPrimary = new OidcLogin(demoIdpSettings(primary), { ephemeral: store });
    const atSecondary = new OidcLogin(demoIdpSettings(secondary, { id: 'other' }), { ephemeral: store });

    const started = await atPrimary.begin({ redirectUri });
    const elsewhere = await atSecondary.begin({ redirectUri });
    const foreign = await signInThroughBrowser(elsewhere.authorizationUrl, alice);
    const ownState = new URL(started.authorizationUrl).searchParams.get('state') ?? '';

    // The other IdP's code and iss, delivered with our state.
    const mixed = new URL(foreign);
    mixed.searchParams.set('state', ownState);
    await rejectsWith(atPrimary.complete(mixed, started.loginId), 'login_failed', 'issuer_mismatch');

    // Without iss (the attacker strips it): our IdP advertises iss in responses, so still refused.
    const again = await atPrimary.begin({ redirectUri });
    const stripped = new URL(foreign);
    stripped.searchParams.set('state', new URL(again.authorizationUrl).searchParams.get('state') ?? '');
    stripped.searchParams.delete('iss');
    await rejectsWith(atPrimary.complete(stripped, again.loginId), 'login_failed', 'issuer_mismatch');

    // With a forged iss: our IdP does not know the other IdP's code.
    const third = await atPrimary.begin({ redirectUri });
    const forgedIss = new URL(foreign);
    forgedIss.searchParams.set('state', new URL(third.authorizationUrl).searchParams.get('state') ?? '');
    forgedIss.searchParams.set('iss', primary.issuer);
    await rejectsWith(atPrimary.complete(forgedIss, third.loginId), 'login_failed', 'code_invalid');
  });

  it('reports the IdP refusing the sign-in (user cancelled)', async () => {
    const { login } = loginFor(primary);
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const browser = new OidcTestBrowser();
    const page = await browser.fetch(authorizationUrl);
    const interaction = new URL(page.headers.get('location') ?? '', authorizationUrl);
    await browser.fetch(interaction);
    let response = await browser.fetch(new URL(`${interaction.pathname}/abort`, interaction), {
      body: new URLSearchParams(),
    });
    let location = new URL(response.headers.get('location') ?? '', interaction);
    while (!location.href.startsWith(redirectUri)) {
      response = await browser.fetch(location);
      location = new URL(response.headers.get('location') ?? '', location);
    }
    const error = await rejectsWith(login.complete(location, loginId), 'login_failed', 'idp_error');
    assert.equal(error.details.idpError, 'access_denied');

    // Some IdPs drop the state on errors: the IdP's answer is still what is reported.
    const withoutState = new URL(redirectUri);
    withoutState.search = '?error=access_denied&error_description=%3Cscript%3E';
    const stateless = await rejectsWith(login.complete(withoutState), 'login_failed', 'idp_error');
    assert.doesNotMatch(stateless.message, /script/, 'the IdP free text is not echoed');
  });

  it('refuses a sign-in finished after the pending one expired', async () => {
    const clock = new ManualClock(Date.now());
    const store = new MemoryEphemeralStore();
    const login = new OidcLogin(demoIdpSettings(primary), { ephemeral: store, clock });
    const { authorizationUrl, loginId } = await login.begin({ redirectUri });
    const callback = await signInThroughBrowser(authorizationUrl, alice);
    clock.advance(11 * 60 * 1000);
    await rejectsWith(login.complete(callback, loginId), 'login_failed', 'state_mismatch');
  });

  it('keeps returnTo on Portcullis (no open redirect)', async () => {
    const { login } = loginFor(primary);
    for (const returnTo of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      'relative',
      '/a\nb',
    ]) {
      await rejectsWith(login.begin({ redirectUri, returnTo }), 'validation_failed');
    }
  });

  it('the demo IdP rejects a wrong password', async () => {
    const { login } = loginFor(primary);
    const { authorizationUrl } = await login.begin({ redirectUri });
    await assert.rejects(
      signInThroughBrowser(authorizationUrl, { username: 'alice', password: 'bob-demo-password' }),
      (error: unknown) => error instanceof BrowserLoginError && error.kind === 'credentials_rejected',
    );
  });
});

describe('OidcLogin when the identity provider is unavailable', () => {
  it('fails fast with identity_provider_unavailable when nothing listens', async () => {
    const port = await closedPort();
    const login = new OidcLogin(oidcSettings({ issuer: `http://127.0.0.1:${port}`, clientSecret: 's' }), {
      ephemeral: new MemoryEphemeralStore(),
    });
    const started = Date.now();
    const error = await rejectsWith(login.begin({ redirectUri }), 'identity_provider_unavailable');
    assert.equal(error.details.reason, 'unreachable');
    assert.ok(Date.now() - started < 2000);
  });

  it('honours the timeout when the IdP accepts connections but never answers', async () => {
    const silent = await startSilentServer();
    try {
      const login = new OidcLogin(oidcSettings({ issuer: silent.url, timeout: 1, clientSecret: 's' }), {
        ephemeral: new MemoryEphemeralStore(),
      });
      const started = Date.now();
      const error = await rejectsWith(login.begin({ redirectUri }), 'identity_provider_unavailable');
      const elapsed = Date.now() - started;
      assert.equal(error.details.reason, 'timeout');
      assert.ok(elapsed >= 900 && elapsed < 3000, `took ${elapsed} ms`);
    } finally {
      await silent.stop();
    }
  });

  it('retries discovery on a later sign-in once the IdP is back', async () => {
    const port = await closedPort();
    const store = new MemoryEphemeralStore();
    const issuer = `http://127.0.0.1:${port}`;
    const login = new OidcLogin(oidcSettings({ issuer, client_id: 'portcullis', clientSecret: 'secret' }), {
      ephemeral: store,
    });
    await rejectsWith(login.begin({ redirectUri }), 'identity_provider_unavailable');
    const idp = await startDemoIdentityProvider({
      port,
      redirectUris: [redirectUri],
      clientSecret: 'secret',
    });
    try {
      const { authorizationUrl } = await login.begin({ redirectUri });
      assert.equal(new URL(authorizationUrl).origin, issuer);
    } finally {
      await idp.stop();
    }
  });

  it('one IdP being down does not affect another', async () => {
    const idp = await startDemoIdentityProvider({ port: 0, redirectUris: [redirectUri] });
    try {
      const store = new MemoryEphemeralStore();
      const down = new OidcLogin(
        oidcSettings({ id: 'down', issuer: `http://127.0.0.1:${await closedPort()}` }),
        {
          ephemeral: store,
        },
      );
      const up = new OidcLogin(demoIdpSettings(idp), { ephemeral: store });
      await rejectsWith(down.begin({ redirectUri }), 'identity_provider_unavailable');
      const { authorizationUrl, loginId } = await up.begin({ redirectUri });
      const { principal } = await up.complete(await signInThroughBrowser(authorizationUrl, alice), loginId);
      assert.equal(principal.id, 'corp:alice');
    } finally {
      await idp.stop();
    }
  });
});
