/**
 * Federation end to end: the real server with the demo OIDC IdP and two real SAML IdPs (each
 * signing with its own key). SAML sign-in through the CLI loopback flow, attacks refused with a
 * stable code and an audit event and nothing changed, principals kept apart per IdP, one IdP down
 * without harm to the others, and stale groups refused.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closedPort, startSilentServer } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
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
import { ApiClient } from '../cli/api-client.js';
import { loopbackLogin } from '../cli/loopback-login.js';
import { startPortcullis } from '../server/start.js';

const [erin, frank] = samlTestUsers as [SamlTestUser, SamlTestUser];
/** At the partner IdP: the same e-mail as erin at corp, and alice's OIDC subject as NameID. */
const partnerUsers: SamlTestUser[] = [
  { ...erin, nameId: 'saml-erin-0001' },
  {
    username: 'mallory',
    password: 'mallory-saml-password',
    nameId: 'alice',
    attributes: { email: 'alice@demo.portcullis.test', displayName: 'Not Alice', groups: ['admins'] },
  },
];

describe('SAML federation through the HTTP edge', () => {
  let corp: TestSamlIdp;
  let partner: TestSamlIdp;
  let h: Harness;
  let hanging: Awaited<ReturnType<typeof startSilentServer>>;
  let offset = 0;
  let partnerMetadata: string | undefined;
  const clock = { now: () => Date.now() + offset };

  before(async () => {
    corp = await startTestSamlIdp();
    partner = await startTestSamlIdp({ users: partnerUsers, signResponse: true, signAssertion: false });
    partnerMetadata = join(tmpdir(), `partner-${randomBytes(4).toString('hex')}.xml`);
    writeFileSync(partnerMetadata, partner.metadataXml());
    hanging = await startSilentServer();
    const gonePort = await closedPort();
    h = await startHarness({
      storage: 'sqlite',
      clock,
      extraIdentityProviders: [
        {
          id: 'corp',
          type: 'saml',
          display_name: 'Corp (SAML)',
          metadata_url: corp.metadataUrl,
          groups_max_age: '10m',
          allow: [{ email_domain: 'corp.example' }],
          mapping_rules: [
            { when: { group: 'Engineering' }, groups: ['engineering'] },
            { when: { email_domain: 'corp.example', claim: 'groups', equals: 'VPN' }, groups: ['remote'] },
          ],
        },
        {
          id: 'partner',
          type: 'saml',
          display_name: 'Partner (SAML)',
          metadata_file: partnerMetadata,
          want_assertions_signed: false,
          want_response_signed: true,
        },
        {
          id: 'slow',
          type: 'saml',
          display_name: 'Slow',
          metadata_url: `${hanging.url}/metadata`,
          timeout: '1s',
        },
        {
          id: 'gone',
          type: 'saml',
          display_name: 'Gone',
          metadata_url: `http://127.0.0.1:${gonePort}/metadata`,
        },
      ],
    });
  });
  after(async () => {
    await h?.close();
    await hanging?.stop();
    await corp?.stop();
    await partner?.stop();
    if (partnerMetadata) rmSync(partnerMetadata, { force: true });
  });

  const corpAcs = () => `${h.url}/auth/saml/corp/acs`;
  const corpEntity = () => `${h.url}/auth/saml/corp/metadata`;

  /** Starts a CLI sign-in at Portcullis; returns the IdP redirect, the cookie and the PKCE verifier. */
  async function start(idp: string) {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const response = await fetch(
      `${h.url}/auth/saml/${idp}/login?redirect_uri=${encodeURIComponent('http://127.0.0.1:1/cb')}&code_challenge=${challenge}&code_challenge_method=S256&state=s1`,
      { redirect: 'manual' },
    );
    assert.equal(response.status, 302, await response.text());
    const location = response.headers.get('location') as string;
    const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const requestId = /ID="([^"]+)"/.exec(
      (await import('node:zlib'))
        .inflateRawSync(Buffer.from(new URL(location).searchParams.get('SAMLRequest') ?? '', 'base64'))
        .toString(),
    )?.[1] as string;
    return { location, cookie, verifier, requestId };
  }

  async function post(idp: string, cookie: string, fields: Record<string, string>) {
    return fetch(`${h.url}/auth/saml/${idp}/acs`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** The full CLI sign-in; returns a session token. */
  async function login(idp: string, user: SamlTestUser): Promise<string> {
    const { location, cookie, verifier } = await start(idp);
    const posted = await samlSignIn(location, user);
    const acs = await post(idp, cookie, { SAMLResponse: posted.SAMLResponse, RelayState: posted.RelayState });
    assert.equal(acs.status, 303, await acs.text());
    const code = new URL(acs.headers.get('location') as string).searchParams.get('code');
    const exchanged = await h.api(null, 'POST', '/api/v1/auth/cli/token', {
      code,
      code_verifier: verifier,
      redirect_uri: 'http://127.0.0.1:1/cb',
    });
    assert.equal(exchanged.status, 200);
    return exchanged.body.session_token as string;
  }

  async function auditSince(seq: number) {
    return (await h.portcullis.store.auditLog.read(seq, 1000)).filter((e) => e.seq > seq);
  }

  it('lists every identity provider with its protocol and login URL', async () => {
    const { body } = await h.api(null, 'GET', '/api/v1/auth/providers');
    assert.deepEqual(
      (body.providers as { id: string; protocol: string; login_url: string }[]).map((p) => [
        p.id,
        p.protocol,
        p.login_url,
      ]),
      [
        ['demo', 'oidc', `${h.url}/auth/oidc/demo/login`],
        ['corp', 'saml', `${h.url}/auth/saml/corp/login`],
        ['partner', 'saml', `${h.url}/auth/saml/partner/login`],
        ['slow', 'saml', `${h.url}/auth/saml/slow/login`],
        ['gone', 'saml', `${h.url}/auth/saml/gone/login`],
      ],
    );
    const metadata = await fetch(`${h.url}/auth/saml/corp/metadata`);
    assert.equal(metadata.status, 200);
    assert.match(await metadata.text(), new RegExp(`Location="${corpAcs()}"`));
    assert.equal((await fetch(`${h.url}/auth/saml/demo/metadata`)).status, 404);
  });

  it('the CLI signs in through a SAML IdP: loopback redirect, PKCE, session token', async () => {
    const session = await loopbackLogin({
      client: new ApiClient({ server: h.url }),
      idp: 'corp',
      protocol: 'saml',
      present: async (authorizationUrl) => {
        assert.match(authorizationUrl, /\/auth\/saml\/corp\/login\?/);
        const begin = await fetch(authorizationUrl, { redirect: 'manual' });
        const cookie = (begin.headers.get('set-cookie') ?? '').split(';')[0] as string;
        const posted = await samlSignIn(begin.headers.get('location') as string, erin);
        const acs = await post('corp', cookie, {
          SAMLResponse: posted.SAMLResponse,
          RelayState: posted.RelayState,
        });
        assert.equal(acs.status, 303);
        await fetch(acs.headers.get('location') as string);
      },
    });
    assert.equal(session.principal.id, 'corp:saml-erin-0001');
    assert.equal((await h.api(session.session_token, 'GET', '/api/v1/me')).status, 200);
  });

  it('the sign-in page lists every identity provider', async () => {
    const page = await fetch(`${h.url}/auth/login`);
    assert.equal(page.status, 200);
    const html = await page.text();
    for (const [id, protocol, name] of [
      ['demo', 'oidc', 'Demo'],
      ['corp', 'saml', 'Corp (SAML)'],
      ['partner', 'saml', 'Partner (SAML)'],
    ]) {
      assert.ok(html.includes(`href="/auth/${protocol}/${id}/login"`), id);
      assert.ok(html.includes(name as string), name);
    }
  });

  it('signs in through SAML like OIDC: principal, mapped groups, auth.login, CLI session', async () => {
    const head = (await h.portcullis.store.auditLog.head()).seq;
    const token = await login('corp', erin);
    const me = await h.api(token, 'GET', '/api/v1/me');
    assert.deepEqual(me.body, {
      id: 'corp:saml-erin-0001',
      idp: 'corp',
      display_name: 'Erin Example',
      email: 'erin@corp.example',
      groups: ['engineering', 'remote'],
    });
    const events = await auditSince(head);
    const loginEvent = events.find((e) => e.type === 'auth.login');
    assert.equal(loginEvent?.actor, 'corp:saml-erin-0001');
    assert.deepEqual(loginEvent?.data, { idp: 'corp', groups: ['engineering', 'remote'], client: 'cli' });
  });

  it('refuses each attack with a stable code, an auth.login_failed event, and no principal', async () => {
    const attacks: [string, (requestId: string, genuine: string) => string, string][] = [
      [
        'unsigned',
        (id) =>
          corp.buildResponse({
            acsUrl: corpAcs(),
            audience: corpEntity(),
            inResponseTo: id,
            user: frank,
            signAssertion: false,
          }),
        'signature_invalid',
      ],
      [
        'signed by another key',
        (id) =>
          corp.buildResponse({
            acsUrl: corpAcs(),
            audience: corpEntity(),
            inResponseTo: id,
            user: frank,
            key: newSigningKey('evil'),
          }),
        'signature_invalid',
      ],
      [
        'signature wrapping',
        (_id, genuine) => {
          const xml = unsaml(genuine);
          const signed = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)?.[0] as string;
          const evil = signed
            .replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '')
            .replace('saml-erin-0001', 'saml-frank-0002')
            .replace(/ID="[^"]+"/, 'ID="_evil"');
          return saml(xml.replace(signed, `${evil}${signed}`));
        },
        'signature_invalid',
      ],
      [
        'expired',
        (id) =>
          corp.buildResponse({
            acsUrl: corpAcs(),
            audience: corpEntity(),
            inResponseTo: id,
            user: frank,
            notBeforeOffsetMs: -900_000,
            notOnOrAfterOffsetMs: -600_000,
          }),
        'assertion_expired',
      ],
      [
        'wrong audience',
        (id) =>
          corp.buildResponse({
            acsUrl: corpAcs(),
            audience: 'https://other.example/sp',
            inResponseTo: id,
            user: frank,
          }),
        'audience_mismatch',
      ],
      [
        'never requested',
        () =>
          corp.buildResponse({
            acsUrl: corpAcs(),
            audience: corpEntity(),
            inResponseTo: '_not-ours',
            user: frank,
          }),
        'request_unknown',
      ],
      [
        'unsolicited',
        () =>
          corp.buildResponse({ acsUrl: corpAcs(), audience: corpEntity(), inResponseTo: null, user: frank }),
        'request_unknown',
      ],
    ];
    for (const [name, forge, reason] of attacks) {
      const { location, cookie, requestId } = await start('corp');
      const genuine = (await samlSignIn(location, erin)).SAMLResponse;
      const head = (await h.portcullis.store.auditLog.head()).seq;
      const response = await post('corp', cookie, { SAMLResponse: forge(requestId, genuine) });
      const problem = (await response.json()) as { code: string; reason?: string };
      assert.equal(response.status, 400, name);
      assert.match(response.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(problem.code, 'login_failed', name);
      assert.equal(problem.reason, reason, name);
      const events = await auditSince(head);
      assert.deepEqual(
        events.map((e) => e.type),
        ['auth.login_failed'],
        name,
      );
      assert.equal((events[0]?.data as { failure?: string }).failure, reason, name);
      assert.equal(await h.portcullis.store.principals.get('corp:saml-frank-0002'), undefined, name);
    }
  });

  it('refuses a replayed response', async () => {
    const { location, cookie } = await start('corp');
    const posted = await samlSignIn(location, erin);
    assert.equal((await post('corp', cookie, { SAMLResponse: posted.SAMLResponse })).status, 303);
    const replay = await post('corp', cookie, { SAMLResponse: posted.SAMLResponse });
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { reason: string }).reason, 'assertion_replayed');
  });

  it('refuses a user the allow rules keep out', async () => {
    const { location, cookie } = await start('corp');
    const posted = await samlSignIn(location, frank);
    const response = await post('corp', cookie, { SAMLResponse: posted.SAMLResponse });
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as { code: string }).code, 'sign_in_not_allowed');
    assert.equal(await h.portcullis.store.principals.get('corp:saml-frank-0002'), undefined);
  });

  it('keeps principals apart per IdP: same e-mail, same subject as an OIDC user', async () => {
    const viaCorp = await h.api(await login('corp', erin), 'GET', '/api/v1/me');
    const viaPartner = await h.api(await login('partner', erin), 'GET', '/api/v1/me');
    assert.equal(viaCorp.body.id, 'corp:saml-erin-0001');
    assert.equal(viaPartner.body.id, 'partner:saml-erin-0001');
    assert.equal(viaCorp.body.email, viaPartner.body.email);

    const alice = await h.api(await h.login('alice'), 'GET', '/api/v1/me');
    const mallory = await h.api(await login('partner', partnerUsers[1] as SamlTestUser), 'GET', '/api/v1/me');
    assert.equal(alice.body.id, 'demo:alice');
    assert.equal(mallory.body.id, 'partner:alice');
    assert.deepEqual(alice.body.groups, ['engineering']);
    assert.deepEqual((await h.portcullis.store.principals.get('demo:alice'))?.groups, ['engineering']);
  });

  it("refuses a response signed by one IdP posted to another IdP's ACS", async () => {
    const { location, cookie, requestId } = await start('partner');
    await samlSignIn(location, erin);
    const fromCorp = corp.buildResponse({
      acsUrl: `${h.url}/auth/saml/partner/acs`,
      audience: `${h.url}/auth/saml/partner/metadata`,
      inResponseTo: requestId,
      signResponse: true,
    });
    const response = await post('partner', cookie, { SAMLResponse: fromCorp });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { reason: string }).reason, 'signature_invalid');
  });

  it('an IdP that is down or hangs affects only its own sign-ins', async () => {
    const token = await login('corp', erin);
    const slowBegin = fetch(`${h.url}/auth/saml/slow/login`, { redirect: 'manual' });
    const startedAt = Date.now();
    // While the slow IdP's sign-in waits, other sign-ins and the API answer.
    assert.equal((await h.api(await login('corp', erin), 'GET', '/api/v1/me')).status, 200);
    assert.equal((await h.api(await h.login('bob'), 'GET', '/api/v1/me')).status, 200);
    assert.equal((await h.api(token, 'GET', '/api/v1/me')).status, 200);
    const slow = await slowBegin;
    assert.ok(Date.now() - startedAt < 5_000, 'the slow IdP is given up on after its timeout');
    assert.equal(slow.status, 502);
    assert.deepEqual([((await slow.json()) as { code: string }).code], ['identity_provider_unavailable']);
    const gone = await fetch(`${h.url}/auth/saml/gone/login`, { redirect: 'manual' });
    assert.equal(gone.status, 502);
    // An IdP going down after its metadata was read: its known metadata keeps sign-ins starting.
    corp.setDown(true);
    try {
      assert.equal((await fetch(`${h.url}/auth/saml/corp/login`, { redirect: 'manual' })).status, 302);
    } finally {
      corp.setDown(false);
    }
  });

  it('refuses a session whose groups are older than groups_max_age, until a new sign-in', async () => {
    const token = await login('corp', erin);
    assert.equal((await h.api(token, 'GET', '/api/v1/me')).status, 200);
    offset += 11 * 60_000;
    const stale = await h.api(token, 'GET', '/api/v1/me');
    assert.equal(stale.status, 401);
    assert.equal(stale.body.code, 'reauthentication_required');
    // Other IdPs have no max age: alice's fresh session works with the same clock.
    assert.equal((await h.api(await h.login('alice'), 'GET', '/api/v1/me')).status, 200);
    offset = 0;
  });
});

