/**
 * Break-glass operations an operator runs on the server host, straight against the storage (like
 * `keys rotate`): enrol a custodian, seal an account into shares, rotate after use, and build the
 * evidence of an activation. Secrets are returned once to the caller to print; only verifiers,
 * argon2id hashes and KEK-sealed TOTP secrets are stored. Every change is audited in its transaction.
 */

import type { Activation } from '../break-glass/activation.js';
import * as bg from '../break-glass/activation.js';
import {
  enrolTotp,
  hashPassphrase,
  type PassphraseHashParameters,
  productionPassphraseParameters,
} from '../break-glass/credentials.js';
import { drillOverdue } from '../break-glass/drill.js';
import { createSeal } from '../break-glass/sealed-shares.js';
import type { BreakGlassSettings, ConfiguredEmergencyAccount } from '../config/break-glass-config.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { DrillRecord } from './break-glass-ports.js';
import type { AuditRecord, SecretBox, Store } from './ports.js';

export interface BreakGlassAdminDeps {
  readonly store: Store;
  readonly settings: BreakGlassSettings;
  readonly totpSecrets: SecretBox;
  readonly clock: Clock;
  readonly passphraseParameters?: PassphraseHashParameters;
}

/** Everything known about one activation, for `break-glass report`. */
export interface ActivationEvidence {
  readonly generatedAt: string;
  readonly activation: Activation;
  readonly requestIds: readonly string[];
  readonly grants: readonly {
    readonly grantId: string;
    readonly role: string;
    readonly status: string;
    readonly notBefore: string;
    readonly expiresAt: string;
    readonly revokedAt: string | null;
    readonly artefacts: Readonly<Record<string, unknown>>;
  }[];
  readonly auditEvents: readonly AuditRecord[];
  readonly awaitingReview: boolean;
  readonly rotationOwed: boolean;
  readonly drills: readonly DrillRecord[];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class BreakGlassAdmin {
  readonly #deps: BreakGlassAdminDeps;

  constructor(deps: BreakGlassAdminDeps) {
    this.#deps = deps;
  }

  account(accountId: string): ConfiguredEmergencyAccount {
    return bg.findAccount(this.#deps.settings.accounts, accountId) as ConfiguredEmergencyAccount;
  }

  /**
   * Enrols (or re-enrols) a custodian: argon2id hash of the passphrase and a new TOTP secret,
   * sealed with the KEK. A re-enrolment also deletes the custodian's security keys (a key someone
   * else enrolled must not survive it); they enrol theirs again. Returns the otpauth:// URI, to
   * show once.
   */
  async enroll(
    accountId: string,
    custodianId: string,
    passphrase: string,
    operator: string,
  ): Promise<{ uri: string }> {
    const account = this.account(accountId);
    if (!account.custodians.includes(custodianId)) {
      throw new PortcullisError('not_a_custodian', `"${custodianId}" is not a custodian of "${accountId}"`, {
        custodians: account.custodians,
      });
    }
    const passphraseHash = await hashPassphrase(
      passphrase,
      this.#deps.passphraseParameters ?? productionPassphraseParameters,
    );
    const { secret, uri } = enrolTotp(`${accountId}:${custodianId}`);
    const sealedTotpSecret = await this.#deps.totpSecrets.seal(secret);
    const now = this.#deps.clock.now();
    const existing = await this.#deps.store.breakGlass.getCustodian(accountId, custodianId);
    await this.#deps.store.transaction(async (tx) => {
      await tx.breakGlass.upsertCustodian({
        accountId,
        custodianId,
        passphraseHash,
        sealedTotpSecret,
        enrolledAt: now,
        rotatedAt: null,
      });
      const removed = await tx.breakGlass.deleteSecurityKeys(accountId, { custodianId });
      await tx.audit.append(
        {
          type: 'break_glass.enrolled',
          actor: operator,
          severity: 'high',
          data: {
            accountId,
            custodianId,
            reenrolled: existing !== undefined,
            securityKeysRemoved: removed.map((k) => k.credentialId),
          },
        },
        now,
      );
    });
    return { uri };
  }

