/**
 * Break-glass use cases: initiate, confirm, cancel, show credentials, end, review, and the
 * periodic pass that closes windows and ends access. Custodians authenticate with their own
 * credentials (argon2id passphrase + single-use TOTP, and the account's shares when sealed) — never
 * through an identity provider, so all of this works while every IdP is down.
 *
 * Each step applies a pure function from `src/break-glass/activation.ts` and writes the new state
 * with its high-severity audit event in one transaction (compare-and-swap on `version`); every
 * refusal is audited too. Alerts go out after the commit and never block. On quorum the access is
 * granted through the normal machinery: one access request per role, created `approved` and
 * activated by {@link AccessService.activate} with the same provisioners, then ended by the normal
 * expiry loop (which also cuts live gateway sessions).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Activation } from '../break-glass/activation.js';
import * as bg from '../break-glass/activation.js';
import {
  type CustodianCredentials,
  hashPassphrase,
  type PresentedCredentials,
  passphraseMatches,
  verifyCustodian,
} from '../break-glass/credentials.js';
import { shortenDrill } from '../break-glass/drill.js';
import {
  type Attempt,
  checkAttempt,
  defaultGuessingPolicy,
  emptyGuessingState,
  type GuessingPolicy,
  type GuessingState,
  recordFailure,
  recordSuccess,
} from '../break-glass/guessing.js';
import type { AlertDispatcher, BreakGlassAlertKind } from '../break-glass/ports.js';
import { decideRefusalLog, type RefusalThrottleState } from '../break-glass/refusal-log-throttle.js';
import { openSeal } from '../break-glass/sealed-shares.js';
import type { UsedCodes } from '../break-glass/used-codes.js';
import { type SecurityKeyCeremonies, SecurityKeyRefused } from '../break-glass/webauthn.js';
import type { BreakGlassSettings, ConfiguredEmergencyAccount } from '../config/break-glass-config.js';
import type { AccessRequest } from '../core/access-request.js';
import { cancel as cancelRequest, isAccessLive } from '../core/access-request.js';
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { AccessService } from './access-service.js';
import { type AccountOverview, accountOverview, collectEvidence } from './break-glass-admin.js';
import type { StoredActivation } from './break-glass-ports.js';
import type { SecretBox, Store, Transaction } from './ports.js';

export interface BreakGlassServiceDeps {
  readonly store: Store;
  readonly access: AccessService;
  readonly settings: BreakGlassSettings;
  /** Opens custodians' TOTP secrets (sealed under their own purpose label). */
  readonly totpSecrets: SecretBox;
  readonly alerts: AlertDispatcher;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly adminGroups: readonly string[];
  readonly guessingPolicy?: GuessingPolicy;
  /** Security-key (WebAuthn) ceremonies; without them only TOTP is accepted. */
  readonly securityKeys?: SecurityKeyCeremonies;
  /** Called when an activation reaches quorum (re-arms the expiry loop). */
  readonly onActivated?: (expiresAt: number) => void;
}

/** What a custodian presents: their id and both factors. */
export interface CustodianProof {
  readonly custodianId: string;
  readonly passphrase: string;
  /** The TOTP code; or, instead, a security-key assertion. */
  readonly totp?: string;
  /** `navigator.credentials.get()`'s answer to {@link BreakGlassService.securityKeyOptions}. */
  readonly securityKey?: AuthenticationResponseJSON;
}

export interface InitiateRequest {
  readonly accountId: string;
  readonly proof: CustodianProof;
  /** Printed shares, for a sealed account. */
  readonly shares?: readonly string[];
  readonly reason: string;
  readonly incident: string;
  /** Roles wanted (default: every role of the account's scope); the resource is the account's. */
  readonly resourceId?: string;
  readonly roles?: readonly string[];
  readonly durationMinutes: number;
  readonly drill?: boolean;
}

/** One grant of an activation, with what the initiator needs to use it. */
export interface EmergencyGrantAccess {
  readonly grantId: string;
  readonly role: string;
  readonly expiresAt: number;
  readonly credentials?: Readonly<Record<string, string>>;
  readonly token?: string;
  /** Drills only: what the resource's roles outside the scope would grant, for the client to probe. */
  readonly outOfScope?: readonly string[];
}

/** One check of a drill and its outcome. */
export interface DrillCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

const maxCasAttempts = 8;
const guessingKeyGlobal = 'global';

function hashHandle(handle: string): string {
  return createHash('sha256').update(handle).digest('base64url');
}

/**
 * The principal that holds an activation's grants: the initiator, as a break-glass identity of
 * that one activation. The activation id is part of it so that every later event of those grants
 * (activation, credentials, tokens, gateway sessions and statements, expiry) names the activation.
 */
export function emergencyPrincipalId(
  activation: Pick<Activation, 'id' | 'accountId' | 'initiatorId'>,
): string {
  return `break-glass:${emergencySubject(activation)}`;
}

function emergencySubject(activation: Pick<Activation, 'id' | 'accountId' | 'initiatorId'>): string {
  return `${activation.accountId}:${activation.initiatorId}:${activation.id}`;
}

function emergencyPrincipal(activation: Activation): Principal {
  return {
    id: emergencyPrincipalId(activation),
    idp: 'break-glass',
    subject: emergencySubject(activation),
    displayName: `${activation.initiatorId} (break-glass ${activation.accountId})`,
    email: null,
    groups: [],
  };
}

const custodianActor = (custodianId: string) => `break-glass:${custodianId}`;

/** The WebAuthn user of a custodian: one per account, so challenges and keys never cross accounts. */
const webauthnUser = (accountId: string, custodianId: string) => `${accountId}/${custodianId}`;

/** Never claims a code: used when the custodian is unknown, so the answer and the cost match. */
const refuseEveryCode: UsedCodes = { claim: async () => false };

export class BreakGlassService {
  readonly #deps: BreakGlassServiceDeps;
  readonly #policy: GuessingPolicy;
  /** Attempts from one source for one account run one at a time (per replica). */
  readonly #lanes = new Map<string, Promise<unknown>>();
  #dummyHash: Promise<string> | undefined;
  #overdueCheckedAt = Number.NEGATIVE_INFINITY;
  readonly #overdueAlertedAt = new Map<string, number>();
  /** Per source: how many refusals were written one by one in its current window (per replica). */
  #refusalLog: RefusalThrottleState = new Map();

  constructor(deps: BreakGlassServiceDeps) {
    this.#deps = deps;
    this.#policy = deps.guessingPolicy ?? defaultGuessingPolicy;
  }

  get settings(): BreakGlassSettings {
    return this.#deps.settings;
  }

