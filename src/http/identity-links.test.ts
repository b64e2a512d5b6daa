/**
 * Linked identities end to end (`identity_links`): the real server with the demo OIDC IdP and a
 * real SAML IdP. A configured link makes a SAML identity and an OIDC user one principal (CLI
 * loopback and device sign-ins, IdP-issued bearer JWTs, grants, audit, groups_max_age), an
 * unlinked identity with the same e-mail stays apart, and SCIM deprovisioning through any linked
 * identity ends the principal's access, fail closed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { approveDeviceCode } from '../../test-support/oidc-browser.js';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import {
  type SamlTestUser,
  samlSignIn,
  samlTestUsers,
  startTestSamlIdp,
  type TestSamlIdp,
} from '../../test-support/saml-idp.js';

const [erin] = samlTestUsers as [SamlTestUser];
/** At corp: alice's e-mail and name, but not linked. */
const notAlice: SamlTestUser = {
  username: 'alice2',
  password: 'alice2-saml-password',
  nameId: 'saml-alice-0009',
  attributes: { email: 'alice@demo.portcullis.test', displayName: 'Alice', groups: ['Engineering'] },
};
const canonical = 'corp:saml-erin-0001';
const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User';

describe('identity links through the HTTP edge', () => {
  let corp: TestSamlIdp;
  let h: Harness;
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const secrets = mkdtempSync(join(tmpdir(), 'portcullis-links-'));
  const demoSecret = randomBytes(32).toString('base64url');
  const corpSecret = randomBytes(32).toString('base64url');

  before(async () => {
    writeFileSync(join(secrets, 'demo'), demoSecret, { mode: 0o600 });
    writeFileSync(join(secrets, 'corp'), corpSecret, { mode: 0o600 });
    corp = await startTestSamlIdp({ users: [erin, notAlice] });
    h = await startHarness({
      storage: 'sqlite',
      clock,
      demoIdpOverrides: { groups_max_age: '10m' },
      extraIdentityProviders: [
        {
          id: 'corp',
          type: 'saml',
          display_name: 'Corp (SAML)',
          metadata_url: corp.metadataUrl,
          mapping_rules: [{ when: { group: 'Engineering' }, groups: ['engineering', 'remote'] }],
        },
      ],
      configOverrides: {
        identity_links: [{ principal: canonical, also: ['demo:alice'] }],
        scim: {
          clients: [
            { idp: 'demo', token: { file: join(secrets, 'demo') }, subject_attribute: 'userName' },
            { idp: 'corp', token: { file: join(secrets, 'corp') } },
          ],
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    await corp?.stop();
    rmSync(secrets, { recursive: true, force: true });
  });

  /** The full CLI sign-in through the SAML IdP; returns a session token. */
  async function samlLogin(user: SamlTestUser): Promise<string> {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const begin = await fetch(
      `${h.url}/auth/saml/corp/login?redirect_uri=${encodeURIComponent('http://127.0.0.1:1/cb')}&code_challenge=${challenge}&code_challenge_method=S256&state=s1`,
      { redirect: 'manual' },
    );
    assert.equal(begin.status, 302, await begin.text());
    const cookie = (begin.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const posted = await samlSignIn(begin.headers.get('location') as string, user);
    const acs = await fetch(`${h.url}/auth/saml/corp/acs`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({
        SAMLResponse: posted.SAMLResponse,
        RelayState: posted.RelayState,
      }).toString(),
    });
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

  const scim = async (secret: string, method: string, path: string, body: unknown) => {
    const response = await fetch(`${h.url}/scim/v2${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const setActive = (secret: string, id: string, active: boolean) =>
    scim(secret, 'PATCH', `/Users/${id}`, {
      schemas: [patchSchema],
      Operations: [{ op: 'replace', value: { active } }],
    });
  const logins = async (actor: string) =>
    (await h.portcullis.store.auditLog.read(0, 100_000)).filter(
      (e) => e.type === 'auth.login' && e.actor === actor,
    );
  const grantIds = async (token: string) =>
    ((await h.api(token, 'GET', '/api/v1/grants?scope=mine')).body.grants as { id: string }[]).map(
      (g) => g.id,
    );

  it('a linked SAML identity and the OIDC user are one principal; groups are those of the latest sign-in', async () => {
    const viaSaml = await samlLogin(erin);
    const me = await h.api(viaSaml, 'GET', '/api/v1/me');
    assert.deepEqual(
      [me.body.id, me.body.idp, me.body.groups],
      [canonical, 'corp', ['engineering', 'remote']],
    );

    const viaOidc = await h.login('alice');
    const alice = await h.api(viaOidc, 'GET', '/api/v1/me');
    // Stored once per person, under the canonical identity; auth.login names the identity used.
    assert.deepEqual(
      [alice.body.id, alice.body.idp, alice.body.groups],
      [canonical, 'corp', ['engineering']],
    );
    assert.equal(
      (await h.portcullis.store.principals.get('demo:alice')) ?? null,
      null,
      'no second principal',
    );

    // A grant requested through the SAML sign-in is the OIDC session's too, and the other way.
    const fromSaml = await h.api(viaSaml, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 600,
      reason: 'linked',
    });
    assert.equal(fromSaml.body.state, 'active', JSON.stringify(fromSaml.body));
    const fromOidc = await h.api(viaOidc, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 300,
      reason: 'linked too',
    });
    assert.equal(fromOidc.body.state, 'active', JSON.stringify(fromOidc.body));
    const both = [fromSaml.body.grant_id, fromOidc.body.grant_id].sort();
    assert.deepEqual((await grantIds(viaOidc)).sort(), both);
    assert.deepEqual((await grantIds(viaSaml)).sort(), both);

    // An IdP-issued bearer JWT of the linked OIDC user is the same principal; after a SAML
    // sign-in its groups differ from the last ones, so it is an audited sign-in.
    await samlLogin(erin);
    const jwt = await obtainIdpAccessToken(
      h.idp,
      { username: 'alice', password: 'alice-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    const byJwt = await h.api(jwt, 'GET', '/api/v1/me');
    assert.deepEqual([byJwt.body.id, byJwt.body.idp], [canonical, 'demo']);
    assert.deepEqual((await grantIds(jwt)).sort(), both);

    // A device login (RFC 8628) of the linked OIDC user too.
    const started = await h.api(null, 'POST', '/api/v1/auth/device', { idp: 'demo' });
    await approveDeviceCode(started.body.verification_uri_complete as string, {
      username: 'alice',
      password: 'alice-demo-password',
    });
    offset += 6_000; // past the poll interval
    const device = await h.api(null, 'POST', '/api/v1/auth/device/token', {
      device_id: started.body.device_id,
    });
    assert.equal(device.body.status, 'complete', JSON.stringify(device.body));
    assert.equal((device.body.principal as { id: string }).id, canonical);
    assert.deepEqual((await grantIds(device.body.session_token as string)).sort(), both);

    // The audit trail keeps the identity used when it is not the canonical one.
    const events = await logins(canonical);
    const data = events.map((e) => e.data as Record<string, unknown>);
    assert.deepEqual(
      data.map((d) => [d.idp, d.client, d.linkedIdentity]),
      [
        ['corp', 'cli', undefined],
        ['demo', 'cli', 'demo:alice'],
        ['corp', 'cli', undefined],
        ['demo', 'idp_token', 'demo:alice'],
        ['demo', 'cli-device', 'demo:alice'],
      ],
    );
  });

  it('an unlinked identity with the same e-mail stays a principal of its own', async () => {
    const other = await samlLogin(notAlice);
    const me = await h.api(other, 'GET', '/api/v1/me');
    assert.equal(me.body.id, 'corp:saml-alice-0009');
    assert.equal(me.body.email, 'alice@demo.portcullis.test');
    assert.deepEqual(await grantIds(other), []);
  });

  it('SCIM deactivation through the linked IdP ends the canonical principal; reactivation is fail closed', async () => {
    const viaSaml = await samlLogin(erin);
    const viaOidc = await h.login('alice');
    const granted = await h.api(viaSaml, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 600,
      reason: 'before',
    });
    assert.equal(granted.body.state, 'active');
    const base = { schemas: [userSchema], active: true };
    const atDemo = await scim(demoSecret, 'POST', '/Users', { ...base, userName: 'alice' });
    const atCorp = await scim(corpSecret, 'POST', '/Users', {
      ...base,
      userName: 'erin@corp.example',
      externalId: 'saml-erin-0001',
    });
    assert.deepEqual([atDemo.status, atCorp.status], [201, 201], JSON.stringify([atDemo.body, atCorp.body]));

    // As if demo:alice had signed in before the link was configured: a principal of its own.
    await h.portcullis.store.principals.upsert(
      {
        id: 'demo:alice',
        idp: 'demo',
        subject: 'alice',
        displayName: 'Alice',
        email: null,
        groups: ['engineering'],
      },
      Date.now(),
    );

    // The person left the demo IdP; corp still knows them. They lose everything.
    assert.equal((await setActive(demoSecret, atDemo.body.id as string, false)).status, 200);
    const store = h.portcullis.store;
    assert.equal((await store.principals.get(canonical))?.disabled, true);
    assert.equal((await store.principals.get('demo:alice'))?.disabled, true, 'the pre-link principal too');
    assert.equal((await store.grants.get(granted.body.grant_id as string))?.status === 'active', false);
    for (const token of [viaSaml, viaOidc]) {
      const refused = await h.api(token, 'GET', '/api/v1/me');
      assert.deepEqual([refused.status, refused.body.code], [403, 'principal_disabled']);
    }
    await assert.rejects(samlLogin(erin), /principal_disabled/);
    await assert.rejects(h.login('alice'), /answered 403/);
    const audit = await store.auditLog.read(0, 100_000);
    const deactivated = audit.find((e) => e.type === 'scim.user_deactivated');
    assert.deepEqual(
      [deactivated?.data?.principal, deactivated?.data?.linkedIdentity],
      [canonical, 'demo:alice'],
    );
    assert.ok(audit.some((e) => e.type === 'grant.revoked' && e.grantId === granted.body.grant_id));

    // corp deactivates and reactivates its user: the demo IdP still says inactive, so it stays off.
    assert.equal((await setActive(corpSecret, atCorp.body.id as string, false)).status, 200);
    const reactivated = await setActive(corpSecret, atCorp.body.id as string, true);
    assert.equal(reactivated.status, 200);
    assert.equal((await store.principals.get(canonical))?.disabled, true);
    const kept = (await store.auditLog.read(0, 100_000)).findLast((e) => e.type === 'scim.user_reactivated');
    assert.deepEqual(kept?.data?.keptDisabledBy, ['demo:alice']);

    // Once every linked SCIM identity is active again, the principal may sign in (nothing restored).
    assert.equal((await setActive(demoSecret, atDemo.body.id as string, true)).status, 200);
    assert.equal((await store.principals.get(canonical))?.disabled, false);
    const again = await samlLogin(erin);
    assert.equal((await h.api(again, 'GET', '/api/v1/me')).body.id, canonical);
    assert.deepEqual((await h.api(again, 'GET', '/api/v1/grants?scope=mine&status=active')).body.grants, []);
  });

  it('groups_max_age: the shortest of the linked IdPs applies, whichever IdP was signed in through', async () => {
    const viaSaml = await samlLogin(erin);
    const unlinked = await samlLogin(notAlice);
    assert.equal((await h.api(viaSaml, 'GET', '/api/v1/me')).status, 200);
    offset += 11 * 60_000;
    const stale = await h.api(viaSaml, 'GET', '/api/v1/me');
    assert.deepEqual([stale.status, stale.body.code], [401, 'reauthentication_required']);
    // corp has no max age of its own: its unlinked user is not affected.
    assert.equal((await h.api(unlinked, 'GET', '/api/v1/me')).status, 200);
  });
});
