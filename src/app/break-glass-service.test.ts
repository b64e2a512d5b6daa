/**
 * The break-glass service over a real store on both dialects, with a manual clock: the whole
 * lifecycle, every refusal (stable code, audited, nothing half-done), guessing limits and sealed
 * mode. HTTP and CLI are covered by break-glass-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { beforeEach, it } from 'node:test';
import {
  enrolCustodians,
  lightPassphraseParameters,
  type TestCustodian,
} from '../../test-support/break-glass-fixtures.js';
import { forEachDialect } from '../../test-support/dialects.js';
import { SoftAuthenticator } from '../../test-support/soft-authenticator.js';
import * as bg from '../break-glass/activation.js';
import { LoggingAlertDispatcher } from '../break-glass/logging-alert-dispatcher.js';
import type { BreakGlassAlert } from '../break-glass/ports.js';
import { SecurityKeyCeremonies, webauthnConfigSchema, webauthnSettings } from '../break-glass/webauthn.js';
import type { BreakGlassSettings, ConfiguredEmergencyAccount } from '../config/break-glass-config.js';
import { ManualClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { IdentityLinks } from '../core/identity-links.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition } from '../core/resource.js';
import { JweSecretBox } from '../crypto/secret-box.js';
import { PrometheusMetrics } from '../observability/metrics.js';
import { DenyAllPolicyEngine } from '../policy/deny-all-policy-engine.js';
import { ProvisionerRegistry } from '../provisioners/provisioner-registry.js';
import { TokenProvisioner } from '../provisioners/token-provisioner.js';
import { SigningKeyStore } from '../tokens/key-store.js';
import { TokenService } from '../tokens/token-service.js';
import { AccessService } from './access-service.js';
import { BreakGlassAdmin } from './break-glass-admin.js';
import { BreakGlassService, type CustodianProof, emergencyPrincipalId } from './break-glass-service.js';
import type { ProvisionContext, ProvisionResult, Store } from './ports.js';

const resource: ResourceDefinition = {
  id: 'ops-api',
  kind: 'token',
  description: '',
  sensitivity: 'critical',
  labels: {},
  owners: [],
  roles: new Map([
    ['reader', { name: 'reader', description: '', grants: ['ops:read'] }],
    ['operator', { name: 'operator', description: '', grants: ['ops:write'] }],
    ['root', { name: 'root', description: '', grants: ['ops:*'] }],
  ]),
};

const account: ConfiguredEmergencyAccount = {
  id: 'ops-emergency',
  scope: { resourceId: 'ops-api', roles: ['reader', 'operator'] },
  maxDurationMinutes: 60,
  custodians: ['alice', 'bob', 'carol'],
  quorum: 2,
  activationWindowMinutes: 10,
  alertChannels: ['ops'],
  sealed: null,
  drillIntervalSeconds: 86_400,
  custodianPrincipals: { bob: 'demo:bob' },
};
const sealedAccount: ConfiguredEmergencyAccount = {
  ...account,
  id: 'vault-emergency',
  sealed: { threshold: 2, shares: 3 },
  custodianPrincipals: {},
};
const settings: BreakGlassSettings = {
  accounts: [account, sealedAccount],
  drillIntervalSeconds: 86_400,
  drillAccessSeconds: 30,
  reviewerGroups: ['security'],
  alertChannels: [],
  webauthn: { rp_name: 'Portcullis break-glass', allow_synced_passkeys: false },
};

/** The token provisioner, refusing like a target system while `refusal` is set. */
class RefusingTokenProvisioner extends TokenProvisioner {
  refusal: string | null = null;

  override async apply(context: ProvisionContext): Promise<ProvisionResult> {
    if (this.refusal) throw new PortcullisError('provisioning_failed', this.refusal);
    return super.apply(context);
  }
}

