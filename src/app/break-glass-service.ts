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
 *
 * The use cases live in `src/app/break-glass/`, one module per concern, as functions of a
 * {@link BreakGlassContext}; this class builds that context and delegates, so callers keep one
 * entry point.
 */
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Activation } from '../break-glass/activation.js';
import type { BreakGlassSettings, ConfiguredEmergencyAccount } from '../config/break-glass-config.js';
import type { RequestOrigin } from '../core/audit-event.js';
import type { Principal } from '../core/principal.js';
import * as lifecycle from './break-glass/activation-lifecycle.js';
import {
  type BreakGlassContext,
  type BreakGlassServiceDeps,
  configuredAccount,
  createBreakGlassContext,
} from './break-glass/context.js';
import * as drills from './break-glass/drills.js';
import * as initiator from './break-glass/initiator-operations.js';
import * as overview from './break-glass/overview.js';
import * as periodic from './break-glass/periodic-pass.js';
import * as recovery from './break-glass/recovery.js';
import * as reviews from './break-glass/review.js';
import * as securityKeys from './break-glass/security-keys.js';
import type {
  CustodianProof,
  DrillCheck,
  EmergencyGrantAccess,
  InitiateRequest,
} from './break-glass/types.js';
import type { AccountOverview } from './break-glass-admin.js';
import type { EnrolledSecurityKey, StoredActivation } from './break-glass-ports.js';

export type { BreakGlassServiceDeps } from './break-glass/context.js';
export { emergencyPrincipalId } from './break-glass/identities.js';
export type {
  CustodianProof,
  DrillCheck,
  EmergencyGrantAccess,
  InitiateRequest,
} from './break-glass/types.js';

export class BreakGlassService {
  readonly #ctx: BreakGlassContext;

  constructor(deps: BreakGlassServiceDeps) {
    this.#ctx = createBreakGlassContext(deps);
  }

  get settings(): BreakGlassSettings {
    return this.#ctx.deps.settings;
  }

