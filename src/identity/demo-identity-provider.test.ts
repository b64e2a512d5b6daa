import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BrowserLoginError, OidcTestBrowser, signInThroughBrowser } from '../../test-support/oidc-browser.js';
import { type DemoIdentityProvider, demoUsers, startDemoIdentityProvider } from './demo-identity-provider.js';

const redirectUri = 'http://127.0.0.1:9/auth/oidc/demo/callback';

describe('demo identity provider', () => {
  let idp: DemoIdentityProvider;

  before(async () => {
    idp = await startDemoIdentityProvider({
      port: 0,
      redirectUris: [redirectUri],
      apiAudience: 'urn:portcullis:api',
    });
  });
  after(() => idp.stop());

  function authorizationUrl(extra: Record<string, string> = {}): URL {
    const url = new URL('/auth', idp.issuer);
    url.search = new URLSearchParams({
      client_id: idp.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid groups',
      state: 'state-1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      ...extra,
    }).toString();
    return url;
  }

  it('documents four demo users in different groups', () => {
    assert.deepEqual(
      idp.users.map((u) => [u.username, u.password, u.groups.join(',')]),
      [
        ['alice', 'alice-demo-password', 'engineering'],
        ['bob', 'bob-demo-password', 'sre'],
        ['carol', 'carol-demo-password', 'dba'],
        ['dave', 'dave-demo-password', 'admins'],
      ],
    );
    assert.equal(idp.users, demoUsers);
  });

  it('signs a demo user in and redirects with a code and the issuer', async () => {
    const callback = await signInThroughBrowser(authorizationUrl(), demoUsers[2] ?? assert.fail());
    assert.ok(callback.searchParams.get('code'));
    assert.equal(callback.searchParams.get('state'), 'state-1');
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
  });

  it('refuses unknown users and wrong passwords (no dev interactions)', async () => {
    for (const credentials of [
      { username: 'mallory', password: 'anything' },
      { username: 'alice', password: '' },
      { username: 'alice', password: 'Alice-demo-password' },
    ]) {
      await assert.rejects(
        signInThroughBrowser(authorizationUrl(), credentials),
        (error: unknown) => error instanceof BrowserLoginError && error.kind === 'credentials_rejected',
      );
    }
  });

  it('requires PKCE', async () => {
    const url = authorizationUrl();
    url.searchParams.delete('code_challenge');
    url.searchParams.delete('code_challenge_method');
    const response = await new OidcTestBrowser().fetch(url);
    const location = new URL(response.headers.get('location') ?? '', idp.issuer);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
  });

  it('offers the authorization code and device flows only: no client credentials, password or implicit grants', async () => {
    const metadata = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    assert.deepEqual(metadata.response_types_supported, ['code']);
    assert.deepEqual(metadata.grant_types_supported, [
      'authorization_code',
      'urn:ietf:params:oauth:grant-type:device_code',
    ]);
    assert.equal(metadata.device_authorization_endpoint, `${idp.issuer}/device/auth`);
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    assert.ok((metadata.scopes_supported as string[]).includes('groups'));
  });

  it('publishes a new key on rotation and keeps the previous one', async () => {
    const [previous] = idp.signingKeyIds;
    const next = await idp.rotateSigningKey();
    const jwks = (await (await fetch(`${idp.issuer}/jwks`)).json()) as {
      keys: { kid: string; d?: string }[];
    };
    assert.deepEqual(
      jwks.keys.map((k) => k.kid),
      [next, previous],
    );
    assert.ok(
      jwks.keys.every((k) => k.d === undefined),
      'no private key material is published',
    );
  });

  it('refuses an API audience that is not a resource indicator URI', async () => {
    await assert.rejects(
      startDemoIdentityProvider({ port: 0, redirectUris: [redirectUri], apiAudience: 'portcullis-api' }),
      /absolute URI/,
    );
  });
});
