/**
 * Login cookies behind a TLS-terminating proxy: `server.public_url` is https, Portcullis itself is
 * reached over plain http and `trust_proxy` is false, so every request looks like http. The
 * cookies must still be what a browser on the https site needs (the real server, the real demo
 * OIDC provider and a real SAML IdP, requests through `inject`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../../test-support/portcullis-harness.js';
import {
  type SamlTestUser,
  samlSignIn,
  samlTestUsers,
  startTestSamlIdp,
  type TestSamlIdp,
} from '../../../test-support/saml-idp.js';

const [erin] = samlTestUsers as [SamlTestUser];
const publicUrl = 'https://portcullis.example.com';
const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'portcullis.example.com' };

/** The attributes of a Set-Cookie header, lowercased, without the name=value pair. */
function attributes(setCookie: unknown): string[] {
  assert.equal(typeof setCookie, 'string');
  return (setCookie as string)
    .split(';')
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

/** Starts the demo OIDC sign-in through the proxy; asserts the redirect, returns its cookie's attributes. */
async function oidcBindingCookie(h: Harness): Promise<string[]> {
  const begin = await h.portcullis.app.inject({
    method: 'GET',
    url: '/auth/oidc/demo/login',
    headers: proxied,
  });
  assert.equal(begin.statusCode, 302, begin.body);
  return attributes(begin.headers['set-cookie']);
}

describe('login cookies with an https public_url behind a proxy (trust_proxy false)', () => {
  let corp: TestSamlIdp;
  let h: Harness;
  before(async () => {
    corp = await startTestSamlIdp();
    h = await startHarness({
      storage: 'sqlite',
      extraIdentityProviders: [
        { id: 'corp', type: 'saml', display_name: 'Corp', metadata_url: corp.metadataUrl },
      ],
      configOverrides: {
        server: { host: '127.0.0.1', port: 0, public_url: publicUrl, trust_proxy: false },
      },
    });
  });
  after(async () => {
    await h?.close();
    await corp?.stop();
  });

  test('SAML: the binding cookie is SameSite=None; Secure, and the sign-in completes', async () => {
    const app = h.portcullis.app;
    const begin = await app.inject({ method: 'GET', url: '/auth/saml/corp/login', headers: proxied });
    assert.equal(begin.statusCode, 302, begin.body);
    const set = attributes(begin.headers['set-cookie']);
    assert.ok(set.includes('samesite=none'), `the IdP's cross-site POST carries it: ${set}`);
    assert.ok(set.includes('secure'));
    assert.ok(set.includes('httponly'));

    const cookie = String(begin.headers['set-cookie']).split(';')[0] ?? '';
    const posted = await samlSignIn(String(begin.headers.location), erin);
    assert.equal(posted.acsUrl, `${publicUrl}/auth/saml/corp/acs`);
    const finished = await app.inject({
      method: 'POST',
      url: '/auth/saml/corp/acs',
      headers: { ...proxied, 'content-type': 'application/x-www-form-urlencoded', cookie },
      payload: new URLSearchParams({ SAMLResponse: posted.SAMLResponse }).toString(),
    });
    assert.equal(finished.statusCode, 303, finished.body);
    assert.equal(finished.headers.location, '/console');
    const [cleared, session] = finished.headers['set-cookie'] as string[];
    const clearedAttributes = attributes(cleared);
    assert.ok(
      clearedAttributes.includes('max-age=0') &&
        clearedAttributes.includes('secure') &&
        clearedAttributes.includes('samesite=none'),
    );
    // The console session: a __Host- cookie (Secure, Path=/, no Domain), so no sibling host sets it.
    assert.match(session ?? '', /^__Host-portcullis_session=[A-Za-z0-9._-]+;/);
    const sessionAttributes = attributes(session);
    for (const attribute of ['path=/', 'httponly', 'samesite=lax', 'secure'])
      assert.ok(sessionAttributes.includes(attribute), `${attribute} in ${sessionAttributes}`);
    assert.ok(!sessionAttributes.some((a) => a.startsWith('domain=')));
    const page = await app.inject({
      method: 'GET',
      url: '/console',
      headers: { ...proxied, cookie: (session ?? '').split(';')[0] ?? '' },
    });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /Hello, Erin Example/);
  });

  test('OIDC: the binding cookie is Secure (SameSite=Lax: the IdP redirects back with a GET)', async () => {
    const set = await oidcBindingCookie(h);
    assert.ok(set.includes('secure'), String(set));
    assert.ok(set.includes('samesite=lax'));
    assert.ok(set.includes('httponly'));
  });
});

describe('login cookies with a plain-http public_url (loopback development)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ storage: 'sqlite' });
  });
  after(async () => {
    await h?.close();
  });

  test('the OIDC cookie is not Secure, even if a request claims https', async () => {
    const set = await oidcBindingCookie(h);
    assert.ok(!set.includes('secure'), String(set));
    assert.ok(set.includes('samesite=lax'));
  });
});
