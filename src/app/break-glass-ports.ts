/**
 * What the break-glass service needs from storage. Implemented by `src/storage/break-glass-repository.ts`
 * on both dialects; reached through `Transaction.breakGlass` so that every change commits together
 * with its audit events.
 */
import type { Activation, ActivationState } from '../break-glass/activation.js';
import type { StoredSecurityKey } from '../break-glass/ports.js';
import type { Seal } from '../break-glass/sealed-shares.js';

/** One custodian's enrolment for one account. The TOTP secret is sealed with the KEK. */
export interface StoredCustodian {
  readonly accountId: string;
  readonly custodianId: string;
  readonly passphraseHash: string;
  readonly sealedTotpSecret: string;
  readonly enrolledAt: number;
  /** When the TOTP secret was last replaced by `break-glass rotate`; null if never. */
  readonly rotatedAt: number | null;
}

export interface StoredActivation {
  readonly activation: Activation;
  /** SHA-256 (base64url) of the initiator's activation handle; the handle itself is never stored. */
  readonly handleHash: string;
  /** Access requests (one per role) created when the quorum was reached. */
  readonly requestIds: readonly string[];
}

/** An enrolled security key as an administrator sees it: whose it is and when it came; no key material. */
export interface EnrolledSecurityKey {
  readonly credentialId: string;
  readonly accountId: string;
  readonly custodianId: string;
  readonly aaguid: string;
  readonly backedUp: boolean;
  readonly transports: readonly string[];
  readonly createdAt: number;
}

/** A finished drill and its report (JSON); at most one per drill activation. */
export interface DrillRecord {
  readonly id: string;
  readonly accountId: string;
  readonly activationId: string;
  /** When the drill's activation ended (not when the report was posted). */
  readonly at: number;
  readonly passed: boolean;
  readonly report: string;
}

export interface BreakGlassRepository {
  getCustodian(accountId: string, custodianId: string): Promise<StoredCustodian | undefined>;
  listCustodians(accountId: string): Promise<StoredCustodian[]>;
  /** Inserts or replaces an enrolment; a replaced one forgets its last used TOTP step. */
  upsertCustodian(custodian: StoredCustodian): Promise<void>;
  /**
   * Atomically claims TOTP `timeStep` for the custodian: true only if it is later than every step
   * claimed before (one conditional UPDATE, so two replicas cannot both accept a code).
   */
  claimTimeStep(accountId: string, custodianId: string, timeStep: number): Promise<boolean>;
  getSeal(accountId: string): Promise<Seal | undefined>;
  putSeal(seal: Seal): Promise<void>;
  getActivation(id: string): Promise<StoredActivation | undefined>;
  insertActivation(stored: StoredActivation): Promise<void>;
  /** Compare-and-swap on `version`; false when another writer got there first. */
  updateActivation(
    activation: Activation,
    expectedVersion: number,
    requestIds?: readonly string[],
  ): Promise<boolean>;
  listActivations(filter: {
    readonly accountId?: string;
    readonly states?: readonly ActivationState[];
    readonly limit?: number;
  }): Promise<StoredActivation[]>;
  /** Guessing counters (JSON) under `key`, with their version for compare-and-swap. */
  getGuessing(key: string): Promise<{ state: string; version: number } | undefined>;
  /** Writes the counters if the stored version is still `expectedVersion` (null: not yet stored). */
  putGuessing(key: string, state: string, expectedVersion: number | null): Promise<boolean>;
  /** The custodian's enrolled security keys (public material only). */
  listSecurityKeys(accountId: string, custodianId: string): Promise<StoredSecurityKey[]>;
  insertSecurityKey(
    accountId: string,
    custodianId: string,
    key: StoredSecurityKey & { readonly aaguid: string; readonly backedUp: boolean },
    at: number,
  ): Promise<void>;
  /** Every security key enrolled for the account: by custodian, then oldest first. */
  listAccountSecurityKeys(accountId: string): Promise<EnrolledSecurityKey[]>;
  /**
   * Deletes the account's security keys that match: one credential, one custodian's, or (empty
   * filter) all of them. Returns the keys deleted.
   */
  deleteSecurityKeys(
    accountId: string,
    filter: { readonly custodianId?: string; readonly credentialId?: string },
  ): Promise<EnrolledSecurityKey[]>;
  /** Compare-and-swap of the signature counter: false when it is no longer `expected`. */
  updateSecurityKeyCounter(credentialId: string, expected: number, next: number): Promise<boolean>;
  /** Stores a drill; `drill_already_recorded` when its activation already has one. */
  insertDrill(drill: DrillRecord): Promise<void>;
  getDrillByActivation(activationId: string): Promise<DrillRecord | undefined>;
  /** The latest drill, passed or failed. */
  lastDrill(accountId: string): Promise<DrillRecord | undefined>;
  /** The latest drill that passed: the only kind that keeps an account's drills fresh. */
  lastPassedDrill(accountId: string): Promise<DrillRecord | undefined>;
  listDrills(accountId: string, limit: number): Promise<DrillRecord[]>;
}