  /** Seals a sealed-mode account: n printed shares (shown once), k of which open it. */
  async seal(accountId: string, operator: string, override?: { threshold: number; shares: number }) {
    const account = this.account(accountId);
    const shape = override ?? account.sealed;
    if (!shape) {
      throw new PortcullisError('validation_failed', `"${accountId}" is not configured as sealed`, {
        issues: [
          { path: `break_glass.accounts.${accountId}.sealed`, message: 'add sealed: {threshold, shares}' },
        ],
      });
    }
    const now = this.#deps.clock.now();
    const { seal, shares } = await createSeal(accountId, shape.threshold, shape.shares, now);
    await this.#deps.store.transaction(async (tx) => {
      await tx.breakGlass.putSeal(seal);
      await tx.audit.append(
        {
          type: 'break_glass.sealed',
          actor: operator,
          severity: 'high',
          data: { accountId, sealId: seal.sealId, threshold: seal.threshold, shares: seal.shareCount },
        },
        now,
      );
    });
    return { sealId: seal.sealId, threshold: seal.threshold, shares };
  }

  /**
   * Rotates the account's emergency credentials after use: a new TOTP secret for every enrolled
   * custodian (each must re-add it to their app) and, if sealed, a new seal with new shares (old
   * shares are then refused as `share_wrong_account`). Every security key of the account is
   * deleted: custodians enrol theirs again. Downstream passwords are per grant and die with it.
   * Clears the rotation owed by every activation of the account that was used.
   */
  async rotate(accountId: string, operator: string) {
    const account = this.account(accountId);
    const now = this.#deps.clock.now();
    const custodians = await this.#deps.store.breakGlass.listCustodians(accountId);
    const totp: { custodianId: string; uri: string }[] = [];
    const replaced: {
      custodianId: string;
      sealedTotpSecret: string;
      passphraseHash: string;
      enrolledAt: number;
    }[] = [];
    for (const c of custodians) {
      const { secret, uri } = enrolTotp(`${accountId}:${c.custodianId}`);
      replaced.push({ ...c, sealedTotpSecret: await this.#deps.totpSecrets.seal(secret) });
      totp.push({ custodianId: c.custodianId, uri });
    }
    const sealed = account.sealed
      ? await createSeal(accountId, account.sealed.threshold, account.sealed.shares, now)
      : null;
    const owed = (await this.#deps.store.breakGlass.listActivations({ accountId, limit: 1000 })).filter((s) =>
      bg.requiresRotation(s.activation),
    );
    const rotatedActivations: string[] = [];
    const securityKeysRemoved: string[] = [];
    await this.#deps.store.transaction(async (tx) => {
      for (const c of replaced) await tx.breakGlass.upsertCustodian({ ...c, accountId, rotatedAt: now });
      if (sealed) await tx.breakGlass.putSeal(sealed.seal);
      const removedKeys = await tx.breakGlass.deleteSecurityKeys(accountId, {});
      securityKeysRemoved.push(...removedKeys.map((k) => k.credentialId));
      for (const s of owed) {
        const rotated = bg.recordRotation(s.activation, operator, now);
        if (!(await tx.breakGlass.updateActivation(rotated, s.activation.version)))
          throw new PortcullisError('conflict', 'An activation changed during rotation; run it again');
        rotatedActivations.push(s.activation.id);
      }
      await tx.audit.append(
        {
          type: 'break_glass.rotated',
          actor: operator,
          severity: 'high',
          data: {
            accountId,
            custodians: replaced.map((c) => c.custodianId),
            sealId: sealed?.seal.sealId ?? null,
            activations: rotatedActivations,
            securityKeysRemoved,
          },
        },
        now,
      );
    });
    return { totp, shares: sealed?.shares ?? null, rotatedActivations, securityKeysRemoved };
  }

  /** The evidence of one activation: timeline, grants, every audit event tagged with it. */
  evidence(activationId: string): Promise<ActivationEvidence> {
    return collectEvidence(this.#deps.store, activationId, this.#deps.clock.now());
  }
}

