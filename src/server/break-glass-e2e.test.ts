/**
 * Break-glass end to end over HTTP against the real server, on SQLite and PostgreSQL storage, with
 * a real PostgreSQL target: activation while the IdP is down, the grant through the PostgreSQL
 * provisioner (scope enforced by the database itself), early end cutting live sessions, review,
 * readiness and metrics; then the IdP-keys-changed and broken-configuration scenarios.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { confirmActivation, initiateActivation } from '../../test-support/break-glass-activation.js';
import {
  demoDbEmergencyAccount,
  enrolInHarness,
  type TestCustodian,
  testWebhookSecret,
  webhookChannelConfig,
} from '../../test-support/break-glass-fixtures.js';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { SoftAuthenticator } from '../../test-support/soft-authenticator.js';
import { waitFor } from '../../test-support/wait-for.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../test-support/webhook-receiver.js';
import { startDemoIdentityProvider } from '../identity/demo-identity-provider.js';

const account = 'db-emergency';
const breakGlass = {
  accounts: [
    demoDbEmergencyAccount(account, ['alice', { id: 'bob', principal: 'demo:bob' }, 'carol'], {
      activation_window_minutes: 5,
    }),
  ],
  drill_access: '3s',
  reviewer_groups: ['sre'],
  // Nothing listens there: an alert outage, which must never block break-glass.
  alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
};

function enrol(h: Harness) {
  return enrolInHarness(h, account, ['alice', 'bob', 'carol']);
}

const handleHeaders = (handle: string) => ({ 'x-break-glass-handle': handle });

async function pgError(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  return 'no error';
}

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`break-glass over HTTP (${storage} storage)`, async () => {
    const skip = await postgresSkipReason();
    let h: Harness;
    let c: Record<string, TestCustodian>;
    let daveSession: string;
    let bobSession: string;
    let receiver: WebhookReceiver;
    before(async () => {
      if (skip) return;
      receiver = await startWebhookReceiver({ secret: testWebhookSecret });
      h = await startHarness({
        storage,
        targetAdminUrl: sharedPostgresAdminUrl,
        configOverrides: {
          break_glass: {
            ...breakGlass,
            accounts: [{ ...breakGlass.accounts[0], alert_channels: ['soc', 'ops'] }],
            alert_channels: [
              webhookChannelConfig('soc', `${receiver.url}/hooks`),
              ...breakGlass.alert_channels,
            ],
          },
        },
      });
      c = await enrol(h);
      daveSession = await h.login('dave');
      bobSession = await h.login('bob');
    });
    after(async () => {
      await h?.close();
      await receiver?.close();
    });

    it('activates with every IdP down, grants only the scope, ends on demand and is reviewed', {
      skip,
    }, async () => {
      await h.idp.stop();
      await assert.rejects(h.login('alice'), 'SSO sign-in is impossible now');

      const alice = c.alice as TestCustodian;
      const bob = c.bob as TestCustodian;
      const { id, handle, state } = await initiateActivation(h, account, alice, {
        reason: 'primary database refuses writes, IdP outage',
        incident: 'INC-2026-1123',
        duration_minutes: 20,
      });
      assert.equal(state, 'awaiting_quorum');

      // No credentials before the quorum; the initiator cannot confirm.
      const early = await h.api(
        null,
        'POST',
        `/api/v1/break-glass/activations/${id}/credentials`,
        undefined,
        handleHeaders(handle),
      );
      assert.equal(early.status, 409);
      const self = await h.api(
        null,
        'POST',
        `/api/v1/break-glass/activations/${id}/confirm`,
        await alice.body(),
      );
      assert.equal(self.status, 403);
      assert.equal(self.body.code, 'self_confirmation');
      assert.match(self.contentType, /problem\+json/);

      assert.equal(await confirmActivation(h, id, bob), 'active');

      const status = await h.api(
        null,
        'GET',
        `/api/v1/break-glass/activations/${id}`,
        undefined,
        handleHeaders(handle),
      );
      assert.equal(status.status, 200);
      const noHandle = await h.api(null, 'GET', `/api/v1/break-glass/activations/${id}`);
      assert.equal(noHandle.status, 401);

      const creds = await h.api(
        null,
        'POST',
        `/api/v1/break-glass/activations/${id}/credentials`,
        undefined,
        handleHeaders(handle),
      );
      assert.equal(creds.status, 200, JSON.stringify(creds.body));
      const grants = creds.body.grants as { role: string; credentials: Record<string, string> }[];
      assert.deepEqual(
        grants.map((g) => g.role),
        ['readonly'],
      );
      const connectionString = grants[0]?.credentials.connection_string as string;
      const db = new pg.Client({ connectionString });
      db.on('error', () => {});
      await db.connect();
      assert.equal((await db.query('select count(*)::int as n from items')).rows[0].n, 2);
      // Outside the scope: the database itself refuses.
      assert.equal(await pgError(() => db.query("insert into items (name) values ('x')")), '42501');
      assert.equal(await pgError(() => db.query('set role app_readwrite')), '42501');

      const ended = await h.api(
        null,
        'POST',
        `/api/v1/break-glass/activations/${id}/end`,
        undefined,
        handleHeaders(handle),
      );
      assert.equal(ended.status, 200, JSON.stringify(ended.body));
      assert.equal(ended.body.state, 'ended');
      // The live session was cut and no new login is possible.
      assert.notEqual(await pgError(() => db.query('select 1')), 'no error');
      await db.end().catch(() => {});
      const again = new pg.Client({ connectionString });
      again.on('error', () => {});
      assert.notEqual(await pgError(() => again.connect()), 'no error');
      await again.end().catch(() => {});

      // Review: bob took part (demo:bob is his principal); dave (admin) did not.
      const byParticipant = await h.api(bobSession, 'POST', `/api/v1/break-glass/activations/${id}/review`, {
        notes: 'fine',
      });
      assert.equal(byParticipant.status, 403);
      assert.equal(byParticipant.body.code, 'self_review');
      const reviewed = await h.api(daveSession, 'POST', `/api/v1/break-glass/activations/${id}/review`, {
        notes: 'justified; INC-2026-1123 post-mortem',
      });
      assert.equal(reviewed.status, 200, JSON.stringify(reviewed.body));
      assert.equal(reviewed.body.state, 'reviewed');

      const events = (await h.portcullis.store.auditLog.read(0, 10_000)).filter(
        (e) => e.data?.activationId === id,
      );
      const types = events.map((e) => e.type);
      for (const t of [
        'break_glass.initiated',
        'break_glass.refused',
        'break_glass.confirmed',
        'break_glass.activated',
        'break_glass.credentials_shown',
        'break_glass.ended',
        'break_glass.reviewed',
      ])
        assert.ok(types.includes(t as never), `${t} in ${types.join(', ')}`);
      assert.ok(events.filter((e) => e.type.startsWith('break_glass.')).every((e) => e.severity === 'high'));
      assert.ok(events.some((e) => e.sourceIp === '127.0.0.1'));
      assert.ok(!JSON.stringify(events).includes(alice.passphrase));

      // Every step reached the working channel, signed; the broken one was retried and audited,
      // and blocked nothing.
      const kinds = await waitFor('alerts of every step', async () => {
        const got = receiver
          .accepted()
          .map((b) => (b as { alert: { kind: string; activation_id: string } }).alert);
        const mine = new Set(got.filter((a) => a.activation_id === id).map((a) => a.kind));
        return ['initiated', 'refused', 'confirmed', 'activated', 'ended', 'reviewed'].every((k) =>
          mine.has(k),
        )
          ? mine
          : undefined;
      });
      assert.ok(kinds.has('activated'));
      assert.ok(!receiver.received.some((r) => r.rawBody.includes(alice.passphrase)));
      await waitFor('the failed delivery in the audit log', async () =>
        (await h.portcullis.store.auditLog.read(0, 10_000)).find(
          (e) => e.type === 'break_glass.alert_failed' && e.data?.channel === 'ops',
        ),
      );

      const accounts = await h.api(daveSession, 'GET', '/api/v1/break-glass/accounts');
      assert.equal(accounts.status, 200);
      const overview = (accounts.body.accounts as Record<string, unknown>[])[0];
      assert.equal(overview?.drill_overdue, true);
      assert.equal(overview?.rotation_owed, 1);
      const ready = await h.api(null, 'GET', '/readyz');
      assert.equal((ready.body.checks as Record<string, string>).break_glass_drills, `overdue: ${account}`);
      const metrics = await fetch(`${h.url}/metrics`).then((r) => r.text());
      assert.match(metrics, /portcullis_break_glass_drill_overdue\{account="db-emergency"\} 1/);
    });

    it('a security key enrolled over HTTP is alerted; an admin lists and revokes it', { skip }, async () => {
      const carol = c.carol as TestCustodian;
      const key = new SoftAuthenticator(h.url);
      const creation = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys/options', {
        account,
        ...(await carol.body()),
      });
      assert.equal(creation.status, 200, JSON.stringify(creation.body));
      const enrolled = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys', {
        account,
        custodian: 'carol',
        response: key.create(creation.body as never),
      });
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
      await waitFor('the enrolment alert', async () =>
        receiver
          .accepted()
          .map((b) => (b as { alert: { kind: string; account_id: string; custodians: string[] } }).alert)
          .find((a) => a.kind === 'security_key_enrolled' && a.custodians.includes('carol')),
      );

      const keysPath = `/api/v1/break-glass/accounts/${account}/security-keys`;
      const byNonAdmin = await h.api(bobSession, 'GET', keysPath);
      assert.equal(byNonAdmin.status, 403);
      const listed = await h.api(daveSession, 'GET', keysPath);
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      assert.deepEqual(
        (listed.body.security_keys as { custodian: string; credential_id: string }[]).map((k) => [
          k.custodian,
          k.credential_id,
        ]),
        [['carol', key.id]],
      );
      const overview = await h.api(daveSession, 'GET', '/api/v1/break-glass/accounts');
      assert.deepEqual((overview.body.accounts as { security_keys: unknown }[])[0]?.security_keys, {
        carol: 1,
      });

      const refused = await h.api(bobSession, 'POST', `${keysPath}/${key.id}/revoke`);
      assert.equal(refused.status, 403);
      const revoked = await h.api(daveSession, 'POST', `${keysPath}/${key.id}/revoke`);
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      assert.equal(revoked.body.custodian, 'carol');
      const twice = await h.api(daveSession, 'POST', `${keysPath}/${key.id}/revoke`);
      assert.equal(twice.status, 404);
      const options = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-key-options', {
        account,
        custodian: 'carol',
      });
      assert.equal(options.status, 401, 'no key left to sign in with');
      await waitFor('the revocation alert', async () =>
        receiver
          .accepted()
          .map((b) => (b as { alert: { kind: string } }).alert)
          .find((a) => a.kind === 'security_key_revoked'),
      );
      const event = (await h.portcullis.store.auditLog.read(0, 10_000)).find(
        (e) => e.type === 'break_glass.security_key_revoked',
      );
      assert.equal(event?.actor, 'demo:dave');
      assert.equal(event?.data?.securityKey, key.id);
    });
  });
}

describe('break-glass when the IdP signing keys changed', async () => {
  let h: Harness;
  let replacement: Awaited<ReturnType<typeof startDemoIdentityProvider>> | undefined;
  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      configOverrides: {
        break_glass: {
          accounts: [{ ...breakGlass.accounts[0], scope: { resource: 'demo-api', roles: ['reader'] } }],
          alert_channels: breakGlass.alert_channels,
        },
      },
    });
  });
  after(async () => {
    await replacement?.stop();
    await h?.close();
  });

  it('refuses tokens signed with the old keys, and break-glass still activates', async () => {
    const token = await obtainIdpAccessToken(
      h.idp,
      { username: 'carol', password: 'carol-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    // Not used yet, so no replica holds the old keys in a cache. The IdP comes back on the same address with new signing keys (the old ones are gone).
    const port = Number(new URL(h.idp.issuer).port);
    await h.idp.stop();
    replacement = await startDemoIdentityProvider({
      port,
      redirectUris: [`${h.url}/auth/oidc/demo/callback`],
      apiAudience: 'urn:portcullis:api',
    });
    const refused = await h.api(token, 'GET', '/api/v1/me');
    assert.equal(refused.status, 401);

    const c = await enrol(h);
    const unknown = await h.api(null, 'POST', '/api/v1/break-glass/activations', {
      account: 'no-such-account',
      custodian: 'carol',
      passphrase: 'whatever whatever',
      totp: '123456',
      reason: 'r',
      incident: 'i',
      duration_minutes: 5,
    });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'unknown_emergency_account');
    const hostile = await h.api(null, 'POST', '/api/v1/break-glass/activations', {
      account,
      custodian: 'carol\u202e',
      passphrase: 'whatever whatever',
      totp: '123456',
      reason: 'r',
      incident: 'i',
      duration_minutes: 5,
    });
    assert.equal(hostile.status, 400);
    assert.equal(hostile.body.code, 'validation_failed');
    const { id, handle } = await initiateActivation(h, account, c.carol as TestCustodian, {
      reason: 'IdP keys rotated badly',
      incident: 'INC-7',
      duration_minutes: 5,
    });
    assert.equal(await confirmActivation(h, id, c.alice as TestCustodian), 'active');
    const creds = await h.api(
      null,
      'POST',
      `/api/v1/break-glass/activations/${id}/credentials`,
      undefined,
      handleHeaders(handle),
    );
    const emergencyToken = (creds.body.grants as { token: string }[])[0]?.token as string;
    const introspection = await h.api(null, 'POST', '/api/v1/introspect', { token: emergencyToken });
    assert.equal(introspection.body.active, true);

    // A custodian enrols a security key over HTTP and uses it instead of a TOTP code.
    const key = new SoftAuthenticator(h.url);
    const bob = c.bob as TestCustodian;
    const creation = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys/options', {
      account,
      ...(await bob.body()),
    });
    assert.equal(creation.status, 200, JSON.stringify(creation.body));
    const enrolled = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys', {
      account,
      custodian: 'bob',
      response: key.create(creation.body as never),
    });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const both = await h.api(null, 'POST', '/api/v1/break-glass/activations', {
      account,
      ...(await bob.body()),
      security_key: { id: 'x', rawId: 'x', type: 'public-key' },
      reason: 'r',
      incident: 'i',
      duration_minutes: 5,
    });
    assert.equal(both.status, 400, 'exactly one second factor');
    const options = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-key-options', {
      account,
      custodian: 'bob',
    });
    assert.equal(options.status, 200);
    const withKey = await h.api(null, 'POST', '/api/v1/break-glass/activations', {
      account,
      custodian: 'bob',
      passphrase: bob.passphrase,
      security_key: key.get(options.body as never),
      reason: 'second incident, keys only',
      incident: 'INC-7b',
      duration_minutes: 5,
    });
    assert.equal(withKey.status, 201, JSON.stringify(withKey.body));
  });
});

describe('break-glass-only mode when federation or policies fail to load', () => {
  it('starts with broken policies and a broken IdP section, says so, and break-glass works', async () => {
    const broken = join((await import('node:os')).tmpdir(), `broken-${process.pid}-${Date.now()}.cedar`);
    writeFileSync(broken, 'permit (principal, action, resource) when { this is not cedar');
    const h = await startHarness({
      storage: 'sqlite',
      policyFile: broken,
      configOverrides: {
        identity_providers: [
          { id: 'demo', type: 'oidc', display_name: 'Demo', issuer: 'not a url', client_id: 'x' },
        ],
        break_glass: {
          accounts: [{ ...breakGlass.accounts[0], scope: { resource: 'demo-api', roles: ['reader'] } }],
          alert_channels: breakGlass.alert_channels,
        },
      },
    });
    try {
      assert.equal((await h.api(null, 'GET', '/healthz')).status, 200);
      const ready = await h.api(null, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      const checks = ready.body.checks as Record<string, string>;
      assert.match(checks.policies ?? '', /failed to load/);
      assert.match(checks.identity_providers ?? '', /failed to load/);
      assert.equal(checks.break_glass, 'ok (break-glass-only mode)');
      assert.deepEqual((await h.api(null, 'GET', '/api/v1/auth/providers')).body.providers ?? [], []);
      const loaded = (await h.portcullis.store.auditLog.read(0, 100)).find((e) => e.type === 'config.loaded');
      assert.equal(loaded?.severity, 'high');

      const c = await enrol(h);
      const { id } = await initiateActivation(h, account, c.alice as TestCustodian, {
        reason: 'policy deploy broke everything',
        incident: 'INC-8',
        duration_minutes: 5,
      });
      assert.equal(await confirmActivation(h, id, c.bob as TestCustodian), 'active');
    } finally {
      await h.close();
      rmSync(broken, { force: true });
    }
  });
});