const here = (ip: string) => ({ sourceIp: ip, userAgent: 'test', channel: 'api' });
const person = (id: string, groups: string[]): Principal => ({
  id,
  idp: 'demo',
  subject: id,
  displayName: id,
  email: null,
  groups,
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<PortcullisError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PortcullisError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

forEachDialect('break-glass service', (ctx) => {
  let clock: ManualClock;
  let store: Store;
  let service: BreakGlassService;
  let access: AccessService;
  let admin: BreakGlassAdmin;
  let alerts: BreakGlassAlert[];
  let c: Record<string, TestCustodian>;
  let boxForTests: JweSecretBox;
  let target: RefusingTokenProvisioner;

  /** An initiation as `custodianId` from `ip` with a wrong passphrase and TOTP code. */
  const wrongCredentials = (custodianId: string, ip: string) =>
    service.initiate(
      {
        accountId: account.id,
        proof: { custodianId, passphrase: 'guess guess guess', totp: '111111' },
        reason: 'r',
        incident: 'i',
        durationMinutes: 5,
      },
      here(ip),
    );

  /** An initiation from `ip` for an account that does not exist. */
  const madeUpAccount = (accountId: string, ip: string) =>
    service.initiate(
      {
        accountId,
        proof: { custodianId: 'x', passphrase: 'y', totp: '000000' },
        reason: 'r',
        incident: 'i',
        durationMinutes: 5,
      },
      here(ip),
    );

  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    store = ctx.store;
    target = new RefusingTokenProvisioner();
    const box = new JweSecretBox(new Uint8Array(randomBytes(32)));
    const keys = new SigningKeyStore(store.keys, box.withPurpose('signing-keys'), {
      longestTokenLifetimeSeconds: 3600,
      clock,
    });
    await keys.ensureActiveKey('token', clock.now());
    const tokens = new TokenService({
      keys,
      issuer: 'http://portcullis.test',
      audience: 'portcullis',
      accessTokenTtlSeconds: 900,
      sessionTtlSeconds: 3600,
    });
    access = new AccessService({
      store,
      policy: new DenyAllPolicyEngine('not used by break-glass'),
      provisioners: new ProvisionerRegistry([target]),
      resources: new Map([[resource.id, resource]]),
      secrets: box.withPurpose('grant-credentials'),
      tokens: { issueAccessToken: (input) => tokens.issueAccessToken({ ...input, scopes: [] }) },
      metrics: new PrometheusMetrics(store, { defaultMetrics: false }),
      clock,
      newId: randomUUID,
      localTime: () => ({ hour: 12, weekday: 'mon' }),
      adminGroups: ['admins'],
      accessTokenTtlSeconds: 900,
      pendingTtlSeconds: 86_400,
      identityLinks: IdentityLinks.none,
      gatewayOnlyEndpoint: () => undefined,
    });
    alerts = [];
    const totpSecrets = box.withPurpose('break-glass-totp');
    boxForTests = totpSecrets;
    service = new BreakGlassService({
      store,
      access,
      settings,
      totpSecrets,
      alerts: new LoggingAlertDispatcher({
        warn: (fields) => alerts.push((fields as { breakGlassAlert: BreakGlassAlert }).breakGlassAlert),
      }),
      clock,
      newId: randomUUID,
      adminGroups: ['admins'],
    });
    admin = new BreakGlassAdmin({
      store,
      settings,
      totpSecrets,
      clock,
      passphraseParameters: lightPassphraseParameters,
    });
    c = await enrolCustodians(store, settings, totpSecrets, clock, account.id, ['alice', 'bob', 'carol']);
  });

  const start = async (overrides: Partial<Parameters<BreakGlassService['initiate']>[0]> = {}) =>
    service.initiate(
      {
        accountId: account.id,
        proof: await (c.alice as TestCustodian).proof(),
        reason: 'database on fire',
        incident: 'INC-42',
        durationMinutes: 30,
        ...overrides,
      },
      here('10.0.0.1'),
    );

  const auditTypes = async () => (await store.auditLog.read(0, 10_000)).map((e) => e.type);

  it('initiate, confirm, grants through the normal provisioning, expiry, review, rotation', async () => {
    const { activation, handle } = await start();
    assert.equal(activation.state, 'awaiting_quorum');
    assert.ok(handle.length >= 40);
    const active = await service.confirm(
      activation.id,
      undefined,
      await (c.bob as TestCustodian).proof(),
      here('10.0.0.2'),
    );
    assert.equal(active.state, 'active');
    assert.equal(active.expiresAt, (active.activatedAt as number) + 30 * 60_000);
    const stored = await store.breakGlass.getActivation(activation.id);
    assert.equal(stored?.requestIds.length, 2);
    for (const requestId of stored?.requestIds ?? []) {
      const request = await store.requests.get(requestId);
      assert.equal(request?.state, 'active');
      assert.equal(request?.requesterId, `break-glass:ops-emergency:alice:${activation.id}`);
      assert.ok((request?.expiresAt as number) <= (active.expiresAt as number));
      assert.equal((await store.grants.getByRequest(requestId))?.status, 'active');
    }
    const access = await service.credentials(activation.id, handle, here('10.0.0.1'));
    assert.deepEqual(access.map((g) => g.role).sort(), ['operator', 'reader']);
    assert.ok(access.every((g) => typeof g.token === 'string'));
    await rejectsWith(service.credentials(activation.id, 'x'.repeat(43), here('10.0.0.9')), 'not_found');

    clock.advance(30 * 60_000);
    await access_expire();
    await service.tick();
    const ended = (await store.breakGlass.getActivation(activation.id))?.activation;
    assert.equal(ended?.state, 'ended');
    assert.equal(ended?.endReason, 'expired');
    for (const requestId of stored?.requestIds ?? [])
      assert.equal((await store.grants.getByRequest(requestId))?.status, 'revoked');

    // Review: never a participant (bob is tied to demo:bob), only admins/reviewers.
    await rejectsWith(
      service.review(activation.id, person('demo:bob', ['admins']), 'ok', here('10.0.0.5')),
      'self_review',
    );
    await rejectsWith(
      service.review(activation.id, person('demo:erin', ['engineering']), 'ok', here('10.0.0.5')),
      'forbidden',
    );
    const reviewed = await service.review(
      activation.id,
      person('demo:dave', ['security']),
      'justified',
      here('10.0.0.5'),
    );
    assert.equal(reviewed.state, 'reviewed');
    assert.equal(reviewed.review?.reviewerId, 'demo:dave');

    assert.equal((await service.overview())[0]?.rotationOwed, 1);
    const rotated = await admin.rotate(account.id, 'operator:test');
    assert.deepEqual(rotated.rotatedActivations, [activation.id]);
    assert.equal(rotated.totp.length, 3);
    assert.equal((await service.overview())[0]?.rotationOwed, 0);
    // The old TOTP secret no longer works after rotation.
    await rejectsWith(start(), 'break_glass_auth_failed');

    const types = await auditTypes();
    for (const t of [
      'break_glass.initiated',
      'break_glass.confirmed',
      'break_glass.activated',
      'grant.activated',
      'break_glass.credentials_shown',
      'grant.expired',
      'break_glass.ended',
      'break_glass.reviewed',
      'break_glass.rotated',
    ])
      assert.ok(types.includes(t as never), `audit has ${t}`);
    const bgEvents = (await store.auditLog.read(0, 10_000)).filter((e) => e.type.startsWith('break_glass.'));
    assert.ok(bgEvents.every((e) => e.severity === 'high'));
    // The grants' own events name the activation through their emergency principal.
    const grantEvents = (await store.auditLog.read(0, 10_000)).filter((e) =>
      ['token.issued', 'grant.activated'].includes(e.type),
    );
    assert.ok(grantEvents.some((e) => e.type === 'token.issued'));
    assert.ok(grantEvents.every((e) => JSON.stringify(e).includes(activation.id)));
    assert.deepEqual(
      [...new Set(alerts.map((a) => a.kind))].sort(),
      ['activated', 'confirmed', 'drill_overdue', 'ended', 'initiated', 'refused', 'reviewed'].sort(),
    );
    // Never drilled: flagged once, not on every pass.
    assert.equal(alerts.filter((a) => a.kind === 'drill_overdue' && a.accountId === account.id).length, 1);
    assert.ok(alerts.every((a) => !JSON.stringify(a).includes((c.alice as TestCustodian).passphrase)));

    const evidence = await admin.evidence(activation.id);
    assert.ok(evidence.auditEvents.some((e) => e.type === 'grant.revocation_completed'));
    assert.ok(evidence.auditEvents.some((e) => e.type === 'break_glass.reviewed'));
  });

  async function access_expire() {
    await access.expireDue();
  }

  it('refuses bad input with stable codes, audits each refusal, and leaves nothing half-done', async () => {
    const refusalsBefore = (await auditTypes()).filter((t) => t === 'break_glass.refused').length;
    const alice = c.alice as TestCustodian;
    const wrongPass: CustodianProof = {
      custodianId: 'alice',
      passphrase: 'not the passphrase at all',
      totp: await alice.code(),
    };
    await rejectsWith(
      service.initiate(
        { accountId: account.id, proof: wrongPass, reason: 'r', incident: 'i', durationMinutes: 5 },
        here('10.1.0.1'),
      ),
      'break_glass_auth_failed',
    );
    const wrongCode: CustodianProof = { custodianId: 'alice', passphrase: alice.passphrase, totp: '000000' };
    await rejectsWith(
      service.initiate(
        { accountId: account.id, proof: wrongCode, reason: 'r', incident: 'i', durationMinutes: 5 },
        here('10.1.0.2'),
      ),
      'break_glass_auth_failed',
    );
    const ok = await start();
    const replay: CustodianProof = {
      custodianId: 'alice',
      passphrase: alice.passphrase,
      totp: await alice.replayedCode(),
    };
    await rejectsWith(
      service.initiate(
        { accountId: account.id, proof: replay, reason: 'r', incident: 'i', durationMinutes: 5 },
        here('10.1.0.3'),
      ),
      'break_glass_auth_failed',
    );
    const unknownCustodian: CustodianProof = {
      custodianId: 'mallory',
      passphrase: 'whatever whatever',
      totp: '123456',
    };
    await rejectsWith(
      service.initiate(
        { accountId: account.id, proof: unknownCustodian, reason: 'r', incident: 'i', durationMinutes: 5 },
        here('10.1.0.4'),
      ),
      'break_glass_auth_failed',
    );
    clock.advance(30_000);
    await rejectsWith(start({ accountId: 'no-such-account' }), 'unknown_emergency_account');
    clock.advance(30_000);
    await rejectsWith(start({ roles: ['root'] }), 'scope_exceeded');
    clock.advance(30_000);
    await rejectsWith(start({ resourceId: 'other' }), 'scope_exceeded');
    clock.advance(30_000);
    await rejectsWith(start({ durationMinutes: 61 }), 'invalid_duration');
    clock.advance(30_000);
    await rejectsWith(start({ reason: '  ' }), 'validation_failed');
    // The initiator cannot confirm; one person counts once.
    await rejectsWith(
      service.confirm(ok.activation.id, undefined, await alice.proof(), here('10.0.0.1')),
      'self_confirmation',
    );
    // After the window: the attempt ends and the confirmation is refused.
    clock.advance(10 * 60_000);
    await rejectsWith(
      service.confirm(ok.activation.id, undefined, await (c.bob as TestCustodian).proof(), here('10.0.0.2')),
      'confirmation_window_closed',
    );
    assert.equal((await store.breakGlass.getActivation(ok.activation.id))?.activation.state, 'expired');
    // Nothing half-done: only the one valid initiation was stored, and it holds no grants.
    const all = await store.breakGlass.listActivations({});
    assert.equal(all.length, 1);
    assert.deepEqual(all[0]?.requestIds, []);
    assert.deepEqual(await store.requests.list({}), []);
    const refusals = (await auditTypes()).filter((t) => t === 'break_glass.refused').length - refusalsBefore;
    assert.equal(refusals, 11);
    assert.ok((await auditTypes()).includes('break_glass.expired'));
  });

  it('summarises a flood of refusals from one source in the audit log; other sources stay itemised', async () => {
    const refused = async () =>
      (await store.auditLog.read(0, 100_000)).filter(
        (e) => e.type === 'break_glass.refused' && e.sourceIp === '10.9.9.9',
      );
    const before = (await refused()).length;
    for (let i = 0; i < 50; i++) {
      await rejectsWith(madeUpAccount(`no-such-account-${i}`, '10.9.9.9'), 'unknown_emergency_account');
    }
    const written = (await refused()).slice(before);
    // 30 one by one, then one marker; the other 19 refusals are refused all the same.
    assert.equal(written.length, 31);
    assert.equal(written.at(-1)?.data?.suppressing, true);
    await rejectsWith(start({ accountId: 'no-such-account' }), 'unknown_emergency_account');
    const fromElsewhere = (await store.auditLog.read(0, 100_000)).filter(
      (e) => e.type === 'break_glass.refused' && e.sourceIp === '10.0.0.1',
    );
    assert.equal(fromElsewhere.at(-1)?.data?.code, 'unknown_emergency_account');
    assert.equal(fromElsewhere.at(-1)?.data?.suppressing, undefined);
  });

  it('a flood of refusals for made-up accounts never silences guesses and lockouts on a real account', async () => {
    const source = '10.9.8.7';
    const fromSource = async () =>
      (await store.auditLog.read(0, 100_000)).filter((e) => e.sourceIp === source);
    for (let i = 0; i < 31; i++)
      await rejectsWith(madeUpAccount(`made-up-${i}`, source), 'unknown_emergency_account');
    assert.equal((await fromSource()).at(-1)?.data?.suppressing, true, 'the made-up accounts are summarised');
    const before = (await fromSource()).length;
    const alertsBefore = alerts.length;
    const guess = () => wrongCredentials('alice', source);
    for (let i = 0; i < 3; i++) await rejectsWith(guess(), 'break_glass_auth_failed');
    for (let i = 0; i < 3; i++) await rejectsWith(guess(), 'break_glass_locked');
    const written = (await fromSource()).slice(before);
    assert.deepEqual(
      written.map((e) => e.type),
      [...Array(3).fill('break_glass.refused'), ...Array(3).fill('break_glass.locked_out')],
    );
    assert.ok(written.every((e) => e.data?.accountId === account.id && e.data?.suppressing === undefined));
    const raised = alerts.slice(alertsBefore);
    assert.equal(raised.filter((a) => a.kind === 'refused' && a.accountId === account.id).length, 3);
    assert.equal(raised.filter((a) => a.kind === 'locked_out' && a.accountId === account.id).length, 3);
    // Made-up accounts from that source stay summarised.
    await rejectsWith(start({ accountId: 'made-up-again' }), 'unknown_emergency_account');
    await rejectsWith(madeUpAccount('made-up-again', source), 'unknown_emergency_account');
    assert.equal((await fromSource()).length, before + 6);
  });

  it('drills: one record per activation, dated at its end; only a passed drill clears "overdue"', async () => {
    const drillRun = async (clientPassed: boolean) => {
      const { activation, handle } = await start({ drill: true, durationMinutes: 1 });
      await service.confirm(
        activation.id,
        undefined,
        await (c.bob as TestCustodian).proof(),
        here('10.0.0.2'),
      );
      clock.advance(settings.drillAccessSeconds * 1000);
      await access.expireDue();
      await service.tick();
      const ended = (await store.breakGlass.getActivation(activation.id))?.activation;
      assert.equal(ended?.state, 'ended');
      clock.advance(5 * 60_000); // the report is posted some minutes after the drill ended
      const checks = [{ name: 'client check', passed: clientPassed, detail: 'd' }];
      const recorded = await service.recordDrill(activation.id, handle, checks, here('10.0.0.1'));
      assert.equal(recorded.passed, clientPassed);
      return { id: activation.id, handle, endedAt: ended?.endedAt as number, checks };
    };
    const overviewOf = async () => (await service.overview()).find((a) => a.accountId === account.id);
    assert.equal((await overviewOf())?.drillOverdue, true, 'never drilled');

    // A failed drill is recorded but does not clear "overdue".
    const failed = await drillRun(false);
    let o = await overviewOf();
    assert.equal(o?.lastDrillAt, failed.endedAt, 'dated when the activation ended');
    assert.equal(o?.lastDrillPassed, false);
    assert.equal(o?.lastPassedDrillAt, null);
    assert.equal(o?.drillOverdue, true);

    // A passed drill does; posting its report again is refused (audited) and changes nothing.
    clock.advance(60_000);
    const passed = await drillRun(true);
    o = await overviewOf();
    assert.equal(o?.lastPassedDrillAt, passed.endedAt);
    assert.equal(o?.drillOverdue, false);
    clock.advance(account.drillIntervalSeconds * 1000 + 1000);
    assert.equal((await overviewOf())?.drillOverdue, true);
    await rejectsWith(
      service.recordDrill(passed.id, passed.handle, passed.checks, here('10.0.0.1')),
      'drill_already_recorded',
    );
    await rejectsWith(
      service.recordDrill(
        failed.id,
        failed.handle,
        [{ name: 'redo', passed: true, detail: 'd' }],
        here('10.0.0.1'),
      ),
      'drill_already_recorded',
    );
    o = await overviewOf();
    assert.equal(o?.lastPassedDrillAt, passed.endedAt);
    assert.equal(o?.drillOverdue, true, 'a repost does not freshen the drill');
    assert.equal((await store.breakGlass.listDrills(account.id, 10)).length, 2);
    const refusals = (await store.auditLog.read(0, 10_000)).filter(
      (e) => e.type === 'break_glass.refused' && e.data?.code === 'drill_already_recorded',
    );
    assert.equal(refusals.length, 2);
    // The storage refuses a second record of one activation too (the unique index).
    await rejectsWith(
      store.breakGlass.insertDrill({
        id: randomUUID(),
        accountId: account.id,
        activationId: passed.id,
        at: clock.now(),
        passed: true,
        report: '{}',
      }),
      'drill_already_recorded',
    );
  });

  it('cancels: by the handle before the quorum, by another custodian, and ends access once active', async () => {
    const first = await start();
    await rejectsWith(
      service.cancel(first.activation.id, { handle: 'y'.repeat(43) }, here('10.4.0.9')),
      'not_found',
    );
    const cancelled = await service.cancel(first.activation.id, { handle: first.handle }, here('10.0.0.1'));
    assert.equal(cancelled.state, 'cancelled');
    await rejectsWith(
      service.confirm(
        first.activation.id,
        undefined,
        await (c.bob as TestCustodian).proof(),
        here('10.0.0.2'),
      ),
      'invalid_transition',
    );
    clock.advance(60_000);
    const second = await start();
    const byCarol = await service.cancel(
      second.activation.id,
      { proof: await (c.carol as TestCustodian).proof() },
      here('10.0.0.3'),
    );
    assert.equal(byCarol.state, 'cancelled');
    assert.equal(byCarol.timeline.at(-1)?.actorId, 'carol');
    clock.advance(60_000);
    const third = await start();
    await service.confirm(
      third.activation.id,
      undefined,
      await (c.bob as TestCustodian).proof(),
      here('10.0.0.2'),
    );
    const ended = await service.cancel(third.activation.id, { handle: third.handle }, here('10.0.0.1'));
    assert.equal(ended.state, 'ended');
    assert.equal(ended.endReason, 'ended_by_user');
    const stored = await store.breakGlass.getActivation(third.activation.id);
    for (const requestId of stored?.requestIds ?? [])
      assert.equal((await store.grants.getByRequest(requestId))?.status, 'revoked');
    assert.deepEqual((await store.requests.list({})).length, 2, 'only the active one ever had grants');
    assert.ok(alerts.some((a) => a.kind === 'cancelled'));
  });

  it("a target's refusal: the initiator gets references, the audit log the target's text", async () => {
    // What a target may say: its admin account and address, nothing for the initiator to see.
    target.refusal = 'Could not create login: role "ops_root_admin" at 10.9.8.7 is not permitted to log in';
    const { activation } = await start();
    const error = await rejectsWith(
      service.confirm(activation.id, undefined, await (c.bob as TestCustodian).proof(), here('10.0.0.2')),
      'provisioning_failed',
    );
    assert.doesNotMatch(error.message, /ops_root_admin|10\.9\.8\.7/);
    const references = error.details.references as string[];
    assert.equal(references.length, 2, 'one per role of the scope');
    for (const reference of references) {
      assert.match(reference, /^[0-9a-z]{12}$/);
      assert.ok(error.message.includes(`(reference ${reference})`), error.message);
    }
    const events = await store.auditLog.read(0, 10_000);
    const summary = events.find((e) => e.type === 'break_glass.provisioning_failed');
    assert.deepEqual(summary?.data?.references, references);
    for (const reference of references) {
      const failed = events.find((e) => e.type === 'grant.failed' && e.data?.reference === reference);
      assert.match(String(failed?.data?.error), /role "ops_root_admin" at 10\.9\.8\.7/);
    }
    // The alert channels reach the custodians, the initiator among them: references only.
    assert.ok(alerts.some((a) => a.kind === 'refused' && a.summary.includes(references[0] as string)));
    assert.doesNotMatch(JSON.stringify(alerts), /ops_root_admin|10\.9\.8\.7/);
    assert.equal((await store.breakGlass.getActivation(activation.id))?.activation.state, 'ended');
  });

  it('two confirmations racing: one activation, one set of grants', async () => {
    const { activation } = await start();
    const results = await Promise.allSettled([
      service.confirm(activation.id, undefined, await (c.bob as TestCustodian).proof(), here('10.0.0.2')),
      service.confirm(activation.id, undefined, await (c.carol as TestCustodian).proof(), here('10.0.0.3')),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(
      lost && lost.status === 'rejected' && (lost.reason as PortcullisError).code === 'invalid_transition',
    );
    assert.equal((await store.requests.list({})).length, 2);
    assert.equal((await store.grants.list({})).length, 2);
    assert.equal(
      (await store.auditLog.read(0, 10_000)).filter((e) => e.type === 'break_glass.activated').length,
      1,
    );
  });

  /** The service with security keys for `origin`, its alerts logged to `warn`. */
  const withSecurityKeys = (origin: string, warn: (fields: unknown) => void, adminGroups: string[]) =>
    new BreakGlassService({
      store,
      access,
      settings,
      totpSecrets: boxForTests,
      alerts: new LoggingAlertDispatcher({ warn }),
      clock,
      newId: randomUUID,
      adminGroups,
      securityKeys: new SecurityKeyCeremonies(
        webauthnSettings(webauthnConfigSchema.parse({}), origin),
        store.ephemeral,
        () => clock.now(),
      ),
    });

  it('security keys: enrolled after passphrase + TOTP, then a second factor instead of TOTP', async () => {
    const origin = 'https://portcullis.test';
    const keyed = withSecurityKeys(origin, () => {}, []);
    const alice = c.alice as TestCustodian;
    const key = new SoftAuthenticator(origin);
    const creation = await keyed.securityKeyRegistrationOptions(
      account.id,
      await alice.proof(),
      here('10.5.0.1'),
    );
    const { credentialId } = await keyed.enrolSecurityKey(
      account.id,
      'alice',
      key.create(creation),
      here('10.5.0.1'),
    );
    assert.equal(credentialId, key.id);
    // A second enrolment of the same key is refused.
    clock.advance(30_000);
    const again = await keyed.securityKeyRegistrationOptions(
      account.id,
      await alice.proof(),
      here('10.5.0.1'),
    );
    await rejectsWith(
      keyed.enrolSecurityKey(account.id, 'alice', key.create(again), here('10.5.0.1')),
      'break_glass_auth_failed',
    );

    const sign = async () => key.get(await keyed.securityKeyOptions(account.id, 'alice'));
    const withKey = async (passphrase = alice.passphrase) => ({
      custodianId: 'alice',
      passphrase,
      securityKey: await sign(),
    });
    const { activation } = await keyed.initiate(
      { accountId: account.id, proof: await withKey(), reason: 'r', incident: 'i', durationMinutes: 5 },
      here('10.5.0.1'),
    );
    assert.equal(activation.initiatorId, 'alice');
    // A replayed assertion (its challenge is used up) and a wrong passphrase with a valid key fail alike.
    const used = await sign();
    await keyed.cancel(
      activation.id,
      { proof: { custodianId: 'alice', passphrase: alice.passphrase, securityKey: used } },
      here('10.5.0.1'),
    );
    await rejectsWith(
      keyed.initiate(
        {
          accountId: account.id,
          proof: { custodianId: 'alice', passphrase: alice.passphrase, securityKey: used },
          reason: 'r',
          incident: 'i',
          durationMinutes: 5,
        },
        here('10.5.0.1'),
      ),
      'break_glass_auth_failed',
    );
    await rejectsWith(
      keyed.initiate(
        {
          accountId: account.id,
          proof: await withKey('not the passphrase at all'),
          reason: 'r',
          incident: 'i',
          durationMinutes: 5,
        },
        here('10.5.0.1'),
      ),
      'break_glass_auth_failed',
    );
    // Bob has no key: no options, the generic refusal.
    await rejectsWith(keyed.securityKeyOptions(account.id, 'bob'), 'break_glass_auth_failed');
    assert.ok(
      (await store.auditLog.read(0, 10_000)).some(
        (e) => e.type === 'break_glass.enrolled' && e.data?.securityKey === key.id,
      ),
    );
  });

  it('security keys: every enrolment alerts; admins list and revoke; re-enrolment and rotation delete them', async () => {
    const origin = 'https://portcullis.test';
    const keyed = withSecurityKeys(
      origin,
      (fields) => alerts.push((fields as { breakGlassAlert: BreakGlassAlert }).breakGlassAlert),
      ['admins'],
    );
    const enrolKey = async (custodian: TestCustodian) => {
      const key = new SoftAuthenticator(origin);
      const creation = await keyed.securityKeyRegistrationOptions(
        account.id,
        await custodian.proof(),
        here('10.6.0.1'),
      );
      await keyed.enrolSecurityKey(account.id, custodian.id, key.create(creation), here('10.6.0.1'));
      return key;
    };
    const events = async (type: string) =>
      (await store.auditLog.read(0, 10_000)).filter((e) => e.type === type);
    const adminPerson = person('demo:erin', ['admins']);

    // An enrolment is alerted to the account's channels, naming the custodian, and audited high.
    const aliceKey = await enrolKey(c.alice as TestCustodian);
    const enrolledAlert = alerts.find((a) => a.kind === 'security_key_enrolled');
    assert.equal(enrolledAlert?.accountId, account.id);
    assert.deepEqual(enrolledAlert?.custodians, ['alice']);
    const enrolledEvent = (await events('break_glass.enrolled')).find(
      (e) => e.data?.securityKey === aliceKey.id,
    );
    assert.equal(enrolledEvent?.severity, 'high');
    const bobKey = await enrolKey(c.bob as TestCustodian);
    assert.equal(alerts.filter((a) => a.kind === 'security_key_enrolled').length, 2);

    // Key counts per custodian in the overview.
    const overviewOf = async () => (await keyed.overview()).find((a) => a.accountId === account.id);
    assert.deepEqual((await overviewOf())?.securityKeys, { alice: 1, bob: 1 });

    // Admins only: a reviewer may not list or revoke.
    const reviewer = person('demo:dave', ['security']);
    await rejectsWith(keyed.listSecurityKeys(reviewer, account.id), 'forbidden');
    await rejectsWith(
      keyed.revokeSecurityKey(reviewer, account.id, aliceKey.id, here('10.6.0.9')),
      'forbidden',
    );
    const listed = await keyed.listSecurityKeys(adminPerson, account.id);
    assert.deepEqual(
      listed.map((k) => [k.custodianId, k.credentialId]),
      [
        ['alice', aliceKey.id],
        ['bob', bobKey.id],
      ],
    );

    // Revocation: deleted, audited, alerted; the key no longer signs in.
    const revoked = await keyed.revokeSecurityKey(adminPerson, account.id, aliceKey.id, here('10.6.0.9'));
    assert.equal(revoked.custodianId, 'alice');
    const revokedEvent = (await events('break_glass.security_key_revoked')).at(-1);
    assert.equal(revokedEvent?.actor, 'demo:erin');
    assert.equal(revokedEvent?.severity, 'high');
    assert.deepEqual(revokedEvent?.data, {
      accountId: account.id,
      custodianId: 'alice',
      securityKey: aliceKey.id,
    });
    assert.ok(alerts.some((a) => a.kind === 'security_key_revoked' && a.custodians.includes('alice')));
    await rejectsWith(keyed.securityKeyOptions(account.id, 'alice'), 'break_glass_auth_failed');
    await rejectsWith(
      keyed.revokeSecurityKey(adminPerson, account.id, aliceKey.id, here('10.6.0.9')),
      'not_found',
    );
    await rejectsWith(
      keyed.revokeSecurityKey(adminPerson, sealedAccount.id, bobKey.id, here('10.6.0.9')),
      'not_found',
    );
    assert.deepEqual((await overviewOf())?.securityKeys, { bob: 1 });

    // Re-enrolling bob deletes his keys (and says so in the audit event).
    await admin.enroll(account.id, 'bob', 'bob has a brand new passphrase', 'operator:test');
    await rejectsWith(keyed.securityKeyOptions(account.id, 'bob'), 'break_glass_auth_failed');
    assert.deepEqual((await events('break_glass.enrolled')).at(-1)?.data?.securityKeysRemoved, [bobKey.id]);

    // Rotation deletes every key of the account.
    clock.advance(30_000);
    const carolKey = await enrolKey(c.carol as TestCustodian);
    assert.deepEqual((await overviewOf())?.securityKeys, { carol: 1 });
    const rotated = await admin.rotate(account.id, 'operator:test');
    assert.deepEqual(rotated.securityKeysRemoved, [carolKey.id]);
    assert.deepEqual((await events('break_glass.rotated')).at(-1)?.data?.securityKeysRemoved, [carolKey.id]);
    assert.deepEqual(await keyed.listSecurityKeys(adminPerson, account.id), []);
    assert.deepEqual((await overviewOf())?.securityKeys, {});
  });

  it('after a crash, emergency requests left approved never outlive the activation', async () => {
    // The state a crash between the quorum commit and provisioning leaves behind.
    const crashed = async (id: string, minutes: number) => {
      const started = bg.initiate(
        account,
        'alice',
        { id, reason: 'r', incident: 'i', scope: account.scope, durationMinutes: minutes },
        clock.now(),
      );
      const active = bg.confirm(started, 'bob', clock.now());
      const requestId = randomUUID();
      await store.breakGlass.insertActivation({
        activation: active,
        handleHash: 'h',
        requestIds: [requestId],
      });
      await store.requests.insert({
        id: requestId,
        requesterId: emergencyPrincipalId(active),
        resourceId: resource.id,
        role: 'reader',
        durationSeconds: minutes * 60,
        reason: `[break-glass ${id}] r`,
        ticket: 'i',
        state: 'approved',
        route: {
          requiredApprovals: 1,
          approverGroups: [],
          maxDurationSeconds: minutes * 60,
          autoApprove: false,
          policyId: 'break-glass:x',
        },
        reviews: [],
        createdAt: clock.now(),
        updatedAt: clock.now(),
        activatedAt: null,
        expiresAt: null,
        endedAt: null,
        endReason: null,
        version: 1,
      });
      return { active, requestId };
    };
    const over = await crashed(randomUUID(), 5);
    clock.advance(2 * 60_000);
    const running = await crashed(randomUUID(), 10);
    clock.advance(4 * 60_000); // the first is over, the second has 6 minutes left
    assert.equal(await service.prepareRecovery(), 2);
    await access.recover();
    assert.equal((await store.requests.get(over.requestId))?.state, 'cancelled');
    assert.equal((await store.requests.get(running.requestId))?.state, 'cancelled');
    const replacedBy = (await store.breakGlass.getActivation(running.active.id))?.requestIds[0] as string;
    assert.notEqual(replacedBy, running.requestId);
    const resumed = await store.requests.get(replacedBy);
    assert.equal(resumed?.state, 'active');
    assert.ok((resumed?.expiresAt as number) <= (running.active.expiresAt as number));
    assert.equal(await service.prepareRecovery(), 0);
  });

  it('counts a confirmer once', async () => {
    const three = { ...account, id: 'three', quorum: 3 };
    const box = new JweSecretBox(new Uint8Array(32));
    const s3 = new BreakGlassService({
      store,
      access,
      settings: { ...settings, accounts: [three] },
      totpSecrets: box,
      alerts: new LoggingAlertDispatcher({ warn: () => {} }),
      clock,
      newId: randomUUID,
      adminGroups: [],
    });
    const c3 = await enrolCustodians(store, { ...settings, accounts: [three] }, box, clock, 'three', [
      'alice',
      'bob',
      'carol',
    ]);
    const { activation } = await s3.initiate(
      {
        accountId: 'three',
        proof: await (c3.alice as TestCustodian).proof(),
        reason: 'r',
        incident: 'i',
        durationMinutes: 5,
      },
      here('10.2.0.1'),
    );
    const once = await s3.confirm(
      activation.id,
      undefined,
      await (c3.bob as TestCustodian).proof(),
      here('10.2.0.2'),
    );
    assert.equal(once.state, 'awaiting_quorum');
    await rejectsWith(
      s3.confirm(activation.id, undefined, await (c3.bob as TestCustodian).proof(), here('10.2.0.2')),
      'already_confirmed',
    );
    const done = await s3.confirm(
      activation.id,
      undefined,
      await (c3.carol as TestCustodian).proof(),
      here('10.2.0.3'),
    );
    assert.equal(done.state, 'active');
  });

  it('locks out a guessing source, but an attacker cannot lock out the custodians', async () => {
    const carol = c.carol as TestCustodian;
    const guess = (ip: string, custodianId = 'carol') => wrongCredentials(custodianId, ip);
    for (let i = 0; i < 3; i++) await rejectsWith(guess('203.0.113.66'), 'break_glass_auth_failed');
    const locked = await rejectsWith(guess('203.0.113.66'), 'break_glass_locked');
    assert.ok((locked.details.retryAfterSeconds as number) >= 1);
    // The same source cannot spray another custodian either.
    await rejectsWith(guess('203.0.113.66', 'alice'), 'break_glass_locked');
    assert.ok((await auditTypes()).includes('break_glass.locked_out'));
    assert.ok(alerts.some((a) => a.kind === 'locked_out'));
    // Carol at her own workstation is not locked out by the attacker.
    const mine = await service.initiate(
      { accountId: account.id, proof: await carol.proof(), reason: 'r', incident: 'i', durationMinutes: 5 },
      here('10.0.0.3'),
    );
    assert.equal(mine.activation.initiatorId, 'carol');
    // A botnet empties the account bucket: new places wait, but a known (custodian, place) pair does not.
    for (let i = 0; i < 25; i++) await guess(`198.51.100.${i}`).catch(() => {});
    await rejectsWith(guess('198.51.100.200'), 'break_glass_locked');
    const again = await service
      .confirm(mine.activation.id, undefined, await (c.bob as TestCustodian).proof(), here('10.0.0.2'))
      .catch((e: unknown) => e);
    // Bob never succeeded from 10.0.0.2 in this test: he waits for a token (seconds), he is not locked out.
    assert.ok(again instanceof PortcullisError && again.code === 'break_glass_locked');
    clock.advance(30_000);
    const confirmed = await service.confirm(
      mine.activation.id,
      undefined,
      await (c.bob as TestCustodian).proof(),
      here('10.0.0.2'),
    );
    assert.equal(confirmed.state, 'active');
    // Carol, now known at 10.0.0.3, is exempt from the empty bucket.
    for (let i = 0; i < 25; i++) await guess(`198.51.100.${i + 30}`).catch(() => {});
    const exempt = await service.initiate(
      { accountId: account.id, proof: await carol.proof(), reason: 'r2', incident: 'i2', durationMinutes: 5 },
      here('10.0.0.3'),
    );
    assert.equal(exempt.activation.state, 'awaiting_quorum');
  });

  it('others failing at a shared address do not lock out a custodian who succeeded from there', async () => {
    const shared = '192.0.2.77';
    const carol = c.carol as TestCustodian;
    const first = await service.initiate(
      { accountId: account.id, proof: await carol.proof(), reason: 'r', incident: 'i', durationMinutes: 5 },
      here(shared),
    );
    await service.cancel(first.activation.id, { handle: first.handle }, here(shared));
    // Someone else behind the same address fails as other custodians until the source is blocked.
    const guess = (custodianId: string) => wrongCredentials(custodianId, shared);
    for (const who of ['alice', 'bob', 'mallory']) await rejectsWith(guess(who), 'break_glass_auth_failed');
    const blocked = await rejectsWith(guess('dave'), 'break_glass_locked');
    assert.ok((blocked.details.retryAfterSeconds as number) >= 1);
    // Bob never succeeded from there: he waits like the others.
    await rejectsWith(
      service.initiate(
        {
          accountId: account.id,
          proof: await (c.bob as TestCustodian).proof(),
          reason: 'r',
          incident: 'i',
          durationMinutes: 5,
        },
        here(shared),
      ),
      'break_glass_locked',
    );
    // Carol, known at that address, is not blocked by their failures.
    const again = await service.initiate(
      { accountId: account.id, proof: await carol.proof(), reason: 'r2', incident: 'i2', durationMinutes: 5 },
      here(shared),
    );
    assert.equal(again.activation.initiatorId, 'carol');
  });

  it('IPv6 guesses count by /64: twelve addresses of one /64 are one source', async () => {
    const guess = (ip: string, custodianId: string) => wrongCredentials(custodianId, ip);
    const outcomes: string[] = [];
    for (let i = 1; i <= 12; i++) {
      const who = ['alice', 'bob', 'carol'][i % 3] as string;
      const error = await guess(`2001:db8::${i.toString(16)}`, who).catch((e: PortcullisError) => e);
      outcomes.push((error as PortcullisError).code);
    }
    assert.deepEqual(outcomes.slice(0, 3), Array(3).fill('break_glass_auth_failed'));
    assert.deepEqual(outcomes.slice(3), Array(9).fill('break_glass_locked'));
    // An IPv4-mapped address is its IPv4 address.
    for (let i = 0; i < 3; i++) await rejectsWith(guess('192.0.2.99', 'alice'), 'break_glass_auth_failed');
    await rejectsWith(guess('::ffff:192.0.2.99', 'bob'), 'break_glass_locked');
    // The audit log keeps each full address.
    const locked = (await store.auditLog.read(0, 10_000)).filter((e) => e.type === 'break_glass.locked_out');
    assert.ok(locked.some((e) => e.sourceIp === '2001:db8::c'));
    assert.ok(locked.some((e) => e.sourceIp === '::ffff:192.0.2.99'));
  });

  it('sealed mode: k distinct shares of this seal, each refusal with its own code', async () => {
    const box = new JweSecretBox(new Uint8Array(32).fill(7));
    const sealedService = new BreakGlassService({
      store,
      access,
      settings,
      totpSecrets: box,
      alerts: new LoggingAlertDispatcher({ warn: () => {} }),
      clock,
      newId: randomUUID,
      adminGroups: [],
    });
    const sealAdmin = new BreakGlassAdmin({
      store,
      settings,
      totpSecrets: box,
      clock,
      passphraseParameters: lightPassphraseParameters,
    });
    const cs = await enrolCustodians(store, settings, box, clock, sealedAccount.id, ['alice', 'bob']);
    const alice = cs.alice as TestCustodian;
    const attempt = async (shares: string[]) =>
      sealedService.initiate(
        {
          accountId: sealedAccount.id,
          proof: await alice.proof(),
          shares,
          reason: 'r',
          incident: 'i',
          durationMinutes: 5,
        },
        here('10.3.0.1'),
      );
    await rejectsWith(attempt([]), 'break_glass_not_enrolled');
    const { shares } = await sealAdmin.seal(sealedAccount.id, 'operator:test');
    assert.equal(shares.length, 3);
    const other = await sealAdmin.seal(sealedAccount.id, 'operator:test', { threshold: 2, shares: 3 });
    clock.advance(90_000);
    await rejectsWith(attempt([other.shares[0] as string]), 'shares_insufficient');
    await rejectsWith(attempt([shares[0] as string, shares[1] as string]), 'share_wrong_account'); // an older seal
    clock.advance(90_000);
    await rejectsWith(attempt([other.shares[0] as string, other.shares[0] as string]), 'shares_duplicated');
    const foreign = (await sealAdmin.seal(sealedAccount.id, 'operator:test')).shares;
    clock.advance(90_000);
    await rejectsWith(attempt([other.shares[1] as string, other.shares[2] as string]), 'share_wrong_account');
    const ok = await attempt([foreign[0] as string, foreign[2] as string]);
    assert.equal(ok.activation.state, 'awaiting_quorum');
    assert.equal((await store.breakGlass.getSeal(sealedAccount.id))?.sealId !== undefined, true);
  });
});