describe('a broken identity provider entry', () => {
  it('stops start-up with the entry path and the problem', async () => {
    const dir = join(tmpdir(), `broken-${randomBytes(4).toString('hex')}`);
    const notMetadata = `${dir}-not-metadata.xml`;
    writeFileSync(notMetadata, '<html><body>login</body></html>');
    const cases: [object, RegExp][] = [
      [
        { id: 'corp', type: 'saml', display_name: 'Corp', metadata_file: notMetadata },
        /identity_providers\[1\]\.metadata_file: SAML metadata is not SAML 2\.0 metadata/,
      ],
      [
        { id: 'corp', type: 'saml', display_name: 'Corp', metadata_file: `${dir}-missing.xml` },
        /identity_providers\[1\]\.metadata_file: cannot read SAML metadata .*ENOENT/,
      ],
      [
        { id: 'corp', type: 'saml', display_name: 'Corp' },
        /identity_providers\[1\].*exactly one of metadata_file, metadata_url/,
      ],
      [
        {
          id: 'corp',
          type: 'saml',
          display_name: 'Corp',
          metadata_url: 'https://idp.example/md',
          deny: [{}],
        },
        /identity_providers\[1\]\.deny\[0\].*needs at least one of group, email_domain, claim/,
      ],
      [
        { id: 'corp', type: 'saml', display_name: 'Corp', metadata_url: 'http://idp.example/md' },
        /identity_providers\[1\]\.metadata_url: must be https/,
      ],
    ];
    try {
      for (const [entry, expected] of cases) {
        await assert.rejects(
          startHarness({ storage: 'sqlite', extraIdentityProviders: [entry] }),
          (error: Error) => {
            assert.match(error.message, expected);
            return true;
          },
        );
      }
    } finally {
      rmSync(notMetadata, { force: true });
    }
  });
});

