/**
 * The ports the application layer needs from the edges. Adapters (storage dialects, provisioners,
 * policy engine, token signer, identity providers) implement these; the composition root wires them.
 */
import type { AccessRequest, RequestState } from '../core/access-request.js';
import type { AuditEventInput } from '../core/audit-event.js';
import type { DriftKind, TargetHolding } from '../core/drift.js';
import type { Artefacts, Grant, GrantStatus } from '../core/grant.js';
import type {
  PolicyAction,
  PolicyContext,
  PolicyDecision,
  RequestDecision,
} from '../core/policy-decision.js';
import type { Principal, PrincipalLock, PrincipalStanding } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import type { StandingAccess } from '../core/standing-access.js';
import type { BreakGlassRepository } from './break-glass-ports.js';

// ---------------------------------------------------------------- storage

/** Where a newest-first listing of requests continues: strictly older than this request. */
export interface RequestListPosition {
  readonly createdAt: number;
  readonly id: string;
}

export interface RequestFilter {
  /** Requests made by any of these principal ids. */
  readonly requesterIds?: readonly string[];
  readonly states?: readonly RequestState[];
  readonly resourceId?: string;
  readonly limit?: number;
  /** Only requests after this one in newest-first order (keyset pagination). */
  readonly before?: RequestListPosition;
}

/** Requests with a live mark of this kind in the ephemeral store (keyed by request id) are left out. */
export interface UnmarkedBy {
  readonly kind: string;
  readonly now: number;
}

export interface RequestRepository {
  get(id: string): Promise<AccessRequest | undefined>;
  insert(request: AccessRequest): Promise<void>;
  /**
   * Compare-and-swap: writes `request` only if the stored row still has `expectedVersion`.
   * Returns false when another writer got there first (the caller re-reads and retries).
   */
  update(request: AccessRequest, expectedVersion: number): Promise<boolean>;
  list(filter: RequestFilter): Promise<AccessRequest[]>;
  /** Active requests whose `expires_at` is at or before `now`, oldest first. */
  listExpired(now: number, limit: number): Promise<AccessRequest[]>;
  /** Pending requests whose review deadline (`reviewBy`) is at or before `now`, oldest first. */
  listPastReviewDeadline(now: number, limit: number): Promise<AccessRequest[]>;
  /** Pending requests made at or before `before`, oldest first; without those `unmarked` names. */
  listPendingMadeBefore(before: number, limit: number, unmarked?: UnmarkedBy): Promise<AccessRequest[]>;
  /** Active requests ending in (`after`, `until`], soonest first; without those `unmarked` names. */
  listActiveEndingBetween(
    after: number,
    until: number,
    limit: number,
    unmarked?: UnmarkedBy,
  ): Promise<AccessRequest[]>;
  /** Earliest review deadline among pending requests, or null. */
  nextReviewDeadline(): Promise<number | null>;
  /** Approved requests still waiting for provisioning (e.g. after a crash). */
  listApprovedAwaitingActivation(limit: number): Promise<AccessRequest[]>;
  /** Earliest `expires_at` among active requests, or null. */
  nextExpiry(): Promise<number | null>;
  countByState(): Promise<Record<string, number>>;
}

export interface GrantRepository {
  get(id: string): Promise<Grant | undefined>;
  getByRequest(requestId: string): Promise<Grant | undefined>;
  insert(grant: Grant): Promise<void>;
  update(grant: Grant): Promise<void>;
  /**
   * Compare-and-swap on the status: writes `grant` only if the stored row's status is one of
   * `expected`. Returns false when another writer moved it first (e.g. a concurrent revoker).
   */
  updateIfStatus(grant: Grant, expected: readonly GrantStatus[]): Promise<boolean>;
  /** Grants held by any of these principal ids (one person's linked identities), newest first. */
  listForPrincipals(principalIds: readonly string[], statuses?: readonly GrantStatus[]): Promise<Grant[]>;
  /**
   * Newest first. With `visibleTo`, only grants held by one of its principal ids or on one of its
   * resources (the view of someone who is not an administrator).
   */
  list(filter: {
    statuses?: readonly GrantStatus[];
    resourceId?: string;
    limit?: number;
    visibleTo?: { readonly principalIds: readonly string[]; readonly resourceIds: readonly string[] };
  }): Promise<Grant[]>;
  /**
   * Every grant of a resource that ended (or failed to start) but whose deadline is after
   * `expiringAfter`: what may still be usable where revocation has not reached (SSH certificates).
   * Not capped: the set is bounded by the grants ended within one maximum grant duration.
   */
  listEndedBeforeTheirTime(resourceId: string, expiringAfter: number): Promise<Grant[]>;
  /** Grants in `revoking`/`revoke_failed` whose next attempt is due. */
  listDueRevocations(now: number, limit: number): Promise<Grant[]>;
  /** Earliest due revocation attempt, or null. */
  nextRevocationAttempt(): Promise<number | null>;
  countByStatus(): Promise<Record<string, number>>;
  /** Sealed (encrypted) credentials for the requester, kept apart from the artefacts. */
  setSealedCredentials(grantId: string, sealed: string | null): Promise<void>;
  getSealedCredentials(grantId: string): Promise<string | null>;
}