/** The evidence of one activation: timeline, grants, every audit event tagged with it. */
export async function collectEvidence(
  store: Store,
  activationId: string,
  now: number,
): Promise<ActivationEvidence> {
  const stored = await store.breakGlass.getActivation(activationId);
  if (!stored) throw new PortcullisError('not_found', `No activation ${activationId}`);
  const grants = [];
  for (const requestId of stored.requestIds) {
    const grant = await store.grants.getByRequest(requestId);
    if (!grant) continue;
    grants.push({
      grantId: grant.id,
      role: grant.role,
      status: grant.status,
      notBefore: iso(grant.notBefore) as string,
      expiresAt: iso(grant.expiresAt) as string,
      revokedAt: iso(grant.revokedAt),
      artefacts: grant.artefacts,
    });
  }
  const requestIds = new Set(stored.requestIds);
  const grantIds = new Set(grants.map((g) => g.grantId));
  const events: AuditRecord[] = [];
  for (let after = 0; ; ) {
    const page = await store.auditLog.read(after, 1000);
    if (page.length === 0) break;
    for (const e of page) {
      if (
        e.data?.activationId === activationId ||
        (e.requestId && requestIds.has(e.requestId)) ||
        (e.grantId && grantIds.has(e.grantId))
      )
        events.push(e);
    }
    after = page[page.length - 1]?.seq ?? after;
  }
  const drills = (await store.breakGlass.listDrills(stored.activation.accountId, 100)).filter(
    (d) => d.activationId === activationId,
  );
  return {
    generatedAt: new Date(now).toISOString(),
    activation: stored.activation,
    requestIds: stored.requestIds,
    grants,
    auditEvents: events,
    awaitingReview: bg.awaitingReview(stored.activation),
    rotationOwed: bg.requiresRotation(stored.activation),
    drills,
  };
}

export interface AccountOverview {
  readonly accountId: string;
  readonly resourceId: string;
  readonly roles: readonly string[];
  readonly custodians: readonly string[];
  readonly enrolled: readonly string[];
  /** Security keys enrolled, per custodian (custodians without a key are absent). */
  readonly securityKeys: Readonly<Record<string, number>>;
  readonly quorum: number;
  readonly sealed: boolean;
  readonly sealReady: boolean;
  /** The latest drill, passed or failed, and whether it passed. */
  readonly lastDrillAt: number | null;
  readonly lastDrillPassed: boolean | null;
  /** The latest drill that passed: the only kind that counts for `drillOverdue` and the metrics. */
  readonly lastPassedDrillAt: number | null;
  readonly drillOverdue: boolean;
  readonly openActivations: number;
  readonly awaitingReview: number;
  readonly rotationOwed: number;
}

/**
 * Per account: enrolment, seal, drills (overdue unless a passed drill is recent enough), open
 * activations, reviews and rotations owed.
 */