describe('SAML across replicas on PostgreSQL', async () => {
  const skip = await postgresSkipReason();
  it('a sign-in begun on one replica finishes on another; a replay on the first is refused', {
    skip,
  }, async () => {
    const idp = await startTestSamlIdp();
    const h = await startHarness({
      storage: 'postgres',
      extraIdentityProviders: [
        { id: 'corp', type: 'saml', display_name: 'Corp', metadata_url: idp.metadataUrl },
      ],
    });
    const replica = await startPortcullis({
      configPath: h.configPath,
      env: { ...process.env, ...h.env },
      logLevel: 'silent',
      listen: false,
    });
    try {
      const begin = await fetch(`${h.url}/auth/saml/corp/login`, { redirect: 'manual' });
      const cookie = (begin.headers.get('set-cookie') ?? '').split(';')[0] as string;
      const posted = await samlSignIn(begin.headers.get('location') as string, erin);
      const body = new URLSearchParams({ SAMLResponse: posted.SAMLResponse }).toString();
      const finished = await replica.app.inject({
        method: 'POST',
        url: '/auth/saml/corp/acs',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        payload: body,
      });
      assert.equal(finished.statusCode, 303, finished.body);
      assert.equal(finished.headers.location, '/console');
      const session = /portcullis_session=[A-Za-z0-9._-]+/.exec(String(finished.headers['set-cookie']))?.[0];
      assert.ok(session, 'the console session cookie is set');
      // The console session works on the first replica too: it is a signed token, not replica state.
      const page = await fetch(`${h.url}/console`, { headers: { cookie: session } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /title="corp:saml-erin-0001">Erin Example</);
      const replay = await fetch(`${h.url}/auth/saml/corp/acs`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body,
      });
      assert.equal(replay.status, 400);
      assert.equal(((await replay.json()) as { reason: string }).reason, 'assertion_replayed');
    } finally {
      await replica.close();
      await h.close();
      await idp.stop();
    }
  });
});