/** A principal as stored: what the last sign-in asserted, and whether it may act. */
export type StoredPrincipal = Principal & {
  readonly groupsAssertedAt: number;
  /** 0 for a row made by a deactivation or lock before any sign-in. */
  readonly lastLoginAt: number;
  /** Deprovisioned through SCIM. */
  readonly disabled: boolean;
  readonly lock: PrincipalLock | null;
  /**
   * When it was last locked or deactivated: bearer tokens issued until then are refused for good,
   * also after an unlock or reactivation. Null if never.
   */
  readonly sessionsValidAfter: number | null;
};

export interface PrincipalRepository {
  /**
   * Inserts or refreshes a principal at login (groups as asserted now). The row's `idp`/`subject`
   * are those of `principal.id` (the canonical identity of a linked one), unique per identity.
   * `disabled` and the lock are kept.
   */
  upsert(principal: Principal, now: number): Promise<void>;
  get(id: string): Promise<StoredPrincipal | undefined>;
  /**
   * Disables (deprovisioned by SCIM) or re-enables a principal. A principal never seen at a login
   * gets a bare row (subject as its name, no groups), so its first login is refused too. Disabling
   * also sets `sessionsValidAfter` to `now`.
   */
  setDisabled(id: string, disabled: boolean, now: number): Promise<void>;
  /** Locks (an administrator; sets `sessionsValidAfter` too) or unlocks (`null`) a principal; a bare row as for `setDisabled`. */
  setLock(id: string, lock: PrincipalLock | null, now: number): Promise<void>;
  /**
   * Inside a transaction: whether the principal may act. It writes the row (unchanged), so it
   * waits for a concurrent deprovisioning or lock to commit and then sees it, on either database.
   * A principal without a row is `enabled`.
   */
  lockStanding(id: string): Promise<PrincipalStanding>;
  /**
   * Replaces the groups of an existing principal (a SCIM membership change); false if there is
   * none. `groupsAssertedAt` is kept: only a sign-in or an IdP token (`upsert`) restarts the
   * `groups_max_age` clock, since a push vouches for the groups it changes, not for the others.
   */
  setGroups(id: string, groups: readonly string[]): Promise<boolean>;
  /** Principals that may not act, most recently locked first, then by id; at most `limit`. */
  listRestricted(standing: 'locked' | 'disabled', limit: number): Promise<StoredPrincipal[]>;
  /** Enabled, unlocked principals holding any of `groups` (as last asserted), by id; at most `limit`. */
  membersOf(groups: readonly string[], limit: number): Promise<StoredPrincipal[]>;
}

/**
 * Where each notification channel has got to in the audit log, and which replica delivers for it.
 * A replica holds a channel's lease while it delivers; another takes over once the lease lapses.
 */
export interface NotificationCursorRepository {
  /**
   * Takes or renews the lease of `channel` for `owner` until `leaseUntil` and returns the channel's
   * position (the last audit sequence handled), or undefined while another owner's lease runs. A
   * channel never seen starts at `startAt`.
   */
  claim(
    channel: string,
    owner: string,
    now: number,
    leaseUntil: number,
    startAt: number,
  ): Promise<number | undefined>;
  /** Moves the position forward and renews the lease; false if `owner` no longer holds it. */
  advance(channel: string, owner: string, position: number, leaseUntil: number): Promise<boolean>;
  /** Gives the lease up (shutdown), keeping the position. */
  release(channel: string, owner: string): Promise<void>;
  /** The channel's position without taking its lease; undefined for a channel never seen. */
  position(channel: string): Promise<number | undefined>;
}