export async function accountOverview(
  store: Store,
  settings: BreakGlassSettings,
  now: number,
): Promise<AccountOverview[]> {
  const out: AccountOverview[] = [];
  for (const account of settings.accounts) {
    const enrolled = (await store.breakGlass.listCustodians(account.id)).map((c) => c.custodianId);
    const seal = account.sealed ? await store.breakGlass.getSeal(account.id) : undefined;
    const securityKeys: Record<string, number> = {};
    for (const key of await store.breakGlass.listAccountSecurityKeys(account.id))
      securityKeys[key.custodianId] = (securityKeys[key.custodianId] ?? 0) + 1;
    const last = await store.breakGlass.lastDrill(account.id);
    const lastPassed = await store.breakGlass.lastPassedDrill(account.id);
    const activations = await store.breakGlass.listActivations({
      accountId: account.id,
      limit: 1000,
    });
    out.push({
      accountId: account.id,
      resourceId: account.scope.resourceId,
      roles: account.scope.roles,
      custodians: account.custodians,
      enrolled: enrolled.filter((c) => account.custodians.includes(c)),
      securityKeys,
      quorum: account.quorum,
      sealed: account.sealed !== null,
      sealReady: account.sealed === null || seal !== undefined,
      lastDrillAt: last?.at ?? null,
      lastDrillPassed: last ? last.passed : null,
      lastPassedDrillAt: lastPassed?.at ?? null,
      // A failed drill proves the procedure does not work: it never clears "overdue".
      drillOverdue: drillOverdue(lastPassed?.at ?? null, account.drillIntervalSeconds, now),
      openActivations: activations.filter((s) =>
        ['initiated', 'awaiting_quorum', 'active'].includes(s.activation.state),
      ).length,
      awaitingReview: activations.filter((s) => bg.awaitingReview(s.activation)).length,
      rotationOwed: activations.filter((s) => bg.requiresRotation(s.activation)).length,
    });
  }
  return out;
}
/** The evidence as Markdown, for people (the JSON is for tools). */
export function evidenceMarkdown(e: ActivationEvidence): string {
  const a = e.activation;
  const lines = [
    `# Break-glass ${a.drill ? 'drill' : 'activation'} ${a.id}`,
    '',
    `- Account: \`${a.accountId}\``,
    `- Scope: \`${a.scope.resourceId}\` roles ${a.scope.roles.map((r) => `\`${r}\``).join(', ')}`,
    `- Initiator: ${a.initiatorId}; confirmed by: ${a.confirmerIds.join(', ') || '(nobody)'} (quorum ${a.quorum})`,
    `- Reason: ${a.reason}`,
    `- Incident: ${a.incident}`,
    `- State: **${a.state}**${a.endReason ? ` (${a.endReason})` : ''}`,
    `- Initiated: ${iso(a.initiatedAt)}; active: ${iso(a.activatedAt) ?? '—'}; hard expiry: ${iso(a.expiresAt) ?? '—'}; ended: ${iso(a.endedAt) ?? '—'}`,
    `- Review: ${a.review ? `${a.review.reviewerId} at ${iso(a.review.at)}: ${a.review.notes}` : e.awaitingReview ? '**owed**' : '—'}`,
    `- Credentials rotated: ${a.rotatedAt ? iso(a.rotatedAt) : e.rotationOwed ? '**owed**' : 'not needed'}`,
    '',
    '## Timeline',
    '',
    '| at | state | actor | note |',
    '| --- | --- | --- | --- |',
    ...a.timeline.map((t) => `| ${iso(t.at)} | ${t.state} | ${t.actorId ?? 'system'} | ${t.note ?? ''} |`),
    '',
    '## Grants',
    '',
    '| grant | role | status | from | until | revoked |',
    '| --- | --- | --- | --- | --- | --- |',
    ...e.grants.map(
      (g) =>
        `| ${g.grantId} | ${g.role} | ${g.status} | ${g.notBefore} | ${g.expiresAt} | ${g.revokedAt ?? '—'} |`,
    ),
    '',
    `## Audit events (${e.auditEvents.length})`,
    '',
    '| seq | at | type | severity | actor | source |',
    '| --- | --- | --- | --- | --- | --- |',
    ...e.auditEvents.map(
      (ev) =>
        `| ${ev.seq} | ${iso(ev.at)} | ${ev.type} | ${ev.severity ?? 'info'} | ${ev.actor} | ${ev.sourceIp ?? ''} |`,
    ),
    '',
  ];
  for (const d of e.drills) {
    lines.push(
      `## Drill result: ${d.passed ? 'PASSED' : 'FAILED'} (${iso(d.at)})`,
      '',
      '```json',
      d.report,
      '```',
      '',
    );
  }
  return lines.join('\n');
}