  account(accountId: string): ConfiguredEmergencyAccount {
    return bg.findAccount(this.#deps.settings.accounts, accountId) as ConfiguredEmergencyAccount;
  }

  // ------------------------------------------------------------ audit and alerts

  async #audit(event: Omit<AuditEventInput, 'severity'>, from: RequestOrigin | null, at: number) {
    await this.#deps.store.transaction((tx) =>
      tx.audit.append(
        { ...event, severity: 'high', sourceIp: from?.sourceIp ?? null, userAgent: from?.userAgent ?? null },
        at,
      ),
    );
  }

  #alert(
    kind: BreakGlassAlertKind,
    accountId: string,
    activation: Activation | null,
    at: number,
    summary: string,
  ): void {
    const custodians = activation ? [activation.initiatorId, ...activation.confirmerIds] : [];
    this.#deps.alerts.dispatch({
      id: this.#deps.newId(),
      kind,
      accountId,
      activationId: activation?.id ?? null,
      drill: activation?.drill ?? false,
      custodians,
      reason: activation?.reason ?? null,
      incident: activation?.incident ?? null,
      at,
      summary,
    });
  }

  /**
   * Whether a refusal's evidence is written one by one, summarised, or left to the marker already
   * written (see refusal-log-throttle.ts). Returns the extra audit data, or null to write nothing.
   */
  #refusalEvidence(from: RequestOrigin, now: number): Record<string, unknown> | null {
    const decided = decideRefusalLog(this.#refusalLog, from.sourceIp ?? 'unknown', now);
    this.#refusalLog = decided.state;
    const { verdict } = decided;
    if (verdict.write === 'nothing') return null;
    if (verdict.write === 'suppressing')
      return { suppressing: true, suppressingUntil: new Date(verdict.until).toISOString() };
    return verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {};
  }

  /** Audits and alerts a refusal (summarised when one source floods), then throws it. */
  async #refuse(
    error: PortcullisError,
    accountId: string,
    custodianId: string | null,
    step: string,
    from: RequestOrigin,
    activation: Activation | null = null,
  ): Promise<never> {
    const now = this.#deps.clock.now();
    const evidence = this.#refusalEvidence(from, now);
    if (evidence === null) throw error;
    await this.#audit(
      {
        type: 'break_glass.refused',
        actor: custodianId ? custodianActor(custodianId) : 'anonymous',
        reason: evidence.suppressing
          ? `${error.message}; further refusals from this source are summarised until ${evidence.suppressingUntil}`
          : error.message,
        data: { accountId, activationId: activation?.id ?? null, step, code: error.code, ...evidence },
      },
      from,
      now,
    );
    this.#alert(
      'refused',
      accountId,
      activation,
      now,
      `Break-glass ${step} REFUSED on ${accountId}${custodianId ? ` for ${custodianId}` : ''}: ${error.code}`,
    );
    throw error;
  }

  // ------------------------------------------------------------ custodian authentication

  async #serial<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#lanes.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#lanes.set(key, settled);
    void settled.then(() => {
      if (this.#lanes.get(key) === settled) this.#lanes.delete(key);
    });
    return run;
  }

  async #readGuessing(tx: Pick<Transaction, 'breakGlass'>, key: string, now: number) {
    const row = await tx.breakGlass.getGuessing(key);
    const state = row ? (JSON.parse(row.state) as GuessingState) : emptyGuessingState(this.#policy, now);
    return { state, version: row?.version ?? null };
  }

  async #updateGuessing(key: string, change: (state: GuessingState) => GuessingState, now: number) {
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const { state, version } = await this.#readGuessing(this.#deps.store, key, now);
      if (await this.#deps.store.breakGlass.putGuessing(key, JSON.stringify(change(state)), version)) return;
    }
    throw new PortcullisError('conflict', 'Guessing counters kept changing; try again');
  }

  /**
   * Checks the guessing limits, verifies both factors (and claims the TOTP step), records the
   * outcome, and audits a failure. One generic refusal for any wrong factor or unknown custodian.
   */
  async #authenticate(
    account: ConfiguredEmergencyAccount,
    proof: CustodianProof,
    step: string,
    from: RequestOrigin,
    activation: Activation | null = null,
  ): Promise<void> {
    const attempt: Attempt = { custodianId: proof.custodianId, source: from.sourceIp ?? 'unknown' };
    const accountKey = `account:${account.id}`;
    // The global key counts a source across accounts, so spraying several accounts does not help.
    const globalAttempt: Attempt = {
      custodianId: `${account.id}/${proof.custodianId}`,
      source: attempt.source,
    };
    await this.#serial(`${account.id}\0${attempt.source}`, async () => {
      const now = this.#deps.clock.now();
      const accountState = await this.#readGuessing(this.#deps.store, accountKey, now);
      const globalState = await this.#readGuessing(this.#deps.store, guessingKeyGlobal, now);
      const verdicts = [
        checkAttempt(accountState.state, attempt, this.#policy, now),
        checkAttempt(globalState.state, globalAttempt, this.#policy, now),
      ];
      const refused = verdicts.find((v) => !v.allowed);
      if (refused && !refused.allowed) {
        const retryAfterSeconds = Math.ceil(refused.retryAfterMs / 1000);
        const evidence = this.#refusalEvidence(from, now);
        if (evidence !== null) {
          await this.#audit(
            {
              type: 'break_glass.locked_out',
              actor: custodianActor(proof.custodianId),
              reason: `too many failed attempts (${refused.limit} limit)`,
              data: {
                accountId: account.id,
                activationId: activation?.id ?? null,
                step,
                limit: refused.limit,
                retryAfterSeconds,
                ...evidence,
              },
            },
            from,
            now,
          );
          this.#alert(
            'locked_out',
            account.id,
            activation,
            now,
            `Break-glass attempts on ${account.id} delayed (${refused.limit} limit) for ${retryAfterSeconds}s`,
          );
        }
        throw new PortcullisError('break_glass_locked', 'Too many failed attempts; try again later', {
          retryAfterSeconds,
        });
      }
      const ok = await this.#verify(account, proof, now);
      await this.#updateGuessing(
        accountKey,
        (s) => (ok ? recordSuccess(s, attempt, now) : recordFailure(s, attempt, this.#policy, now)),
        now,
      );
      await this.#updateGuessing(
        guessingKeyGlobal,
        (s) =>
          ok ? recordSuccess(s, globalAttempt, now) : recordFailure(s, globalAttempt, this.#policy, now),
        now,
      );
      if (!ok) {
        await this.#refuse(
          new PortcullisError('break_glass_auth_failed', 'The emergency credentials were not accepted'),
          account.id,
          proof.custodianId,
          step,
          from,
          activation,
        );
      }
    });
  }

  async #verify(account: ConfiguredEmergencyAccount, proof: CustodianProof, now: number): Promise<boolean> {
    const stored = account.custodians.includes(proof.custodianId)
      ? await this.#deps.store.breakGlass.getCustodian(account.id, proof.custodianId)
      : undefined;
    let credentials: CustodianCredentials;
    let usedCodes: UsedCodes = refuseEveryCode;
    if (stored) {
      credentials = {
        custodianId: proof.custodianId,
        passphraseHash: stored.passphraseHash,
        totpSecret: await this.#deps.totpSecrets.open(stored.sealedTotpSecret),
      };
      usedCodes = {
        claim: (_id, step) => this.#deps.store.breakGlass.claimTimeStep(account.id, proof.custodianId, step),
      };
    } else {
      // An unknown or unenrolled custodian costs the same argon2 work and gets the same answer.
      this.#dummyHash ??= hashPassphrase(randomBytes(24).toString('base64url'));
      credentials = {
        custodianId: proof.custodianId,
        passphraseHash: await this.#dummyHash,
        totpSecret: 'A'.repeat(32),
      };
    }
    if (proof.securityKey !== undefined)
      return this.#verifyWithSecurityKey(account, proof, credentials, stored !== undefined);
    const presented: PresentedCredentials = { passphrase: proof.passphrase, totp: proof.totp ?? '' };
    try {
      await verifyCustodian(credentials, presented, usedCodes, now);
      return stored !== undefined;
    } catch (error) {
      if (error instanceof PortcullisError && error.code === 'break_glass_auth_failed') return false;
      throw error;
    }
  }

  /**
   * Passphrase plus a security-key assertion, both always evaluated. The assertion's challenge was
   * bound to this custodian of this account and is used up either way; the new signature counter
   * is stored with a compare-and-swap, so two racing assertions cannot both pass.
   */
  async #verifyWithSecurityKey(
    account: ConfiguredEmergencyAccount,
    proof: CustodianProof,
    credentials: CustodianCredentials,
    enrolled: boolean,
  ): Promise<boolean> {
    const ceremonies = this.#deps.securityKeys;
    const keys = enrolled
      ? await this.#deps.store.breakGlass.listSecurityKeys(account.id, proof.custodianId)
      : [];
    const [passphraseOk, assertion] = await Promise.all([
      passphraseMatches(credentials.passphraseHash, proof.passphrase),
      ceremonies && proof.securityKey
        ? ceremonies
            .verifyAuthentication({
              custodianId: webauthnUser(account.id, proof.custodianId),
              response: proof.securityKey,
              keys,
            })
            .catch((error: unknown) => {
              if (error instanceof SecurityKeyRefused) return null;
              throw error;
            })
        : Promise.resolve(null),
    ]);
    if (!(passphraseOk && enrolled && assertion)) return false;
    const key = keys.find((k) => k.credentialId === assertion.credentialId);
    return (
      key !== undefined &&
      (await this.#deps.store.breakGlass.updateSecurityKeyCounter(
        key.credentialId,
        key.counter,
        assertion.newCounter,
      ))
    );
  }

  /** Options for `navigator.credentials.get()`, for a custodian who signs in with a security key. */
  async securityKeyOptions(
    accountId: string,
    custodianId: string,
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const ceremonies = this.#requireSecurityKeys();
    const account = this.account(accountId);
    const keys = account.custodians.includes(custodianId)
      ? await this.#deps.store.breakGlass.listSecurityKeys(account.id, custodianId)
      : [];
    // No key enrolled: the same generic refusal as a wrong factor.
    if (keys.length === 0)
      throw new PortcullisError('break_glass_auth_failed', 'The emergency credentials were not accepted');
    return ceremonies.authenticationOptions({ custodianId: webauthnUser(account.id, custodianId), keys });
  }

  /**
   * Starts enrolling a security key: the custodian proves themselves with their passphrase and
   * TOTP (or an existing key) first. Returns the options for `navigator.credentials.create()`.
   */
  async securityKeyRegistrationOptions(
    accountId: string,
    proof: CustodianProof,
    from: RequestOrigin,
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const ceremonies = this.#requireSecurityKeys();
    const account = await this.#accountOrRefuse(accountId, proof.custodianId, 'security_key', from);
    await this.#authenticate(account, proof, 'security_key', from);
    const existing = await this.#deps.store.breakGlass.listSecurityKeys(account.id, proof.custodianId);
    return ceremonies.registrationOptions({
      custodianId: webauthnUser(account.id, proof.custodianId),
      displayName: `${proof.custodianId} (${account.id})`,
      existing,
    });
  }

  /** Finishes the enrolment: verifies the new credential (challenge bound to the custodian), stores it, audits it. */
  async enrolSecurityKey(
    accountId: string,
    custodianId: string,
    response: RegistrationResponseJSON,
    from: RequestOrigin,
  ): Promise<{ credentialId: string }> {
    const ceremonies = this.#requireSecurityKeys();
    const account = await this.#accountOrRefuse(accountId, custodianId, 'security_key', from);
    const existing = await this.#deps.store.breakGlass.listSecurityKeys(account.id, custodianId);
    let key: Awaited<ReturnType<SecurityKeyCeremonies['verifyRegistration']>>;
    try {
      key = await ceremonies.verifyRegistration({
        custodianId: webauthnUser(account.id, custodianId),
        response,
        existing,
      });
    } catch (error) {
      if (error instanceof SecurityKeyRefused)
        return this.#refuse(
          new PortcullisError('break_glass_auth_failed', 'The security key was not accepted', {}),
          account.id,
          custodianId,
          `security_key (${error.reason})`,
          from,
        );
      throw error;
    }
    const now = this.#deps.clock.now();
    await this.#deps.store.transaction(async (tx) => {
      await tx.breakGlass.insertSecurityKey(account.id, custodianId, key, now);
      await tx.audit.append(
        {
          type: 'break_glass.enrolled',
          actor: custodianActor(custodianId),
          severity: 'high',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          data: {
            accountId: account.id,
            custodianId,
            securityKey: key.credentialId,
            aaguid: key.aaguid,
            backedUp: key.backedUp,
          },
        },
        now,
      );
    });
    return { credentialId: key.credentialId };
  }

  #requireSecurityKeys(): SecurityKeyCeremonies {
    if (!this.#deps.securityKeys)
      throw new PortcullisError('break_glass_unavailable', 'Security keys are not configured on this server');
    return this.#deps.securityKeys;
  }

  /** Opens the account's seal with the shares; a wrong combination counts as a failed guess. */
  async #checkShares(
    account: ConfiguredEmergencyAccount,
    proof: CustodianProof,
    shares: readonly string[],
    from: RequestOrigin,
  ): Promise<void> {
    const seal = await this.#deps.store.breakGlass.getSeal(account.id);
    if (!seal) {
      return this.#refuse(
        new PortcullisError('break_glass_not_enrolled', `"${account.id}" is sealed but no seal was made yet`),
        account.id,
        proof.custodianId,
        'initiate',
        from,
      );
    }
    try {
      await openSeal(seal, shares);
    } catch (error) {
      if (!(error instanceof PortcullisError)) throw error;
      if (error.code === 'shares_mismatch') {
        const now = this.#deps.clock.now();
        const attempt: Attempt = { custodianId: proof.custodianId, source: from.sourceIp ?? 'unknown' };
        await this.#updateGuessing(
          `account:${account.id}`,
          (s) => recordFailure(s, attempt, this.#policy, now),
          now,
        );
      }
      await this.#refuse(error, account.id, proof.custodianId, 'initiate', from);
    }
  }

  async #accountOrRefuse(accountId: string, custodianId: string | null, step: string, from: RequestOrigin) {
    try {
      return this.account(accountId);
    } catch (error) {
      if (error instanceof PortcullisError) return this.#refuse(error, accountId, custodianId, step, from);
      throw error;
    }
  }

  // ------------------------------------------------------------ initiate

  /**
   * A custodian opens an activation. Returns it with the initiator's **handle**: a random bearer
   * secret, shown once, that alone lets them see status, fetch the credentials and end the access.
   */
  async initiate(
    input: InitiateRequest,
    from: RequestOrigin,
  ): Promise<{ activation: Activation; handle: string }> {
    const account = await this.#accountOrRefuse(input.accountId, input.proof.custodianId, 'initiate', from);
    await this.#authenticate(account, input.proof, 'initiate', from);
    if (account.sealed) await this.#checkShares(account, input.proof, input.shares ?? [], from);
    const now = this.#deps.clock.now();
    let activation: Activation;
    try {
      activation = bg.initiate(
        account,
        input.proof.custodianId,
        {
          id: this.#deps.newId(),
          reason: input.reason,
          incident: input.incident,
          scope: {
            resourceId: input.resourceId ?? account.scope.resourceId,
            roles: input.roles && input.roles.length > 0 ? input.roles : account.scope.roles,
          },
          durationMinutes: input.durationMinutes,
          drill: input.drill === true,
        },
        now,
      );
    } catch (error) {
      if (error instanceof PortcullisError)
        return this.#refuse(error, account.id, input.proof.custodianId, 'initiate', from);
      throw error;
    }
    const handle = randomBytes(32).toString('base64url');
    await this.#deps.store.transaction(async (tx) => {
      await tx.breakGlass.insertActivation({ activation, handleHash: hashHandle(handle), requestIds: [] });
      await tx.audit.append(
        {
          type: 'break_glass.initiated',
          actor: custodianActor(activation.initiatorId),
          severity: 'high',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          resourceId: activation.scope.resourceId,
          reason: activation.reason,
          data: {
            accountId: account.id,
            activationId: activation.id,
            drill: activation.drill,
            incident: activation.incident,
            roles: activation.scope.roles,
            durationMinutes: activation.durationMinutes,
            quorum: activation.quorum,
            windowEndsAt: activation.windowEndsAt,
          },
        },
        now,
      );
    });
    this.#alert(
      'initiated',
      account.id,
      activation,
      now,
      `Break-glass${activation.drill ? ' DRILL' : ''} INITIATED on ${account.id} by ${activation.initiatorId}: ${activation.reason} (${activation.incident}); confirm before ${new Date(activation.windowEndsAt).toISOString()}`,
    );
    return { activation, handle };
  }

  // ------------------------------------------------------------ confirm

  async #load(activationId: string): Promise<StoredActivation> {
    const stored = await this.#deps.store.breakGlass.getActivation(activationId);
    if (!stored) throw new PortcullisError('not_found', `No activation ${activationId}`);
    return stored;
  }

  /** Another custodian confirms; reaching the quorum grants the access at once. */
  async confirm(
    activationId: string,
    accountId: string | undefined,
    proof: CustodianProof,
    from: RequestOrigin,
  ): Promise<Activation> {
    const found = await this.#deps.store.breakGlass.getActivation(activationId);
    if (!found || (accountId !== undefined && found.activation.accountId !== accountId)) {
      return this.#refuse(
        new PortcullisError('not_found', `No activation ${activationId}`),
        accountId ?? 'unknown',
        proof.custodianId,
        'confirm',
        from,
      );
    }
    const account = await this.#accountOrRefuse(
      found.activation.accountId,
      proof.custodianId,
      'confirm',
      from,
    );
    await this.#authenticate(account, proof, 'confirm', from, found.activation);
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.#load(activationId);
      const now = this.#deps.clock.now();
      const lapsed = await this.#expireWindow(current, now);
      if (lapsed) {
        return this.#refuse(
          new PortcullisError('confirmation_window_closed', 'The confirmation window has passed', {
            windowEndedAt: new Date(current.activation.windowEndsAt).toISOString(),
          }),
          account.id,
          proof.custodianId,
          'confirm',
          from,
          lapsed,
        );
      }
      let updated: Activation;
      try {
        updated = bg.confirm(current.activation, proof.custodianId, now);
      } catch (error) {
        if (error instanceof PortcullisError)
          return this.#refuse(error, account.id, proof.custodianId, 'confirm', from, current.activation);
        throw error;
      }
      updated = shortenDrill(updated, this.#deps.settings.drillAccessSeconds * 1000);
      const becameActive = updated.state === 'active';
      const requests = becameActive ? this.#emergencyRequests(updated, now) : [];
      const won = await this.#deps.store.transaction(async (tx) => {
        if (
          !(await tx.breakGlass.updateActivation(
            updated,
            current.activation.version,
            becameActive ? requests.map((r) => r.id) : undefined,
          ))
        )
          return false;
        const base = {
          actor: custodianActor(proof.custodianId),
          severity: 'high' as const,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          resourceId: updated.scope.resourceId,
        };
        const events: AuditEventInput[] = [
          {
            ...base,
            type: 'break_glass.confirmed',
            data: {
              accountId: account.id,
              activationId,
              confirmers: updated.confirmerIds,
              quorum: updated.quorum,
            },
          },
        ];
        if (becameActive) {
          for (const request of requests) {
            await tx.requests.insert(request);
            events.push({
              type: 'request.created',
              actor: 'system',
              severity: 'high',
              requestId: request.id,
              resourceId: request.resourceId,
              reason: request.reason,
              policyIds: [request.route.policyId],
              data: {
                role: request.role,
                durationSeconds: request.durationSeconds,
                activationId,
                ticket: request.ticket,
              },
            });
          }
          events.push({
            ...base,
            actor: 'system',
            type: 'break_glass.activated',
            reason: updated.reason,
            data: {
              accountId: account.id,
              activationId,
              drill: updated.drill,
              initiator: updated.initiatorId,
              confirmers: updated.confirmerIds,
              roles: updated.scope.roles,
              activatedAt: updated.activatedAt,
              expiresAt: updated.expiresAt,
              requestIds: requests.map((r) => r.id),
            },
          });
        }
        await tx.audit.appendAll(events.map((event) => ({ event, at: now })));
        return true;
      });
      if (!won) continue;
      this.#alert(
        'confirmed',
        account.id,
        updated,
        now,
        `Break-glass on ${account.id} confirmed by ${proof.custodianId}`,
      );
      if (!becameActive) return updated;
      this.#alert(
        'activated',
        account.id,
        updated,
        now,
        `Break-glass${updated.drill ? ' DRILL' : ''} ACTIVE on ${account.id} until ${new Date(updated.expiresAt ?? now).toISOString()} (initiator ${updated.initiatorId})`,
      );
      return this.#provision(
        updated,
        requests.map((r) => r.id),
      );
    }
    throw new PortcullisError('conflict', 'The activation kept changing; try again');
  }

  /** One approved access request per role, tagged with the activation, never outliving it. */
  #emergencyRequests(activation: Activation, now: number): AccessRequest[] {
    const expiresAt = activation.expiresAt ?? now;
    const durationSeconds = Math.max(1, Math.floor((expiresAt - now) / 1000));
    return activation.scope.roles.map((role) => ({
      id: this.#deps.newId(),
      requesterId: emergencyPrincipalId(activation),
      resourceId: activation.scope.resourceId,
      role,
      durationSeconds,
      reason: `[break-glass ${activation.id}] ${activation.reason}`,
      ticket: activation.incident,
      state: 'approved' as const,
      route: {
        requiredApprovals: activation.quorum - 1,
        approverGroups: [],
        maxDurationSeconds: durationSeconds,
        autoApprove: false,
        policyId: `break-glass:${activation.accountId}`,
      },
      reviews: activation.confirmerIds.map((c) => ({
        reviewerId: custodianActor(c),
        verdict: 'approve' as const,
        reason: 'break-glass confirmation',
        at: now,
      })),
      createdAt: now,
      updatedAt: now,
      activatedAt: null,
      expiresAt: null,
      endedAt: null,
      endReason: null,
      version: 1,
    }));
  }

  /**
   * Provisions every request of the activation through the normal path. If any fails, the ones
   * that succeeded are taken back and the activation ends: emergency access is all or nothing.
   */
  async #provision(activation: Activation, requestIds: readonly string[]): Promise<Activation> {
    const failures: unknown[] = [];
    for (const requestId of requestIds) {
      try {
        await this.#deps.access.activate(requestId);
      } catch (error) {
        failures.push(error);
      }
    }
    if (activation.expiresAt !== null) this.#deps.onActivated?.(activation.expiresAt);
    if (failures.length === 0) return activation;
    const now = this.#deps.clock.now();
    const message = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
    await this.#audit(
      {
        type: 'break_glass.provisioning_failed',
        actor: 'system',
        resourceId: activation.scope.resourceId,
        reason: message,
        data: { accountId: activation.accountId, activationId: activation.id },
      },
      null,
      now,
    );
    await this.#releaseGrants(activation, requestIds, 'provisioning failed', null);
    const ended = await this.#endActivation(activation.id, null, 'revoked', null, 'provisioning failed');
    this.#alert(
      'refused',
      activation.accountId,
      ended ?? activation,
      now,
      `Break-glass on ${activation.accountId} could not be provisioned: ${message}`,
    );
    throw new PortcullisError(
      'provisioning_failed',
      `The emergency access could not be provisioned: ${message}`,
    );
  }

  async #releaseGrants(
    activation: Activation,
    requestIds: readonly string[],
    reason: string,
    from: RequestOrigin | null,
  ): Promise<void> {
    const principal = emergencyPrincipal(activation);
    const origin = from ?? { sourceIp: null, userAgent: null, channel: 'system' };
    for (const requestId of requestIds) {
      const request = await this.#deps.store.requests.get(requestId);
      const grantId = await this.#deps.access.grantIdOf(requestId);
      if (!request || !grantId || request.state !== 'active') continue;
      await this.#deps.access.revoke(principal, grantId, reason, origin);
    }
  }

  /** Moves an attempt whose window passed to `expired` (audited, alerted); returns it, or null. */
  async #expireWindow(stored: StoredActivation, now: number): Promise<Activation | null> {
    const lapsed = bg.expireIfWindowPassed(stored.activation, now);
    if (lapsed === stored.activation) return null;
    const won = await this.#deps.store.transaction(async (tx) => {
      if (!(await tx.breakGlass.updateActivation(lapsed, stored.activation.version))) return false;
      await tx.audit.append(
        {
          type: 'break_glass.expired',
          actor: 'system',
          severity: 'high',
          resourceId: lapsed.scope.resourceId,
          reason: 'confirmation window passed before the quorum',
          data: { accountId: lapsed.accountId, activationId: lapsed.id, confirmers: lapsed.confirmerIds },
        },
        now,
      );
      return true;
    });
    if (won)
      this.#alert(
        'expired',
        lapsed.accountId,
        lapsed,
        now,
        `Break-glass on ${lapsed.accountId} expired without quorum`,
      );
    return lapsed;
  }

  async #endActivation(
    activationId: string,
    actorId: string | null,
    reason: bg.EndReason,
    from: RequestOrigin | null,
    note?: string,
  ): Promise<Activation | undefined> {
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.#load(activationId);
      if (current.activation.state !== 'active') return current.activation;
      const now = this.#deps.clock.now();
      const ended = bg.end(current.activation, actorId, reason, now);
      const won = await this.#deps.store.transaction(async (tx) => {
        if (!(await tx.breakGlass.updateActivation(ended, current.activation.version))) return false;
        await tx.audit.append(
          {
            type: 'break_glass.ended',
            actor: actorId ? custodianActor(actorId) : 'system',
            severity: 'high',
            sourceIp: from?.sourceIp ?? null,
            userAgent: from?.userAgent ?? null,
            resourceId: ended.scope.resourceId,
            reason: note ?? reason,
            data: {
              accountId: ended.accountId,
              activationId,
              endReason: reason,
              endedAt: ended.endedAt,
              expiresAt: ended.expiresAt,
              drill: ended.drill,
            },
          },
          now,
        );
        return true;
      });
      if (!won) continue;
      this.#alert(
        'ended',
        ended.accountId,
        ended,
        now,
        `Break-glass on ${ended.accountId} ENDED (${note ?? reason}); a review by a non-participant is now owed`,
      );
      return ended;
    }
    throw new PortcullisError('conflict', 'The activation kept changing; try again');
  }

  // ------------------------------------------------------------ the initiator's handle

  /** The activation if `handle` is its initiator's; otherwise a refusal that reveals nothing. */
  async #byHandle(
    activationId: string,
    handle: string,
    step: string,
    from: RequestOrigin,
  ): Promise<StoredActivation> {
    const stored = await this.#deps.store.breakGlass.getActivation(activationId);
    const expected = Buffer.from(stored?.handleHash ?? hashHandle(randomBytes(16).toString('hex')));
    const given = Buffer.from(hashHandle(handle));
    if (!stored || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return this.#refuse(
        new PortcullisError('not_found', `No activation ${activationId}`),
        stored?.activation.accountId ?? 'unknown',
        null,
        step,
        from,
      );
    }
    return stored;
  }

  async status(activationId: string, handle: string, from: RequestOrigin): Promise<StoredActivation> {
    await this.#byHandle(activationId, handle, 'status', from);
    await this.tick();
    return this.#load(activationId);
  }

  /**
   * The access credentials, for the initiator only (by handle): the person who will use the access
   * is the one who declared the reason and the incident; confirmers approve, they do not receive.
   * Every showing is audited before it happens.
   */
  async credentials(
    activationId: string,
    handle: string,
    from: RequestOrigin,
  ): Promise<EmergencyGrantAccess[]> {
    const stored = await this.#byHandle(activationId, handle, 'credentials', from);
    const activation = stored.activation;
    const now = this.#deps.clock.now();
    if (!bg.isActivationLive(activation, now)) {
      return this.#refuse(
        new PortcullisError('invalid_transition', `The activation is ${activation.state}, not active`, {
          state: activation.state,
        }),
        activation.accountId,
        activation.initiatorId,
        'credentials',
        from,
        activation,
      );
    }
    const principal = emergencyPrincipal(activation);
    const resource = this.#deps.access.resource(activation.scope.resourceId);
    await this.#audit(
      {
        type: 'break_glass.credentials_shown',
        actor: custodianActor(activation.initiatorId),
        resourceId: resource.id,
        data: { accountId: activation.accountId, activationId, requestIds: stored.requestIds },
      },
      from,
      now,
    );
    const inScope = activation.scope.roles.flatMap((r) => resource.roles.get(r)?.grants ?? []);
    const outOfScope = [...resource.roles.values()]
      .filter((r) => !activation.scope.roles.includes(r.name))
      .flatMap((r) => r.grants)
      .filter((g) => !inScope.includes(g));
    const probe = activation.drill ? { outOfScope } : {};
    const out: EmergencyGrantAccess[] = [];
    for (const requestId of stored.requestIds) {
      const grantId = await this.#deps.access.grantIdOf(requestId);
      if (!grantId) continue;
      const grant = await this.#deps.store.grants.get(grantId);
      if (!grant) continue;
      if (resource.kind === 'token') {
        const issued = await this.#deps.access.issueToken(principal, grantId, from);
        out.push({ grantId, role: grant.role, expiresAt: grant.expiresAt, token: issued.token, ...probe });
      } else {
        const credentials = await this.#deps.access.credentials(principal, grantId, from);
        out.push({ grantId, role: grant.role, expiresAt: grant.expiresAt, credentials, ...probe });
      }
    }
    return out;
  }

  /** The initiator ends the access early (by handle): grants are released at once. */
  async end(activationId: string, handle: string, from: RequestOrigin): Promise<Activation> {
    const stored = await this.#byHandle(activationId, handle, 'end', from);
    if (stored.activation.state !== 'active') {
      return this.#refuse(
        new PortcullisError('invalid_transition', `The activation is ${stored.activation.state}, not active`),
        stored.activation.accountId,
        stored.activation.initiatorId,
        'end',
        from,
        stored.activation,
      );
    }
    await this.#releaseGrants(stored.activation, stored.requestIds, 'ended by the initiator', from);
    return (
      (await this.#endActivation(activationId, stored.activation.initiatorId, 'ended_by_user', from)) ??
      stored.activation
    );
  }

  // ------------------------------------------------------------ cancel

  /** Withdraws an attempt before it is active: by the initiator's handle or any custodian's proof. */
  async cancel(
    activationId: string,
    auth: { readonly handle: string } | { readonly proof: CustodianProof },
    from: RequestOrigin,
  ): Promise<Activation> {
    let stored: StoredActivation;
    let custodianId: string;
    if ('handle' in auth) {
      stored = await this.#byHandle(activationId, auth.handle, 'cancel', from);
      // The initiator cancelling once the access is active means: end it now.
      if (stored.activation.state === 'active') return this.end(activationId, auth.handle, from);
      custodianId = stored.activation.initiatorId;
    } else {
      const found = await this.#deps.store.breakGlass.getActivation(activationId);
      if (!found)
        return this.#refuse(
          new PortcullisError('not_found', `No activation ${activationId}`),
          'unknown',
          auth.proof.custodianId,
          'cancel',
          from,
        );
      const account = await this.#accountOrRefuse(
        found.activation.accountId,
        auth.proof.custodianId,
        'cancel',
        from,
      );
      await this.#authenticate(account, auth.proof, 'cancel', from, found.activation);
      stored = found;
      custodianId = auth.proof.custodianId;
    }
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.#load(activationId);
      const now = this.#deps.clock.now();
      let cancelled: Activation;
      try {
        cancelled = bg.cancel(current.activation, custodianId, now);
      } catch (error) {
        if (error instanceof PortcullisError)
          return this.#refuse(
            error,
            stored.activation.accountId,
            custodianId,
            'cancel',
            from,
            current.activation,
          );
        throw error;
      }
      const won = await this.#deps.store.transaction(async (tx) => {
        if (!(await tx.breakGlass.updateActivation(cancelled, current.activation.version))) return false;
        await tx.audit.append(
          {
            type: 'break_glass.cancelled',
            actor: custodianActor(custodianId),
            severity: 'high',
            sourceIp: from.sourceIp,
            userAgent: from.userAgent,
            resourceId: cancelled.scope.resourceId,
            data: { accountId: cancelled.accountId, activationId },
          },
          now,
        );
        return true;
      });
      if (!won) continue;
      this.#alert(
        'cancelled',
        cancelled.accountId,
        cancelled,
        now,
        `Break-glass on ${cancelled.accountId} cancelled by ${custodianId}`,
      );
      return cancelled;
    }
    throw new PortcullisError('conflict', 'The activation kept changing; try again');
  }

  // ------------------------------------------------------------ review

  /** Whether `principal` may record reviews: an admin or a member of `break_glass.reviewer_groups`. */
  mayReview(principal: Principal): boolean {
    const groups = [...this.#deps.adminGroups, ...this.#deps.settings.reviewerGroups];
    return principal.groups.some((g) => groups.includes(g));
  }

  /**
   * Records the review of an ended activation. The reviewer signs in normally (SSO) and must not
   * be a participant: a custodian whose configured `principal` is the reviewer counts as that
   * custodian, so the pure rule refuses them.
   */
  async review(
    activationId: string,
    reviewer: Principal,
    notes: string,
    from: RequestOrigin,
  ): Promise<Activation> {
    const found = await this.#deps.store.breakGlass.getActivation(activationId);
    if (!found || !this.mayReview(reviewer)) {
      const error = found
        ? new PortcullisError('forbidden', 'Only admins or break-glass reviewers may record a review')
        : new PortcullisError('not_found', `No activation ${activationId}`);
      await this.#audit(
        {
          type: 'break_glass.refused',
          actor: reviewer.id,
          reason: error.message,
          data: {
            accountId: found?.activation.accountId ?? null,
            activationId,
            step: 'review',
            code: error.code,
          },
        },
        from,
        this.#deps.clock.now(),
      );
      throw error;
    }
    const account = this.#deps.settings.accounts.find((a) => a.id === found.activation.accountId);
    const asCustodian =
      Object.entries(account?.custodianPrincipals ?? {}).find(
        ([, principal]) => principal === reviewer.id,
      )?.[0] ?? reviewer.id;
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.#load(activationId);
      const now = this.#deps.clock.now();
      let reviewed: Activation;
      try {
        reviewed = bg.recordReview(current.activation, asCustodian, notes, now);
        // Stored under the reviewer's real identity, not the custodian id it was checked as.
        reviewed = {
          ...reviewed,
          review: { reviewerId: reviewer.id, notes: reviewed.review?.notes ?? notes, at: now },
        };
      } catch (error) {
        if (error instanceof PortcullisError) {
          await this.#audit(
            {
              type: 'break_glass.refused',
              actor: reviewer.id,
              reason: error.message,
              data: {
                accountId: current.activation.accountId,
                activationId,
                step: 'review',
                code: error.code,
              },
            },
            from,
            now,
          );
        }
        throw error;
      }
      const won = await this.#deps.store.transaction(async (tx) => {
        if (!(await tx.breakGlass.updateActivation(reviewed, current.activation.version))) return false;
        await tx.audit.append(
          {
            type: 'break_glass.reviewed',
            actor: reviewer.id,
            severity: 'high',
            sourceIp: from.sourceIp,
            userAgent: from.userAgent,
            resourceId: reviewed.scope.resourceId,
            reason: reviewed.review?.notes ?? notes,
            data: { accountId: reviewed.accountId, activationId },
          },
          now,
        );
        return true;
      });
      if (!won) continue;
      this.#alert(
        'reviewed',
        reviewed.accountId,
        reviewed,
        now,
        `Break-glass on ${reviewed.accountId} reviewed by ${reviewer.id}`,
      );
      return reviewed;
    }
    throw new PortcullisError('conflict', 'The activation kept changing; try again');
  }

  // ------------------------------------------------------------ boot

  /**
   * Run at boot **before** `AccessService.recover()`, which provisions requests a crash left
   * `approved`: an emergency request must never outlive its activation's hard expiry. Requests of
   * activations that are over are cancelled; the others get only the seconds still left.
   */
  async prepareRecovery(): Promise<number> {
    let changed = 0;
    const now = this.#deps.clock.now();
    for (const stored of await this.#deps.store.breakGlass.listActivations({ limit: 1000 })) {
      const a = stored.activation;
      const requestIds = [...stored.requestIds];
      for (const [index, requestId] of stored.requestIds.entries()) {
        const request = await this.#deps.store.requests.get(requestId);
        if (request?.state !== 'approved') continue;
        const left =
          a.state === 'active' && a.expiresAt !== null ? Math.floor((a.expiresAt - now) / 1000) : 0;
        // A request's duration is fixed once made: the stale one is cancelled and, if time is
        // left, replaced by one for the seconds still left.
        const cancelled = cancelRequest(request, emergencyPrincipal(a), now);
        const replacement: AccessRequest | null =
          left >= 1
            ? {
                ...request,
                id: this.#deps.newId(),
                durationSeconds: left,
                route: { ...request.route, maxDurationSeconds: left },
                createdAt: now,
                updatedAt: now,
                version: 1,
              }
            : null;
        if (replacement) requestIds[index] = replacement.id;
        await this.#deps.store.transaction(async (tx) => {
          if (!(await tx.requests.update(cancelled, request.version))) return;
          const events: AuditEventInput[] = [
            {
              type: 'request.cancelled',
              actor: 'system',
              severity: 'high',
              requestId,
              resourceId: request.resourceId,
              reason: 'break-glass recovery: not provisioned before a restart',
              data: { activationId: a.id },
            },
          ];
          if (replacement) {
            await tx.requests.insert(replacement);
            events.push({
              type: 'request.created',
              actor: 'system',
              severity: 'high',
              requestId: replacement.id,
              resourceId: replacement.resourceId,
              reason: replacement.reason,
              policyIds: [replacement.route.policyId],
              data: { activationId: a.id, durationSeconds: left, replaces: requestId },
            });
          }
          await tx.audit.appendAll(events.map((event) => ({ event, at: now })));
          changed++;
        });
      }
      if (requestIds.some((id, i) => id !== stored.requestIds[i])) {
        const bumped = { ...a, version: a.version + 1 };
        if (!(await this.#deps.store.breakGlass.updateActivation(bumped, a.version, requestIds)))
          throw new PortcullisError('conflict', `Activation ${a.id} changed during recovery; restart again`);
      }
    }
    return changed;
  }

  // ------------------------------------------------------------ periodic pass

  /**
   * Closes confirmation windows that passed and ends activations whose access is over (hard expiry,
   * or every grant already ended). Run from the expiry loop on every replica; CAS makes it safe.
   */
  async tick(): Promise<void> {
    const now = this.#deps.clock.now();
    const waiting = await this.#deps.store.breakGlass.listActivations({
      states: ['initiated', 'awaiting_quorum'],
      limit: 1000,
    });
    for (const stored of waiting) await this.#expireWindow(stored, now);
    const active = await this.#deps.store.breakGlass.listActivations({ states: ['active'], limit: 1000 });
    for (const stored of active) {
      const a = stored.activation;
      if (a.expiresAt !== null && now >= a.expiresAt) {
        await this.#endActivation(a.id, null, 'expired', null);
        continue;
      }
      const requests = await Promise.all(stored.requestIds.map((id) => this.#deps.store.requests.get(id)));
      const anyLive = requests.some((r) => r && (r.state === 'approved' || isAccessLive(r, now)));
      if (requests.length > 0 && !anyLive)
        await this.#endActivation(a.id, null, 'revoked', null, 'every grant ended');
    }
    await this.#alertOverdueDrills(now);
  }

  /** At most hourly: a `drill_overdue` alert per overdue account, repeated daily (per replica). */
  async #alertOverdueDrills(now: number): Promise<void> {
    if (now - this.#overdueCheckedAt < 3600_000) return;
    this.#overdueCheckedAt = now;
    for (const a of await this.overview()) {
      const last = this.#overdueAlertedAt.get(a.accountId) ?? Number.NEGATIVE_INFINITY;
      if (!a.drillOverdue || now - last < 86_400_000) continue;
      this.#overdueAlertedAt.set(a.accountId, now);
      this.#alert(
        'drill_overdue',
        a.accountId,
        null,
        now,
        `Break-glass drill OVERDUE on ${a.accountId} (last: ${a.lastDrillAt ? new Date(a.lastDrillAt).toISOString() : 'never'})`,
      );
    }
  }

  // ------------------------------------------------------------ drills

  /**
   * Records a finished drill (by the initiator's handle): the client's checks (e.g. that a role
   * outside the scope was refused, that a login after the end failed) plus the server's own, which
   * it does not take on trust: the drill ended, its grants stayed inside the scope and ended on
   * time, and every step is in the audit log.
   */
  async recordDrill(
    activationId: string,
    handle: string,
    clientChecks: readonly DrillCheck[],
    from: RequestOrigin,
  ): Promise<{ id: string; passed: boolean; report: Record<string, unknown> }> {
    const stored = await this.#byHandle(activationId, handle, 'drill', from);
    await this.tick();
    const a = (await this.#load(activationId)).activation;
    if (!a.drill || !(a.state === 'ended' || a.state === 'reviewed')) {
      return this.#refuse(
        new PortcullisError(
          'invalid_transition',
          a.drill ? `The drill is ${a.state}, not ended yet` : 'This activation is not a drill',
          {
            state: a.state,
          },
        ),
        a.accountId,
        a.initiatorId,
        'drill',
        from,
        a,
      );
    }
    const now = this.#deps.clock.now();
    const account = this.account(a.accountId);
    const evidence = await collectEvidence(this.#deps.store, activationId, now);
    const types = new Set(evidence.auditEvents.map((e) => e.type));
    const toleranceMs = 5_000;
    const checks: DrillCheck[] = [
      {
        name: 'quorum',
        passed: a.confirmerIds.length + 1 >= a.quorum && !a.confirmerIds.includes(a.initiatorId),
        detail: `initiator ${a.initiatorId}, confirmers ${a.confirmerIds.join(', ')}, quorum ${a.quorum}`,
      },
      {
        name: 'grants within scope',
        passed:
          evidence.grants.length === a.scope.roles.length &&
          evidence.grants.every((g) => account.scope.roles.includes(g.role)) &&
          a.scope.resourceId === account.scope.resourceId,
        detail: `granted ${evidence.grants.map((g) => g.role).join(', ')} on ${a.scope.resourceId}; account scope ${account.scope.roles.join(', ')}`,
      },
      {
        name: 'access ended on time',
        passed:
          a.expiresAt !== null &&
          evidence.grants.length > 0 &&
          evidence.grants.every(
            (g) =>
              g.status === 'revoked' &&
              Date.parse(g.expiresAt) <= (a.expiresAt as number) + 1_000 &&
              g.revokedAt !== null &&
              Date.parse(g.revokedAt) <=
                Math.min(Date.parse(g.expiresAt), a.expiresAt as number) + toleranceMs,
          ),
        detail: evidence.grants
          .map((g) => `${g.grantId}: ${g.status}, until ${g.expiresAt}, revoked ${g.revokedAt ?? 'never'}`)
          .join('; '),
      },
      ...[
        'break_glass.initiated',
        'break_glass.confirmed',
        'break_glass.activated',
        'grant.activated',
        'grant.revocation_completed',
        'break_glass.ended',
      ].map((type) => ({ name: `audit: ${type}`, passed: types.has(type as never), detail: type })),
    ];
    const all = [
      ...checks.map((c) => ({ ...c, by: 'server' })),
      ...clientChecks.map((c) => ({ ...c, by: 'client' })),
    ];
    const passed = all.every((c) => c.passed) && clientChecks.length > 0;
    const report = {
      drillOf: a.accountId,
      activationId,
      recordedAt: new Date(now).toISOString(),
      passed,
      checks: all,
      activation: {
        initiatedAt: a.initiatedAt,
        activatedAt: a.activatedAt,
        expiresAt: a.expiresAt,
        endedAt: a.endedAt,
      },
      auditEvents: evidence.auditEvents.map((e) => ({ seq: e.seq, type: e.type, at: e.at, actor: e.actor })),
    };
    const id = this.#deps.newId();
    await this.#deps.store.transaction(async (tx) => {
      await tx.breakGlass.insertDrill({
        id,
        accountId: a.accountId,
        activationId,
        at: now,
        passed,
        report: JSON.stringify(report),
      });
      await tx.audit.append(
        {
          type: 'break_glass.drill_recorded',
          actor: custodianActor(stored.activation.initiatorId),
          severity: 'high',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          resourceId: a.scope.resourceId,
          data: {
            accountId: a.accountId,
            activationId,
            drillId: id,
            passed,
            failed: all.filter((c) => !c.passed).map((c) => c.name),
          },
        },
        now,
      );
    });
    this.#alert(
      'drill_completed',
      a.accountId,
      a,
      now,
      `Break-glass drill on ${a.accountId} ${passed ? 'PASSED' : 'FAILED'}`,
    );
    return { id, passed, report };
  }

  // ------------------------------------------------------------ overview

  overview(): Promise<AccountOverview[]> {
    return accountOverview(this.#deps.store, this.#deps.settings, this.#deps.clock.now());
  }
}
