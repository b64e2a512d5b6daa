import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryEphemeralStore } from '../../test-support/oidc-fixtures.js';
import {
  newSigningKey,
  type SamlTestUser,
  saml,
  samlSignIn,
  samlTestUsers,
  startTestSamlIdp,
  type TestSamlIdp,
  unsaml,
} from '../../test-support/saml-idp.js';
import type { SamlProviderSettings } from '../config/load.js';
import { PortcullisError } from '../core/errors.js';
import { SamlLogin } from './saml-login.js';

const publicUrl = 'http://127.0.0.1:8080';
const acsUrl = `${publicUrl}/auth/saml/corp/acs`;
const spEntityId = `${publicUrl}/auth/saml/corp/metadata`;
const [erin, frank] = samlTestUsers as [SamlTestUser, SamlTestUser];

export function samlSettings(overrides: Partial<SamlProviderSettings> = {}): SamlProviderSettings {
  return {
    id: 'corp',
    type: 'saml',
    display_name: 'Corp SAML',
    metadata_refresh_interval: 3600,
    want_assertions_signed: true,
    want_response_signed: false,
    groups_attribute: 'groups',
    email_attribute: 'email',
    name_attribute: 'displayName',
    clock_skew: 30,
    timeout: 2,
    group_mapping: { Engineering: ['engineering'] },
    mapping_rules: [],
    allow: [],
    deny: [],
    metadataXml: undefined,
    configPath: 'identity_providers[0]',
    ...overrides,
  };
}

function reasonOf(error: unknown): string {
  assert.ok(error instanceof PortcullisError, `expected a PortcullisError, got ${String(error)}`);
  return `${error.code}:${String(error.details.reason ?? error.details.rule ?? '')}`;
}

async function rejects(promise: Promise<unknown>, expected: string): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.equal(reasonOf(error), expected);
    return true;
  });
}