/** A user an identity provider provisioned through SCIM: only the link and what SCIM needs. */
export interface ScimUserRecord {
  readonly id: string;
  readonly idp: string;
  /** The principal's subject at that IdP: the principal is `idp:subject`. */
  readonly subject: string;
  readonly userName: string;
  readonly externalId: string | null;
  readonly active: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly version: number;
}

export interface ScimGroupRecord {
  readonly id: string;
  readonly idp: string;
  readonly displayName: string;
  readonly externalId: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly version: number;
}

/** Equality conditions, all of which must hold (a SCIM `eq` filter joined with `and`). */
export interface ScimQuery {
  readonly id?: string;
  /** Compared case-insensitively (userName is not case-exact). */
  readonly userName?: string;
  readonly externalId?: string;
  readonly displayName?: string;
}

export interface ScimPage<T> {
  readonly total: number;
  readonly items: readonly T[];
}

/** SCIM users, groups and memberships, always within one IdP. */
export interface ScimRepository {
  getUser(idp: string, id: string): Promise<ScimUserRecord | undefined>;
  /** The users of this IdP among `ids` (unknown ids and other IdPs' users are left out). */
  getUsers(idp: string, ids: readonly string[]): Promise<ScimUserRecord[]>;
  findUsers(idp: string, query: ScimQuery, offset: number, limit: number): Promise<ScimPage<ScimUserRecord>>;
  /** Throws `conflict` when the userName or subject is taken at this IdP. */
  insertUser(user: ScimUserRecord): Promise<void>;
  /** Compare-and-swap on `version`; throws `conflict` on a taken userName. */
  updateUser(user: ScimUserRecord, expectedVersion: number): Promise<boolean>;
  deleteUser(idp: string, id: string): Promise<void>;
  getGroup(idp: string, id: string): Promise<ScimGroupRecord | undefined>;
  findGroups(
    idp: string,
    query: ScimQuery,
    offset: number,
    limit: number,
  ): Promise<ScimPage<ScimGroupRecord>>;
  insertGroup(group: ScimGroupRecord): Promise<void>;
  updateGroup(group: ScimGroupRecord, expectedVersion: number): Promise<boolean>;
  deleteGroup(idp: string, id: string): Promise<void>;
  /** Members (id and userName) of each group, by group id. */
  members(groupIds: readonly string[]): Promise<Map<string, { id: string; userName: string }[]>>;
  /** Display names of the groups each user is in, by user id (every id present). */
  groupNamesOf(userIds: readonly string[]): Promise<Map<string, string[]>>;
  addMembers(groupId: string, userIds: readonly string[]): Promise<void>;
  /** Removes the given members, or all of them when `userIds` is undefined. */
  removeMembers(groupId: string, userIds?: readonly string[]): Promise<void>;
  /** Removes the user from every group. */
  removeFromAllGroups(userId: string): Promise<void>;
}