  account(accountId: string): ConfiguredEmergencyAccount {
    return configuredAccount(this.#ctx, accountId);
  }

  // ------------------------------------------------------------ security keys

  /** Options for `navigator.credentials.get()`, for a custodian who signs in with a security key. */
  securityKeyOptions(accountId: string, custodianId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return securityKeys.securityKeyOptions(this.#ctx, accountId, custodianId);
  }

  /**
   * Starts enrolling a security key: the custodian proves themselves with their passphrase and
   * TOTP (or an existing key) first. Returns the options for `navigator.credentials.create()`.
   */
  securityKeyRegistrationOptions(
    accountId: string,
    proof: CustodianProof,
    from: RequestOrigin,
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    return securityKeys.securityKeyRegistrationOptions(this.#ctx, accountId, proof, from);
  }

  /** Finishes the enrolment: verifies the new credential (challenge bound to the custodian), stores it, audits it. */
  enrolSecurityKey(
    accountId: string,
    custodianId: string,
    response: RegistrationResponseJSON,
    from: RequestOrigin,
  ): Promise<{ credentialId: string }> {
    return securityKeys.enrolSecurityKey(this.#ctx, accountId, custodianId, response, from);
  }

  /** The security keys enrolled for an account (administrators only). */
  listSecurityKeys(principal: Principal, accountId: string): Promise<EnrolledSecurityKey[]> {
    return securityKeys.listSecurityKeys(this.#ctx, principal, accountId);
  }

  /** Revokes one security key (administrators only): deleted, audited and alerted. */
  revokeSecurityKey(
    principal: Principal,
    accountId: string,
    credentialId: string,
    from: RequestOrigin,
  ): Promise<EnrolledSecurityKey> {
    return securityKeys.revokeSecurityKey(this.#ctx, principal, accountId, credentialId, from);
  }

  // ------------------------------------------------------------ initiate and confirm

  /**
   * A custodian opens an activation. Returns it with the initiator's **handle**: a random bearer
   * secret, shown once, that alone lets them see status, fetch the credentials and end the access.
   */
  initiate(input: InitiateRequest, from: RequestOrigin): Promise<{ activation: Activation; handle: string }> {
    return lifecycle.initiate(this.#ctx, input, from);
  }

  /** Another custodian confirms; reaching the quorum grants the access at once. */
  confirm(
    activationId: string,
    accountId: string | undefined,
    proof: CustodianProof,
    from: RequestOrigin,
  ): Promise<Activation> {
    return lifecycle.confirm(this.#ctx, activationId, accountId, proof, from);
  }

  // ------------------------------------------------------------ the initiator's handle, and cancel

  status(activationId: string, handle: string, from: RequestOrigin): Promise<StoredActivation> {
    return initiator.status(this.#ctx, activationId, handle, from);
  }

  /**
   * The access credentials, for the initiator only (by handle): the person who will use the access
   * is the one who declared the reason and the incident; confirmers approve, they do not receive.
   * Every showing is audited before it happens.
   */
  credentials(activationId: string, handle: string, from: RequestOrigin): Promise<EmergencyGrantAccess[]> {
    return initiator.credentials(this.#ctx, activationId, handle, from);
  }

  /** The initiator ends the access early (by handle): grants are released at once. */
  end(activationId: string, handle: string, from: RequestOrigin): Promise<Activation> {
    return initiator.end(this.#ctx, activationId, handle, from);
  }

  /** Withdraws an attempt before it is active: by the initiator's handle or any custodian's proof. */
  cancel(
    activationId: string,
    auth: { readonly handle: string } | { readonly proof: CustodianProof },
    from: RequestOrigin,
  ): Promise<Activation> {
    return initiator.cancel(this.#ctx, activationId, auth, from);
  }

  // ------------------------------------------------------------ review

  /** Whether `principal` may record reviews: an admin or a member of `break_glass.reviewer_groups`. */
  mayReview(principal: Principal): boolean {
    return reviews.mayReview(this.#ctx, principal);
  }

  /**
   * Records the review of an ended activation. The reviewer signs in normally (SSO) and must not
   * be a participant: a custodian whose configured `principal` is the reviewer counts as that
   * custodian, so the pure rule refuses them.
   */
  review(activationId: string, reviewer: Principal, notes: string, from: RequestOrigin): Promise<Activation> {
    return reviews.review(this.#ctx, activationId, reviewer, notes, from);
  }

  // ------------------------------------------------------------ boot

  /**
   * Run at boot **before** `AccessService.recover()`, which provisions requests a crash left
   * `approved`: an emergency request must never outlive its activation's hard expiry. Requests of
   * activations that are over are cancelled; the others get only the seconds still left.
   */
  prepareRecovery(): Promise<number> {
    return recovery.prepareRecovery(this.#ctx);
  }

  // ------------------------------------------------------------ periodic pass

  /**
   * Closes confirmation windows that passed and ends activations whose access is over (hard expiry,
   * or every grant already ended). Run from the expiry loop on every replica; CAS makes it safe.
   */
  tick(): Promise<void> {
    return periodic.tick(this.#ctx);
  }

  // ------------------------------------------------------------ drills

  /**
   * Records a finished drill (by the initiator's handle): the client's checks (e.g. that a role
   * outside the scope was refused, that a login after the end failed) plus the server's own, which
   * it does not take on trust: the drill ended, its grants stayed inside the scope and ended on
   * time, and every step is in the audit log.
   */
  recordDrill(
    activationId: string,
    handle: string,
    clientChecks: readonly DrillCheck[],
    from: RequestOrigin,
  ): Promise<{ id: string; passed: boolean; report: Record<string, unknown> }> {
    return drills.recordDrill(this.#ctx, activationId, handle, clientChecks, from);
  }

  // ------------------------------------------------------------ overview

  overview(): Promise<AccountOverview[]> {
    return overview.overview(this.#ctx);
  }

  /** Ended activations whose review is owed, for those who may review ({@link mayReview}). */
  awaitingReview(): Promise<Activation[]> {
    return overview.awaitingReview(this.#ctx);
  }
}