describe('SamlLogin against a real signing SAML IdP', () => {
  let idp: TestSamlIdp;
  let now = Date.now();
  const clock = { now: () => now };

  before(async () => {
    idp = await startTestSamlIdp();
  });
  after(async () => {
    await idp.stop();
  });

  function setup(overrides: Partial<SamlProviderSettings> = {}) {
    const store = new MemoryEphemeralStore();
    const login = new SamlLogin(samlSettings({ metadata_url: idp.metadataUrl, ...overrides }), {
      ephemeral: store,
      publicUrl,
      clock,
    });
    return { store, login };
  }

  /** Begins a sign-in; returns the AuthnRequest id, the browser binding and what the IdP posts. */
  async function signIn(login: SamlLogin, user: SamlTestUser = erin) {
    const begun = await login.begin({ redirectUri: login.acsUrl, context: 'ctx' });
    const requestId = /ID="([^"]+)"/.exec(
      (await import('node:zlib'))
        .inflateRawSync(
          Buffer.from(new URL(begun.authorizationUrl).searchParams.get('SAMLRequest') ?? '', 'base64'),
        )
        .toString(),
    )?.[1] as string;
    const posted = await samlSignIn(begun.authorizationUrl, user);
    return { ...begun, requestId, posted };
  }

  it('signs a user in: principal from the NameID, mapped groups, e-mail and name', async () => {
    const { login } = setup();
    const { loginId, posted } = await signIn(login);
    assert.equal(posted.acsUrl, acsUrl);
    const { principal, context } = await login.complete(new URL(acsUrl), loginId, posted);
    assert.equal(principal.id, 'corp:saml-erin-0001');
    assert.equal(principal.email, 'erin@corp.example');
    assert.equal(principal.displayName, 'Erin Example');
    assert.deepEqual(principal.groups, ['engineering']);
    assert.equal(context, 'ctx');
  });

  it('publishes SP metadata with the entity id and the ACS URL', () => {
    const { login } = setup();
    const xml = login.serviceProviderMetadata();
    assert.match(xml, new RegExp(`entityID="${spEntityId}"`));
    assert.match(xml, new RegExp(`Location="${acsUrl}"`));
    assert.match(xml, /WantAssertionsSigned="true"/);
  });

  it('refuses an unsigned response', async () => {
    const { login } = setup();
    const { loginId, requestId } = await signIn(login);
    const unsigned = idp.buildResponse({
      acsUrl,
      audience: spEntityId,
      inResponseTo: requestId,
      signAssertion: false,
    });
    await rejects(
      login.complete(new URL(acsUrl), loginId, { SAMLResponse: unsigned }),
      'login_failed:signature_invalid',
    );
  });

  it('refuses a response signed with another key', async () => {
    const { login } = setup();
    const { loginId, requestId } = await signIn(login);
    const forged = idp.buildResponse({
      acsUrl,
      audience: spEntityId,
      inResponseTo: requestId,
      key: newSigningKey('evil'),
    });
    await rejects(
      login.complete(new URL(acsUrl), loginId, { SAMLResponse: forged }),
      'login_failed:signature_invalid',
    );
  });

  it('refuses signature wrapping: a signed assertion plus an injected unsigned one', async () => {
    const { login } = setup();
    const { loginId, posted } = await signIn(login);
    const xml = unsaml(posted.SAMLResponse);
    const signed = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)?.[0] as string;
    const evil = signed
      .replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '')
      .replace('saml-erin-0001', 'saml-admin-9999')
      .replace(/ID="[^"]+"/, 'ID="_evil"');
    // Variant 1: both assertions side by side, the evil one first.
    const sideBySide = xml.replace(signed, `${evil}${signed}`);
    await rejects(
      login.complete(new URL(acsUrl), loginId, { SAMLResponse: saml(sideBySide) }),
      'login_failed:signature_invalid',
    );
    // Variant 2: the signed assertion hidden in Extensions, the evil one in its place.
    const { loginId: id2, posted: posted2 } = await signIn(login);
    const xml2 = unsaml(posted2.SAMLResponse);
    const signed2 = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml2)?.[0] as string;
    const evil2 = signed2
      .replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '')
      .replace('saml-erin-0001', 'saml-admin-9999');
    const hidden = xml2
      .replace(signed2, evil2)
      .replace('<samlp:Status>', `<samlp:Extensions>${signed2}</samlp:Extensions><samlp:Status>`);
    await rejects(
      login.complete(new URL(acsUrl), id2, { SAMLResponse: saml(hidden) }),
      'login_failed:signature_invalid',
    );
  });

  it('refuses an expired assertion, a wrong audience, recipient and issuer', async () => {
    const { login } = setup();
    const cases: [
      Parameters<TestSamlIdp['buildResponse']>[0] extends infer O ? Partial<O> : never,
      string,
    ][] = [
      [{ notBeforeOffsetMs: -600_000, notOnOrAfterOffsetMs: -120_000 }, 'login_failed:assertion_expired'],
      [{ audience: 'https://other-sp.example/metadata' }, 'login_failed:audience_mismatch'],
      [
        { recipient: 'https://other-sp.example/acs', destination: 'https://other-sp.example/acs' },
        'login_failed:recipient_mismatch',
      ],
      [{ issuer: 'https://other-idp.example/entity' }, 'login_failed:issuer_mismatch'],
    ];
    for (const [change, expected] of cases) {
      const { loginId, requestId } = await signIn(login);
      const response = idp.buildResponse({
        acsUrl,
        audience: spEntityId,
        inResponseTo: requestId,
        ...change,
      });
      await rejects(login.complete(new URL(acsUrl), loginId, { SAMLResponse: response }), expected);
    }
  });

  it('accepts an assertion slightly outside its window within clock_skew', async () => {
    const { login } = setup({ clock_skew: 60 });
    const { loginId, requestId } = await signIn(login);
    const response = idp.buildResponse({
      acsUrl,
      audience: spEntityId,
      inResponseTo: requestId,
      notBeforeOffsetMs: 20_000,
    });
    const { principal } = await login.complete(new URL(acsUrl), loginId, { SAMLResponse: response });
    assert.equal(principal.subject, 'saml-erin-0001');
  });

  it('refuses a replayed assertion', async () => {
    const { login } = setup();
    const { loginId, posted } = await signIn(login);
    await login.complete(new URL(acsUrl), loginId, posted);
    await rejects(login.complete(new URL(acsUrl), loginId, posted), 'login_failed:assertion_replayed');
  });

  it('of two racing POSTs of one response, exactly one signs in', async () => {
    const { login } = setup();
    const { loginId, posted } = await signIn(login);
    const results = await Promise.allSettled([
      login.complete(new URL(acsUrl), loginId, posted),
      login.complete(new URL(acsUrl), loginId, posted),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  it('re-reads metadata_url once it is older than metadata_refresh_interval', async () => {
    const { login } = setup({ metadata_refresh_interval: 60 });
    await login.begin({ redirectUri: acsUrl });
    const fetches = idp.metadataFetches;
    await login.begin({ redirectUri: acsUrl });
    assert.equal(idp.metadataFetches, fetches, 'fresh metadata is not fetched again');
    now += 61_000;
    await login.begin({ redirectUri: acsUrl });
    assert.equal(idp.metadataFetches, fetches + 1);
  });

  it('refuses a response to a request never sent, and an unsolicited one', async () => {
    const { login } = setup();
    const { loginId } = await signIn(login);
    const unknown = idp.buildResponse({ acsUrl, audience: spEntityId, inResponseTo: '_never-sent' });
    await rejects(
      login.complete(new URL(acsUrl), loginId, { SAMLResponse: unknown }),
      'login_failed:request_unknown',
    );
    const unsolicited = idp.buildResponse({ acsUrl, audience: spEntityId, inResponseTo: null });
    await rejects(
      login.complete(new URL(acsUrl), loginId, { SAMLResponse: unsolicited }),
      'login_failed:request_unknown',
    );
  });

  it('refuses a response finished in another browser', async () => {
    const { login } = setup();
    const { posted } = await signIn(login);
    await rejects(
      login.complete(new URL(acsUrl), 'another-browser', posted),
      'login_failed:browser_mismatch',
    );
  });

  it('applies allow rules: only @corp.example may sign in', async () => {
    const { login } = setup({ allow: [{ email_domain: 'corp.example' }] });
    const { loginId, posted } = await signIn(login, frank);
    await rejects(
      login.complete(new URL(acsUrl), loginId, posted),
      'sign_in_not_allowed:no allow rule matched',
    );
    const ok = await signIn(login, erin);
    assert.equal(
      (await login.complete(new URL(acsUrl), ok.loginId, ok.posted)).principal.subject,
      'saml-erin-0001',
    );
  });

  it('picks up a rotated IdP key without a restart, re-reading metadata at most once per cooldown', async () => {
    const { login } = setup();
    await signIn(login); // metadata read with the first key
    const fetches = idp.metadataFetches;
    idp.rotateKey();
    const first = await signIn(login);
    const { principal } = await login.complete(new URL(acsUrl), first.loginId, first.posted);
    assert.equal(principal.subject, 'saml-erin-0001');
    assert.equal(idp.metadataFetches, fetches + 1);
    // A forged response right after does not make Portcullis fetch the metadata again.
    const second = await signIn(login);
    const forged = idp.buildResponse({
      acsUrl,
      audience: spEntityId,
      inResponseTo: second.requestId,
      key: newSigningKey('evil'),
    });
    await rejects(
      login.complete(new URL(acsUrl), second.loginId, { SAMLResponse: forged }),
      'login_failed:signature_invalid',
    );
    assert.equal(idp.metadataFetches, fetches + 1);
  });

  it('says the IdP is unavailable when its metadata cannot be read, and keeps known metadata', async () => {
    const down = new SamlLogin(samlSettings({ metadata_url: 'http://127.0.0.1:1/metadata' }), {
      ephemeral: new MemoryEphemeralStore(),
      publicUrl,
      clock,
    });
    await rejects(down.begin({ redirectUri: acsUrl }), 'identity_provider_unavailable:unreachable');
    const { login } = setup({ metadata_refresh_interval: 1 });
    await signIn(login);
    idp.setDown(true);
    try {
      now += 5_000; // metadata now stale; the refresh fails, the known metadata is used
      const begun = await login.begin({ redirectUri: acsUrl });
      assert.match(begun.authorizationUrl, /^http:\/\/127\.0\.0\.1:\d+\/sso\?SAMLRequest=/);
    } finally {
      idp.setDown(false);
    }
  });

  it('reads metadata from a file and refuses a broken one', () => {
    const store = new MemoryEphemeralStore();
    const login = new SamlLogin(samlSettings({ metadataXml: idp.metadataXml() }), {
      ephemeral: store,
      publicUrl,
    });
    assert.equal(login.spEntityId, spEntityId);
    assert.throws(
      () => new SamlLogin(samlSettings({ metadataXml: '<html/>' }), { ephemeral: store, publicUrl }),
      /not SAML 2.0 metadata/,
    );
  });
});