export interface AuditRecord extends AuditEventInput {
  readonly seq: number;
  readonly id: string;
  readonly at: number;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditCheckpoint {
  readonly seq: number;
  readonly at: number;
  readonly headHash: string;
  readonly kid: string;
  /** base64url Ed25519 signature over the canonical checkpoint body. */
  readonly signature: string;
}

export interface AuditAppender {
  /** Appends to the hash chain inside the current transaction; throws audit_unavailable on failure. */
  append(event: AuditEventInput, at: number): Promise<AuditRecord>;
  /** Appends several events in order with one lock of the chain head (cheaper than one by one). */
  appendAll(
    events: readonly { readonly event: AuditEventInput; readonly at: number }[],
  ): Promise<AuditRecord[]>;
}

export interface AuditReader {
  /** Events in sequence order starting after `afterSeq` (and after the retention floor). */
  read(afterSeq: number, limit: number): Promise<AuditRecord[]>;
  /** The chain's head and the retention floor, read together (an export needs both of one moment). */
  head(): Promise<{ seq: number; hash: string; prunedThrough: number }>;
  /** The last sequence removed by retention; 0 while nothing was. Its checkpoint anchors the rest. */
  prunedThrough(): Promise<number>;
  /** The newest checkpoint with seq ≥ 1 and ≤ `maxSeq` signed before `before` (epoch ms). */
  lastCheckpointSignedBefore(before: number, maxSeq: number): Promise<AuditCheckpoint | undefined>;
  checkpoints(): Promise<AuditCheckpoint[]>;
  insertCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  lastCheckpoint(): Promise<AuditCheckpoint | undefined>;
}

/** Removal of old audit events under the retention floor (docs/audit.md#retention). */
export interface AuditRetentionRepository {
  /**
   * Moves the floor up to `throughSeq`, which may not pass the head; false when the floor already
   * is there or above, or the head is below. Readers and exports see only events after the floor from then on.
   */
  markPrunedThrough(throughSeq: number): Promise<boolean>;
  /** Deletes up to `limit` of the lowest events at or under the floor; how many it deleted. */
  deletePrunedEvents(limit: number): Promise<number>;
  /** Deletes checkpoints below the floor; the one at the floor stays, as the anchor of the rest. */
  deletePrunedCheckpoints(): Promise<number>;
}

export interface StoredKey {
  readonly kid: string;
  /** `recovery`: the public half of the offline recovery key only (no private half, never published). */
  readonly purpose: 'token' | 'audit' | 'recovery';
  readonly alg: string;
  readonly publicJwk: string;
  /** Private JWK sealed with the key-encryption key. */
  readonly sealedPrivateJwk: string;
  readonly createdAt: number;
  /** Signs new material while true; at most one active key per purpose. */
  readonly active: boolean;
  /** Stays published (JWKS) until then, so tokens already issued keep verifying. */
  readonly publishUntil: number | null;
}

export interface KeyRepository {
  list(purpose: StoredKey['purpose']): Promise<StoredKey[]>;
  insert(key: StoredKey): Promise<void>;
  /** Marks every other key of the purpose inactive, published until `publishUntil`. */
  retireOthers(purpose: StoredKey['purpose'], activeKid: string, publishUntil: number): Promise<void>;
  /**
   * Retires `kid` if it is still active (published until `publishUntil`); false when it is not
   * (another process retired it first). The row lock it takes orders concurrent rotations.
   */
  retireIfActive(purpose: StoredKey['purpose'], kid: string, publishUntil: number): Promise<boolean>;
  /**
   * Makes `kid` the active key if it is still inactive and published without an end (a next key
   * published ahead of its rotation); false when it is not (another process promoted or retired it).
   */
  activateIfNext(purpose: StoredKey['purpose'], kid: string, publishedWithoutEnd: number): Promise<boolean>;
  deleteUnpublished(purpose: StoredKey['purpose'], now: number): Promise<number>;
}

/** Short-lived values (OIDC login state, one-time CLI login codes, live gateway sessions and their cancel keys), shared by replicas. */
export interface EphemeralStore {
  put(kind: string, key: string, value: string, expiresAt: number): Promise<void>;
  /** Stores the value unless a live one is there; true when this call stored it (a claim, once). */
  putIfAbsent(kind: string, key: string, value: string, now: number, expiresAt: number): Promise<boolean>;
  /** Returns and deletes the value atomically; undefined if absent or expired. Single use. */
  take(kind: string, key: string, now: number): Promise<string | undefined>;
  /** Returns the value without using it up; undefined if absent or expired. */
  peek(kind: string, key: string, now: number): Promise<string | undefined>;
  /** Every live value of a kind, by key (e.g. each replica's published gateway sessions). */
  list(kind: string, now: number): Promise<{ readonly key: string; readonly value: string }[]>;
  purgeExpired(now: number): Promise<number>;
}

/** Everything written in one database transaction. */
export interface Transaction {
  readonly requests: RequestRepository;
  readonly grants: GrantRepository;
  readonly principals: PrincipalRepository;
  readonly scim: ScimRepository;
  readonly audit: AuditAppender;
  readonly keys: KeyRepository;
  readonly ephemeral: EphemeralStore;
  readonly breakGlass: BreakGlassRepository;
  readonly notificationCursors: NotificationCursorRepository;
  readonly auditRetention: AuditRetentionRepository;
}

/**
 * A transaction whose audit events are collected and appended at its end, after every other write
 * (see `AccessService.endAllAccessOf`): the chain head is then locked last, like everywhere else,
 * and never while the transaction still waits for a row another transaction holds.
 */
export type AuditLastTransaction = Omit<Transaction, 'audit'> & {
  readonly audit: {
    append(event: AuditEventInput, at: number): Promise<unknown>;
    appendAll(events: readonly { readonly event: AuditEventInput; readonly at: number }[]): Promise<unknown>;
  };
};

export interface Store extends Omit<Transaction, 'audit'> {
  readonly dialect: 'sqlite' | 'postgres';
  readonly auditLog: AuditReader;
  /**
   * This installation's id, made once with the schema and kept by backups: the mark Portcullis puts
   * on what it creates in targets, so that reconciliation never takes another installation's.
   */
  installationId(): Promise<string>;
  /** Runs `work` in one transaction; any throw rolls everything back, audit events included. */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- policy

export interface PolicyEngine {
  /** Decides a `request` action and, when allowed, the approval route from the policy annotations. */
  decideRequest(
    principal: Principal,
    resource: ResourceDefinition,
    role: RoleDefinition,
    context: PolicyContext,
  ): RequestDecision;
  /** Decides `approve`, `revoke` or `view_audit`. */
  decide(
    principal: Principal,
    action: Exclude<PolicyAction, 'request'>,
    resource: ResourceDefinition | null,
    role: RoleDefinition | null,
    context: PolicyContext,
  ): PolicyDecision;
}

// ---------------------------------------------------------------- provisioning

export interface ProvisionContext {
  readonly grant: Grant;
  readonly resource: ResourceDefinition;
  readonly role: RoleDefinition;
  /**
   * Who the access is for, as far as a target may need to find them in its own directory (the
   * webhook provisioner sends it); given to `apply` when the principal is known. `revoke` works
   * from the grant's artefacts alone.
   */
  readonly principal?: ProvisionedPrincipal;
  /**
   * Set when reconciliation takes back access the target holds against Portcullis' records (a
   * grant it does not know, or access back after its revocation): a new operation, not a retry
   * of the grant's own revocation.
   */
  readonly takeBack?: { readonly run: string; readonly drift: DriftKind };
}

/** The least a target needs to know about the person it provisions for. */
export interface ProvisionedPrincipal {
  readonly idp: string;
  readonly subject: string;
  readonly email: string | null;
}

export interface ProvisionResult {
  /** Non-secret facts needed to take the access back (stored in the grant). */
  readonly artefacts: Artefacts;
  /** Secrets for the requester (e.g. a connection string); sealed at rest, shown only to them. */
  readonly credentials?: Readonly<Record<string, string>>;
}

/**
 * Makes a grant real in a target system and takes it back. Both operations are idempotent: applying
 * or revoking the same grant twice has the effect of once, and revoking what is already gone succeeds.
 */
export interface Provisioner {
  readonly kind: string;
  /**
   * True when `apply` changes nothing outside Portcullis, does no I/O and returns no credentials
   * (the token provisioner): an approval and the activation it allows then commit in one
   * transaction. False for provisioners that act on a target, whose apply may be slow or fail.
   */
  readonly activatesInProcess: boolean;
  /** Picks names for the grant's artefacts before anything is created, so a retry after a crash reuses them. */
  plan(grant: Pick<Grant, 'id'>, resource: ResourceDefinition): Artefacts;
  apply(context: ProvisionContext): Promise<ProvisionResult>;
  revoke(context: ProvisionContext): Promise<void>;
  /**
   * What the target really holds for this resource, for reconciliation (src/app/reconciler.ts):
   * every piece of access that names a grant, with what `revoke` needs to take it back. Null when
   * the kind keeps nothing in a target to compare (`token`).
   */
  inspect(resource: ResourceDefinition): Promise<readonly TargetHolding[] | null>;
  /**
   * Access the target gives without any grant (members of the roles this resource's roles map
   * to, superusers), for reconciliation to report; absent for a kind that cannot tell, null for a
   * resource whose target is not asked.
   */
  standing?(resource: ResourceDefinition): Promise<readonly StandingAccess[] | null>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- secrets

/** Authenticated encryption of small secrets at rest with the key-encryption key. */
export interface SecretBox {
  seal(plaintext: string): Promise<string>;
  open(sealed: string): Promise<string>;
}

/** Finds the provisioner for a resource kind. */
export interface ProvisionerLookup {
  get(kind: string): Provisioner;
}

// ---------------------------------------------------------------- tokens

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  /** Milliseconds since the epoch; never after the grant's end. */
  readonly expiresAt: number;
}

export interface AccessTokenIssuer {
  issueAccessToken(input: {
    grant: Grant;
    principal: Principal;
    now: number;
    ttlSeconds: number;
  }): Promise<IssuedToken>;
}

// ---------------------------------------------------------------- observability

/** What the application layer reports; the Prometheus adapter implements it. */
export interface AccessMetrics {
  approvalLatency(seconds: number): void;
  revocationLag(seconds: number): void;
  revocationFailed(resourceId: string): void;
  activationLatency(seconds: number): void;
}

/** The server log, for what only operators should read (e.g. a target's own error text). Pino fits. */
export interface OperatorLog {
  warn(fields: Record<string, unknown>, message: string): void;
}
