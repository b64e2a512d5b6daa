/**
 * The access use cases: request, review, activate, revoke, release, cancel, expire. Each one reads,
 * applies a pure domain function, and writes the new state with its audit events in one
 * transaction (compare-and-swap on the request's version, retried a bounded number of times).
 * Talking to target systems (provisioning) happens outside those transactions.
 */

import type { AccessRequest } from '../core/access-request.js';
import * as core from '../core/access-request.js';
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import * as grants from '../core/grant.js';
import type { IdentityLinks } from '../core/identity-links.js';
import type { ApprovalRoute, PolicyContext } from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import { failureReference } from './failure-reference.js';
import { type GatewayEndpoint, gatewayCredentials } from './gateway-credentials.js';
import type {
  AccessMetrics,
  AccessTokenIssuer,
  AuditLastTransaction,
  IssuedToken,
  OperatorLog,
  PolicyEngine,
  Provisioner,
  ProvisionerLookup,
  RequestListPosition,
  SecretBox,
  Store,
  Transaction,
} from './ports.js';
import { standingRefusal } from './principal-standing.js';
import { recordSecurityEvent } from './security-events.js';

export interface AccessServiceDeps {
  readonly store: Store;
  readonly policy: PolicyEngine;
  readonly provisioners: ProvisionerLookup;
  readonly resources: ReadonlyMap<string, ResourceDefinition>;
  readonly secrets: SecretBox;
  readonly tokens: AccessTokenIssuer;
  readonly metrics: AccessMetrics;
  readonly clock: Clock;
  readonly newId: () => string;
  /** `{hour, weekday}` of an instant in the configured time zone. */
  readonly localTime: (now: number) => { hour: number; weekday: string };
  /** Portcullis groups with full administrative rights. */
  readonly adminGroups: readonly string[];
  /**
   * The configured `identity_links`: a request or grant made under any identity of a person is
   * theirs to see, cancel or release (`IdentityLinks.none` when there are none).
   */
  readonly identityLinks: Pick<IdentityLinks, 'canonicalOf' | 'identitiesOf'>;
  readonly accessTokenTtlSeconds: number;
  /** How long a request may wait for its reviews (`requests.pending_ttl`). */
  readonly pendingTtlSeconds: number;
  /** Called when a grant becomes active, so the expiry loop can re-arm its timer. */
  readonly onGrantActivated?: (expiresAt: number) => void;
  /**
   * Called as soon as a grant's access has ended logically (committed), before the target is
   * cleaned up — so live sessions (e.g. the database gateway's) can be cut at once.
   */
  readonly onGrantEnded?: (grantId: string, why: 'expired' | 'revoked' | 'released') => void;
  /** The server log: a target's own error text is written there with its reference. */
  readonly log?: OperatorLog;
  /**
   * The database gateway's address for a resource people may reach only through it
   * (`postgres.gateway_only`), else undefined: such grants' credentials are a gateway connection
   * with an access token, never the grant's own login (see gateway-credentials.ts). Required, so
   * that a composition root cannot forget it and show a gateway-only grant's login.
   */
  readonly gatewayOnlyEndpoint: (resourceId: string) => GatewayEndpoint | undefined;
}

export interface NewRequest {
  readonly resourceId: string;
  readonly role: string;
  readonly durationSeconds: number;
  readonly reason: string;
  readonly ticket: string | null;
}

/** The audit event of a grant becoming usable, for the request it activates. */
function activatedEvent(request: AccessRequest, grant: Grant): AuditEventInput {
  return {
    type: 'grant.activated',
    actor: 'system',
    requestId: request.id,
    grantId: grant.id,
    resourceId: grant.resourceId,
    data: {
      role: grant.role,
      principal: request.requesterId,
      notBefore: request.activatedAt,
      expiresAt: request.expiresAt,
      artefacts: grant.artefacts,
    },
  };
}

/** The route id prefix of break-glass requests (src/app/break-glass/emergency-grants.ts): no policy decides them. */
const breakGlassRoutePrefix = 'break-glass:';

/** Why the re-check before access starts refused a request. */
interface RecheckRefusal {
  readonly reason: string;
  readonly policyIds: readonly string[];
  /** The stricter route the policy gives now, when it still allows the request. */
  readonly route?: ApprovalRoute;
}

/** The `request.denied` event of a request the re-check refused, by the system. */
function recheckDeniedEvent(
  request: AccessRequest,
  refused: RecheckRefusal,
  at: 'approval' | 'activation',
  from: Pick<AuditEventInput, 'sourceIp' | 'userAgent'>,
): AuditEventInput {
  return {
    type: 'request.denied',
    actor: 'system',
    severity: 'warning',
    ...from,
    requestId: request.id,
    resourceId: request.resourceId,
    reason: refused.reason,
    policyIds: refused.policyIds,
    data: {
      recheck: at,
      principal: request.requesterId,
      followedRoute: request.route,
      ...(refused.route ? { currentRoute: refused.route } : {}),
      approvals: request.reviews.filter((r) => r.verdict === 'approve').map((r) => r.reviewerId),
    },
  };
}

/**
 * How long an activation claim holds before another activation may take it over (its activator
 * presumably died). Far above one provisioning attempt, which the provisioners' statement and
 * connection timeouts bound to well under a minute.
 */
export const activationLeaseMs = 5 * 60_000;
/** How long the expiry loop leaves a just-approved request to the replica that approved it. */
export const activationGraceMs = 30_000;
/** Thrown inside the activation's transaction when its claim was taken over. */
const lostActivationClaim = Symbol('lost activation claim');

/** Rows read at a time when a listing filters by visibility row by row. */
const listPageSize = 200;
/** Most rows one such listing reads before it returns what it has, with where to go on. */
const listScanBudget = 5000;
const maxCasAttempts = 8;
/** Grants ended in one transaction by the expiry pass. */
const expiryBatchSize = 50;
/** Revocations run against targets at the same time, at most (each is a few round trips). */
const revocationConcurrency = 8;

/** Runs `work` over `items` with at most `limit` in flight; `work` must not reject. */
async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(lanes);
}
/** Grant states in which a revocation attempt may still record its outcome. */
const unfinishedRevocation: readonly grants.GrantStatus[] = ['revoking', 'revoke_failed'];
const applyAttempts = 3;

function origin(o: RequestOrigin): Pick<AuditEventInput, 'sourceIp' | 'userAgent'> {
  return { sourceIp: o.sourceIp, userAgent: o.userAgent };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A failed provisioning or revocation as recorded: its full text, and a reference when that text
 * is a target system's own (or an unexpected fault's), which may name the target's internals — an
 * admin account, an address, a server version. Such text is shown only to administrators (grant
 * view, audit log, server log); requesters and approvers get the reference (docs/security.md).
 */
interface Failure {
  readonly text: string;
  readonly reference: string | null;
}

/** Rethrows after a batch: the one failure as is, several as an AggregateError. */
function throwIfAny(failures: readonly unknown[], what: string): void {
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} ${what}`);
}

export class AccessService {
  /** The canonical principal id of an identity under the configured `identity_links`. */
  private readonly canonicalOf = (principalId: string): string =>
    this.deps.identityLinks.canonicalOf(principalId);

  constructor(private readonly deps: AccessServiceDeps) {}

  // ------------------------------------------------------------ lookups

  resource(resourceId: string): ResourceDefinition {
    const resource = this.deps.resources.get(resourceId);
    if (!resource)
      throw new PortcullisError('unknown_resource', `Unknown resource "${resourceId}"`, {
        resource: resourceId,
      });
    return resource;
  }

  role(resource: ResourceDefinition, roleName: string): RoleDefinition {
    const role = resource.roles.get(roleName);
    if (!role) {
      throw new PortcullisError('unknown_role', `Resource "${resource.id}" has no role "${roleName}"`, {
        resource: resource.id,
        role: roleName,
        roles: [...resource.roles.keys()],
      });
    }
    return role;
  }

  /** Every configured resource, in configuration order: what a request form offers. */
  resources(): readonly ResourceDefinition[] {
    return [...this.deps.resources.values()];
  }

  /**
   * Whether `viewer` may approve or deny `request` now: it is pending, they qualify under its route
   * and the policy, and they have not reviewed it yet. What a page offers; `review` decides.
   */
  mayReviewNow(viewer: Principal, request: AccessRequest, source: string): boolean {
    const resource = this.deps.resources.get(request.resourceId);
    return (
      request.state === 'pending' &&
      resource !== undefined &&
      !request.reviews.some((r) => this.isSamePerson(viewer, r.reviewerId)) &&
      this.mayReview(viewer, request, resource, source)
    );
  }

  isAdmin(principal: Principal): boolean {
    return principal.groups.some((g) => this.deps.adminGroups.includes(g));
  }

  /**
   * Records how an attempt on a target failed. Portcullis' own refusals (any code but
   * `provisioning_failed`, e.g. a resource no longer configured) are shown as they are; anything
   * else gets a short random reference and goes, in full, to the server log here and to the audit
   * event the caller writes.
   */
  private failure(error: unknown, what: 'provisioning' | 'revocation', grant: Grant): Failure {
    const text = errorText(error);
    if (error instanceof PortcullisError && error.code !== 'provisioning_failed') {
      return { text, reference: null };
    }
    const reference = failureReference(this.deps.newId);
    this.deps.log?.warn(
      {
        reference,
        grantId: grant.id,
        requestId: grant.requestId,
        resourceId: grant.resourceId,
        error: text,
      },
      `${what} failed at the target`,
    );
    return { text, reference };
  }

  /** Audit data of a failure: the full text and its reference, when it has one (admins read the audit log). */
  private static failureData(failure: Failure): Record<string, unknown> {
    return failure.reference === null ? {} : { error: failure.text, reference: failure.reference };
  }

  private policyContext(
    now: number,
    resource: ResourceDefinition,
    fields: {
      durationSeconds: number;
      reason: string;
      ticket: string | null;
      requesterId: string;
      source: string;
    },
  ): PolicyContext {
    const { hour, weekday } = this.deps.localTime(now);
    return {
      durationMinutes: Math.ceil(fields.durationSeconds / 60),
      hour,
      weekday,
      reason: fields.reason,
      ticket: fields.ticket ?? '',
      sensitivity: resource.sensitivity,
      source: fields.source,
      requesterId: fields.requesterId,
    };
  }

  async getRequest(viewer: Principal, id: string): Promise<AccessRequest> {
    const request = await this.deps.store.requests.get(id);
    if (!request || !(await this.canView(viewer, request))) {
      throw new PortcullisError('not_found', `No request ${id}`);
    }
    return request;
  }

  /** Requesters see their own; approvers the ones they may review; owners and admins those of their resources. */
  async canView(viewer: Principal, request: AccessRequest): Promise<boolean> {
    if (this.isSamePerson(viewer, request.requesterId) || this.isAdmin(viewer)) return true;
    const resource = this.deps.resources.get(request.resourceId);
    if (!resource) return false;
    if (resource.owners.some((g) => viewer.groups.includes(g))) return true;
    return this.mayReview(viewer, request, resource);
  }

  /** `source`: where the review would come from, as the policy sees it (`context.source`). */
  private mayReview(
    viewer: Principal,
    request: AccessRequest,
    resource: ResourceDefinition,
    source = 'api',
  ): boolean {
    const role = resource.roles.get(request.role);
    if (
      !role ||
      this.isSamePerson(viewer, request.requesterId) ||
      !core.reviewerQualifies(request.route, viewer)
    )
      return false;
    const context = this.policyContext(this.deps.clock.now(), resource, {
      ...request,
      requesterId: request.requesterId,
      source,
    });
    return this.deps.policy.decide(viewer, 'approve', resource, role, context).allowed;
  }

  /**
   * One page of the requests `viewer` may see, newest first: their own (under any of their linked
   * identities), those they may review now (`reviewable`: pending), or all they may see. Continues
   * after `before` when given; `next` is where the following page starts, or null at the end.
   * Visibility is decided per row, so `reviewable` and `all` read the store page by page and stop
   * after {@link listScanBudget} rows: a page may then hold fewer than `limit` with `next` set.
   */
  async listRequests(
    viewer: Principal,
    filter: {
      scope: 'mine' | 'reviewable' | 'all';
      states?: core.RequestState[];
      limit?: number;
      before?: RequestListPosition;
    },
  ): Promise<{ requests: AccessRequest[]; next: RequestListPosition | null }> {
    const limit = Math.min(filter.limit ?? 100, 500);
    const base = {
      ...(filter.scope === 'mine' ? { requesterIds: this.identitiesOf(viewer) } : {}),
      ...(filter.scope === 'reviewable'
        ? { states: ['pending' as const] }
        : filter.states
          ? { states: filter.states }
          : {}),
    };
    const visible =
      filter.scope === 'mine'
        ? async () => true
        : filter.scope === 'reviewable'
          ? async (r: AccessRequest) => {
              const resource = this.deps.resources.get(r.resourceId);
              return resource !== undefined && this.mayReview(viewer, r, resource);
            }
          : (r: AccessRequest) => this.canView(viewer, r);
    const found: AccessRequest[] = [];
    let position = filter.before;
    let scanned = 0;
    const pageSize = filter.scope === 'mine' ? limit : listPageSize;
    for (;;) {
      const page = await this.deps.store.requests.list({
        ...base,
        limit: pageSize,
        ...(position ? { before: position } : {}),
      });
      for (const request of page) {
        scanned++;
        position = { createdAt: request.createdAt, id: request.id };
        if (!(await visible(request))) continue;
        found.push(request);
        if (found.length === limit) return { requests: found, next: position };
      }
      if (page.length < pageSize) return { requests: found, next: null };
      if (scanned >= listScanBudget) return { requests: found, next: position ?? null };
    }
  }

  // ------------------------------------------------------------ request

  async createRequest(requester: Principal, input: NewRequest, from: RequestOrigin): Promise<AccessRequest> {
    const resource = this.resource(input.resourceId);
    const role = this.role(resource, input.role);
    const now = this.deps.clock.now();
    const context = this.policyContext(now, resource, {
      ...input,
      requesterId: requester.id,
      source: from.channel,
    });
    const decision = this.deps.policy.decideRequest(requester, resource, role, context);
    if (!decision.allowed) {
      await this.deps.store.transaction((tx) =>
        tx.audit.append(
          {
            type: 'request.denied_by_policy',
            actor: requester.id,
            severity: 'warning',
            ...origin(from),
            resourceId: resource.id,
            reason: input.reason,
            policyIds: decision.policyIds,
            data: {
              role: role.name,
              durationSeconds: input.durationSeconds,
              ticket: input.ticket,
              why: decision.reason,
            },
          },
          now,
        ),
      );
      throw new PortcullisError('policy_denied', decision.reason, { policyIds: decision.policyIds });
    }
    const request = core.openRequest(
      {
        id: this.deps.newId(),
        requester,
        ...input,
        ticket: input.ticket,
        source: from.channel,
        pendingTtlSeconds: this.deps.pendingTtlSeconds,
      },
      decision.route,
      now,
    );
    await this.deps.store.transaction(async (tx) => {
      // INVARIANT: no request outlives its requester's deprovisioning or lock. This waits for a concurrent
      // one (endAllAccessOf) to commit, so either it sees this request or this sees it.
      const refusal = standingRefusal(await tx.principals.lockStanding(requester.id));
      if (refusal) throw refusal;
      await tx.requests.insert(request);
      await tx.audit.append(
        {
          type: 'request.created',
          actor: requester.id,
          ...origin(from),
          requestId: request.id,
          resourceId: resource.id,
          reason: request.reason,
          policyIds: decision.policyIds,
          data: {
            role: role.name,
            durationSeconds: request.durationSeconds,
            ticket: request.ticket,
            route: request.route,
            decision: 'allow',
          },
        },
        now,
      );
      if (request.state === 'approved') {
        await tx.audit.append(
          {
            type: 'request.approved',
            actor: 'system',
            ...origin(from),
            requestId: request.id,
            resourceId: resource.id,
            policyIds: [request.route.policyId],
            reason: 'auto-approved by policy',
          },
          now,
        );
      }
    });
    if (request.state === 'approved') return this.activate(request.id);
    return request;
  }

  // ------------------------------------------------------------ review

  /**
   * Records `reviewer`'s verdict. The requester, every earlier reviewer and `reviewer` are compared
   * as people under the configured `identity_links`, not as identities.
   */
  async review(
    reviewer: Principal,
    requestId: string,
    verdict: core.Verdict,
    reason: string,
    from: RequestOrigin,
  ): Promise<AccessRequest> {
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.requestVisibleTo(reviewer, requestId, from, 'request.review_rejected', {
        verdict,
      });
      const resource = this.resource(current.resourceId);
      const role = this.role(resource, current.role);
      const now = this.deps.clock.now();
      const context = this.policyContext(now, resource, { ...current, source: from.channel });
      const decision = this.deps.policy.decide(reviewer, 'approve', resource, role, context);
      let reviewed: AccessRequest;
      try {
        reviewed = core.applyReview(
          current,
          { reviewer, verdict, reason, policyAllows: decision.allowed, canonicalId: this.canonicalOf },
          now,
        );
      } catch (error) {
        if (error instanceof PortcullisError && ['self_review', 'not_an_approver'].includes(error.code)) {
          await recordSecurityEvent(this.deps.store, reviewer, 'request.review_rejected', from, now, {
            requestId,
            resourceId: current.resourceId,
            reason: error.message,
            policyIds: decision.policyIds,
            data: { verdict, code: error.code },
          });
        }
        throw error;
      }
      // The approval that completes the route: the requester's own `request` decision must still hold.
      const refused =
        reviewed.state === 'approved' ? await this.recheck(reviewed, resource, role, now) : undefined;
      const updated = refused ? core.denyOnRecheck(reviewed, refused.reason, now) : reviewed;
      // An in-process provisioner (nothing outside Portcullis to create) activates in the same
      // transaction as the approval: one commit instead of three, and no approved-but-not-active gap.
      const activation =
        updated.state === 'approved'
          ? await this.inProcessActivation(updated, resource, role, now)
          : undefined;
      const won = await this.deps.store.transaction(async (tx) => {
        if (!(await tx.requests.update(activation?.request ?? updated, current.version))) return false;
        if (activation) await tx.grants.insert(activation.grant);
        const events: AuditEventInput[] = [
          {
            type: 'request.reviewed',
            actor: reviewer.id,
            ...origin(from),
            requestId,
            resourceId: current.resourceId,
            reason,
            policyIds: decision.policyIds,
            data: { verdict },
          },
        ];
        if (refused) {
          events.push(recheckDeniedEvent(updated, refused, 'approval', origin(from)));
        } else if (updated.state === 'approved' || updated.state === 'denied') {
          events.push({
            type: updated.state === 'approved' ? 'request.approved' : 'request.denied',
            actor: reviewer.id,
            ...origin(from),
            requestId,
            resourceId: current.resourceId,
            reason,
            policyIds: decision.policyIds,
            data: {
              approvals: updated.reviews.filter((r) => r.verdict === 'approve').map((r) => r.reviewerId),
            },
          });
        }
        if (activation) events.push(activation.event);
        await tx.audit.appendAll(events.map((event) => ({ event, at: now })));
        return true;
      });
      if (!won) continue;
      if (updated.state === 'approved') {
        this.deps.metrics.approvalLatency((now - updated.createdAt) / 1000);
        if (!activation) return this.activate(requestId);
        this.deps.metrics.activationLatency((this.deps.clock.now() - now) / 1000);
        this.deps.onGrantActivated?.(activation.grant.expiresAt);
        return activation.request;
      }
      return updated;
    }
    throw new PortcullisError('conflict', 'The request kept changing while it was being reviewed; try again');
  }

  async cancel(requester: Principal, requestId: string, from: RequestOrigin): Promise<AccessRequest> {
    await this.requestVisibleTo(requester, requestId, from, 'security.denied', { action: 'cancel' });
    return this.transition(
      requestId,
      (current, now) => core.cancel(current, requester, now, this.canonicalOf),
      (updated, now) => [
        {
          type: 'request.cancelled',
          actor: requester.id,
          ...origin(from),
          requestId,
          resourceId: updated.resourceId,
          reason: updated.endReason,
        },
      ],
    ).then((r) => r.request);
  }

  /** Applies a pure transition with CAS retries and writes its audit events in the same transaction. */
  private async transition(
    requestId: string,
    change: (current: AccessRequest, now: number) => AccessRequest,
    events: (updated: AccessRequest, now: number) => AuditEventInput[],
    alsoInTx?: (tx: Transaction, updated: AccessRequest, now: number) => Promise<void>,
  ): Promise<{ request: AccessRequest; now: number }> {
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.deps.store.requests.get(requestId);
      if (!current) throw new PortcullisError('not_found', `No request ${requestId}`);
      const now = this.deps.clock.now();
      const updated = change(current, now);
      const won = await this.deps.store.transaction(async (tx) => {
        if (!(await tx.requests.update(updated, current.version))) return false;
        await alsoInTx?.(tx, updated, now);
        await tx.audit.appendAll(events(updated, now).map((event) => ({ event, at: now })));
        return true;
      });
      if (won) return { request: updated, now };
    }
    throw new PortcullisError('conflict', 'The request kept changing; try again');
  }

  /**
   * The request, if `actor` may see it. Otherwise the same `not_found` as for an id that does not
   * exist — a 403 or 409 would confirm that it exists and hint at its state — with the attempt
   * audited as a security event.
   */
  private async requestVisibleTo(
    actor: Principal,
    requestId: string,
    from: RequestOrigin,
    type: AuditEventInput['type'],
    data: Record<string, unknown>,
  ): Promise<AccessRequest> {
    const request = await this.deps.store.requests.get(requestId);
    if (request && (await this.canView(actor, request))) return request;
    if (request) {
      await recordSecurityEvent(this.deps.store, actor, type, from, this.deps.clock.now(), {
        requestId,
        resourceId: request.resourceId,
        reason: 'refused: the request is not visible to this principal',
        data: { ...data, code: 'not_visible' },
      });
    }
    throw new PortcullisError('not_found', `No request ${requestId}`);
  }

  // ------------------------------------------------------------ activation

  /**
   * For a provisioner that activates in process: the approved request made active, its grant
   * (applied) and the `grant.activated` event, to be committed with the approval. Undefined for a
   * provisioner that acts on a target: {@link activate} then runs after the approval commits.
   */
  private async inProcessActivation(
    approved: AccessRequest,
    resource: ResourceDefinition,
    role: RoleDefinition,
    now: number,
  ): Promise<{ request: AccessRequest; grant: Grant; event: AuditEventInput } | undefined> {
    const provisioner = this.deps.provisioners.get(resource.kind);
    if (!provisioner.activatesInProcess) return undefined;
    const request = core.activate(approved, now);
    const planned = this.plannedGrant(request, resource, role, provisioner, now, request.expiresAt as number);
    const result = await provisioner.apply({ grant: planned, resource, role });
    if (result.credentials) {
      throw new Error(`provisioner ${provisioner.kind} activates in process but returned credentials`);
    }
    const grant = grants.markApplied(planned, result.artefacts);
    return { request, grant, event: activatedEvent(request, grant) };
  }

  /** A new grant for `request`, with the artefact names its provisioner picks before anything exists. */
  private plannedGrant(
    request: AccessRequest,
    resource: ResourceDefinition,
    role: RoleDefinition,
    provisioner: Provisioner,
    notBefore: number,
    expiresAt: number,
  ): Grant {
    const id = this.deps.newId();
    return grants.newGrant({
      id,
      requestId: request.id,
      principalId: request.requesterId,
      resourceId: resource.id,
      role: role.name,
      notBefore,
      expiresAt,
      artefacts: provisioner.plan({ id }, resource),
    });
  }

  /**
   * Provisions an approved request and makes it active. Idempotent: safe to call again after a
   * crash (the grant row and its planned artefact names are reused). The access clock starts here.
   */
  async activate(requestId: string): Promise<AccessRequest> {
    const request = await this.deps.store.requests.get(requestId);
    if (!request) throw new PortcullisError('not_found', `No request ${requestId}`);
    if (request.state !== 'approved') return request;
    const resource = this.resource(request.resourceId);
    const role = this.role(resource, request.role);
    const provisioner = this.deps.provisioners.get(resource.kind);
    const started = this.deps.clock.now();
    const refused = await this.recheck(request, resource, role, started);
    if (refused) return this.denyBeforeActivation(requestId, refused);

    const activatedAt = started;
    const expiresAt = activatedAt + request.durationSeconds * 1000;
    // INVARIANT: only the holder of the activation claim touches the target. Another activation of
    // the same request (a replica's recover(), a retry) stops here; were it to apply, it would set
    // a new password that the stored credentials do not know.
    const grant = await this.claimActivation(request, resource, role, provisioner, activatedAt, expiresAt);
    if (!grant) return (await this.deps.store.requests.get(requestId)) ?? request;

    const requester = await this.deps.store.principals.get(request.requesterId);
    const principal = requester
      ? { idp: requester.idp, subject: requester.subject, email: requester.email }
      : undefined;
    let lastError: unknown;
    for (let attempt = 1; attempt <= applyAttempts; attempt++) {
      try {
        if (attempt > 1 && !(await this.holdsActivationClaim(grant))) {
          return (await this.deps.store.requests.get(requestId)) ?? request;
        }
        const result = await provisioner.apply({
          grant,
          resource,
          role,
          ...(principal ? { principal } : {}),
        });
        const applied = grants.markApplied(grant, result.artefacts);
        const sealed = result.credentials
          ? await this.deps.secrets.seal(JSON.stringify(result.credentials))
          : null;
        const { request: active } = await this.transition(
          requestId,
          (current) => core.activate(current, activatedAt),
          (updated) => [activatedEvent(updated, applied)],
          async (tx) => {
            // The claim lapsed and another activation took it over: its credentials are the ones kept.
            if (!(await this.holdsActivationClaim(grant, tx))) throw lostActivationClaim;
            await tx.grants.update(applied);
            if (sealed) await tx.grants.setSealedCredentials(applied.id, sealed);
          },
        );
        this.deps.metrics.activationLatency((this.deps.clock.now() - started) / 1000);
        this.deps.onGrantActivated?.(expiresAt);
        return active;
      } catch (error) {
        if (error === lostActivationClaim) return (await this.deps.store.requests.get(requestId)) ?? request;
        lastError = error;
        if (error instanceof PortcullisError && error.code !== 'provisioning_failed') break;
        if (attempt < applyAttempts) await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
    // Provisioning did not succeed: the request fails and whatever was half-created is cleaned up.
    const failure = this.failure(lastError, 'provisioning', grant);
    const failedGrant = grants.beginRevocation(
      grants.markApplyFailed(grant, failure.text, failure.reference),
      this.deps.clock.now(),
    );
    const failureData = AccessService.failureData(failure);
    const failedEvent = (reason: string): AuditEventInput => ({
      type: 'grant.failed',
      actor: 'system',
      severity: 'warning',
      requestId,
      grantId: grant.id,
      resourceId: resource.id,
      reason,
      ...(failure.reference === null ? {} : { data: failureData }),
    });
    // The request's end reason is seen by its requester and approvers: a reference, not the text.
    const endReason =
      failure.reference === null
        ? `provisioning failed: ${failure.text}`
        : `provisioning failed at the target (reference ${failure.reference})`;
    try {
      await this.transition(
        requestId,
        (current, now) => core.markFailed(current, endReason, now),
        () => [failedEvent(failure.text)],
        (tx) => tx.grants.update(failedGrant),
      );
    } catch (error) {
      if (!(error instanceof PortcullisError && error.code === 'invalid_transition')) throw error;
      // The request left `approved` while the provisioner ran: cancelled by the requester, or
      // activated by a concurrent activation of the same grant.
      const settled = await this.settleOutrunActivation(requestId, grant.id, failedGrant, failedEvent);
      if (settled) return settled;
      throw error;
    }
    await this.completeRevocation(failedGrant.id);
    if (failure.reference === null) throw lastError;
    throw new PortcullisError(
      'provisioning_failed',
      grants.targetFailureNotice('provisioning', failure.reference),
      { reference: failure.reference },
      { cause: lastError },
    );
  }

  /**
   * Claims the activation of an approved request; the grant to apply, or undefined when another
   * activation holds the claim (or has finished). The first activation claims by inserting the
   * grant (one per request); a grant still `applying` whose claim is older than
   * {@link activationLeaseMs} (its activator died) is claimed again by a compare-and-swap on the
   * request's version, which moves the grant's `notBefore` — the claim's time — to now.
   */
  private async claimActivation(
    request: AccessRequest,
    resource: ResourceDefinition,
    role: RoleDefinition,
    provisioner: Provisioner,
    now: number,
    expiresAt: number,
  ): Promise<Grant | undefined> {
    const existing = await this.deps.store.grants.getByRequest(request.id);
    if (!existing) {
      const planned = this.plannedGrant(request, resource, role, provisioner, now, expiresAt);
      try {
        await this.deps.store.grants.insert(planned);
        return planned;
      } catch (error) {
        if (error instanceof PortcullisError && error.code === 'conflict') return undefined;
        throw error;
      }
    }
    if (existing.status !== 'applying' || now - existing.notBefore < activationLeaseMs) return undefined;
    const claimed: Grant = { ...existing, notBefore: now, expiresAt };
    const won = await this.deps.store.transaction(async (tx) => {
      const touched = { ...request, updatedAt: now, version: request.version + 1 };
      if (!(await tx.requests.update(touched, request.version))) return false;
      await tx.grants.update(claimed);
      return true;
    });
    return won ? claimed : undefined;
  }

  /** Whether `grant` (as claimed) still holds its activation claim: nobody claimed it again since. */
  private async holdsActivationClaim(
    grant: Grant,
    tx: Pick<Transaction, 'grants'> = this.deps.store,
  ): Promise<boolean> {
    const stored = await tx.grants.get(grant.id);
    return stored?.status === 'applying' && stored.notBefore === grant.notBefore;
  }

  /**
   * Activates approved requests whose activation nobody holds (its activator died): the expiry
   * loop's pass. A request approved less than {@link activationGraceMs} ago is left to the replica
   * that approved it, which activates it at once: taken from it, its approve call would answer
   * `approved` instead of `active`.
   */
  async resumeActivations(limit = 100): Promise<number> {
    let activated = 0;
    const settledBefore = this.deps.clock.now() - activationGraceMs;
    for (const request of await this.deps.store.requests.listApprovedAwaitingActivation(limit)) {
      if (request.updatedAt > settledBefore) continue;
      try {
        if ((await this.activate(request.id)).state === 'active') activated++;
      } catch {
        // activate() already recorded the failure.
      }
    }
    return activated;
  }

  /**
   * An activation lost the race against the request's own end (e.g. cancelled while provisioning).
   * If nobody activated the grant, what the provisioner may have created is taken back (audited);
   * the request as it now stands is returned. Undefined when the request is still approved.
   */
  private async settleOutrunActivation(
    requestId: string,
    grantId: string,
    failedGrant: Grant,
    failedEvent: (reason: string) => AuditEventInput,
  ): Promise<AccessRequest | undefined> {
    const request = await this.deps.store.requests.get(requestId);
    if (!request || request.state === 'approved') return undefined;
    if (request.state !== 'active') {
      const abandoned = await this.deps.store.transaction(async (tx) => {
        const stored = await tx.grants.get(grantId);
        if (stored?.status !== 'applying') return false;
        await tx.grants.update(failedGrant);
        await tx.audit.append(
          failedEvent(`the request became ${request.state} while its access was being provisioned`),
          this.deps.clock.now(),
        );
        return true;
      });
      if (abandoned) await this.completeRevocation(grantId);
    }
    return request;
  }

  /**
   * The re-check before access starts (docs/policies.md "Re-checked before access starts"): the
   * requester's `request` decision at `now`, for their principal as stored (groups as last
   * asserted), with the request's own duration, reason, ticket and source. Undefined when it still
   * allows the request by a route that asks no more than the one it followed; otherwise why not.
   * Break-glass requests are not decided by policy and are not re-checked.
   */
  private async recheck(
    request: AccessRequest,
    resource: ResourceDefinition,
    role: RoleDefinition,
    now: number,
  ): Promise<RecheckRefusal | undefined> {
    if (request.route.policyId.startsWith(breakGlassRoutePrefix)) return undefined;
    const requester = await this.deps.store.principals.get(request.requesterId);
    if (!requester) {
      return { reason: 'denied on re-check: the requester is no longer known', policyIds: [] };
    }
    if (requester.disabled || requester.lock) {
      return { reason: 'denied on re-check: the requester may no longer act', policyIds: [] };
    }
    const context = this.policyContext(now, resource, { ...request, source: request.source ?? 'api' });
    const decision = this.deps.policy.decideRequest(requester, resource, role, context);
    if (!decision.allowed) {
      return {
        reason: `denied on re-check: the policy no longer allows it (${decision.reason})`,
        policyIds: decision.policyIds,
      };
    }
    if (!core.routeStillCovers(request.route, decision.route, request.durationSeconds)) {
      return {
        reason: `denied on re-check: policy ${decision.route.policyId} now asks for more than policy ${request.route.policyId} did; request again`,
        policyIds: decision.policyIds,
        route: decision.route,
      };
    }
    return undefined;
  }

  /**
   * An approved request failed the re-check before activation: it ends denied, and a grant left
   * half-applied by an earlier attempt (a crash) is taken back.
   */
  private async denyBeforeActivation(requestId: string, refused: RecheckRefusal): Promise<AccessRequest> {
    const grant = await this.deps.store.grants.getByRequest(requestId);
    let ended: Grant | undefined;
    try {
      await this.transition(
        requestId,
        (current, now) => core.denyOnRecheck(current, refused.reason, now),
        (updated) => [recheckDeniedEvent(updated, refused, 'activation', {})],
        async (tx, _updated, now) => {
          const stored = grant && (await tx.grants.get(grant.id));
          if (stored?.status !== 'applying') return;
          ended = grants.beginRevocation(grants.markApplyFailed(stored, refused.reason), now);
          await tx.grants.update(ended);
        },
      );
    } catch (error) {
      // It left `approved` meanwhile (activated, cancelled): that outcome stands.
      if (!(error instanceof PortcullisError && error.code === 'invalid_transition')) throw error;
    }
    if (ended) await this.completeRevocation(ended.id);
    const stored = await this.deps.store.requests.get(requestId);
    if (!stored) throw new PortcullisError('not_found', `No request ${requestId}`);
    return stored;
  }

  // ------------------------------------------------------------ ending access

  /** Owners, admins and those the policy allows revoke; the requester releases their own grant early. */
  async revoke(actor: Principal, grantId: string, reason: string, from: RequestOrigin): Promise<Grant> {
    const grant = await this.deps.store.grants.get(grantId);
    if (!grant) throw new PortcullisError('not_found', `No grant ${grantId}`);
    const resource = this.resource(grant.resourceId);
    const now = this.deps.clock.now();
    const isRequester = this.isSamePerson(actor, grant.principalId);
    const request = await this.deps.store.requests.get(grant.requestId);
    if (request && (request.state === 'revoked' || request.state === 'expired')) {
      // Idempotent: access already ended. Only someone who could see the grant learns that.
      if (this.maySeeGrant(actor, grant)) {
        return this.completeRevocation(grantId);
      }
    }
    let by: core.EndedBy = 'requester';
    let policyIds: readonly string[] = [];
    if (!isRequester) {
      const isOwner = resource.owners.some((g) => actor.groups.includes(g));
      const role = this.role(resource, grant.role);
      const decision = this.deps.policy.decide(
        actor,
        'revoke',
        resource,
        role,
        this.policyContext(now, resource, {
          durationSeconds: 0,
          reason,
          ticket: null,
          requesterId: grant.principalId,
          source: from.channel,
        }),
      );
      policyIds = decision.policyIds;
      if (!(isOwner || this.isAdmin(actor) || decision.allowed)) {
        await recordSecurityEvent(this.deps.store, actor, 'security.denied', from, now, {
          grantId,
          resourceId: grant.resourceId,
          reason: 'revoke refused: not owner, admin or permitted by policy',
          policyIds,
        });
        // Someone who may not even see the grant (or its request) learns nothing about it.
        if (!(request && (await this.canView(actor, request))))
          throw new PortcullisError('not_found', `No grant ${grantId}`);
        throw new PortcullisError(
          'forbidden',
          'Only the requester, the resource owners, admins or those the policy allows may revoke this grant',
        );
      }
      by = 'owner';
    }
    await this.transition(
      grant.requestId,
      (current, at) => core.revoke(current, actor, by, reason, at, this.canonicalOf),
      (updated) => [
        {
          type: by === 'requester' ? 'grant.released' : 'grant.revoked',
          actor: actor.id,
          ...origin(from),
          requestId: updated.id,
          grantId,
          resourceId: grant.resourceId,
          reason: reason || null,
          policyIds,
        },
      ],
      async (tx, _updated, at) => {
        const fresh = (await tx.grants.get(grantId)) ?? grant;
        await tx.grants.update(grants.beginRevocation(fresh, at));
      },
    );
    this.deps.onGrantEnded?.(grantId, by === 'requester' ? 'released' : 'revoked');
    return this.completeRevocation(grantId);
  }

  /**
   * Ends all access of a principal the identity provider deprovisioned (SCIM) or an administrator
   * locked (`closure`): pending and approved requests are cancelled, active grants revoked — in one
   * transaction together with `alsoInTx` (the SCIM change or the lock itself), so a crash cannot
   * leave the principal disabled or locked with live grants.
   * The targets are then cleaned up like any revocation (retried with backoff on failure).
   * `actor` is recorded as is (e.g. `scim:okta`). The transaction is retried on concurrent
   * changes, so `alsoInTx` may run more than once (each run in a fresh transaction). The audit
   * events `alsoInTx` appends are held back and appended first of all at the end: appending them
   * at once would lock the chain head while this transaction still waits for request rows that a
   * concurrent activation holds, and that activation waits for the head (a deadlock).
   */
  async endAllAccessOf(
    principalId: string,
    actor: string,
    reason: string,
    from: RequestOrigin,
    alsoInTx: (tx: AuditLastTransaction, now: number) => Promise<void>,
    closure: core.AccountClosure = 'deprovisioned',
  ): Promise<{ cancelled: number; revoked: number }> {
    const retry = Symbol('retry');
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const now = this.deps.clock.now();
      let outcome: { cancelled: number; grantIds: string[] };
      try {
        outcome = await this.deps.store.transaction(async (tx) => {
          const events: { event: AuditEventInput; at: number }[] = [];
          await alsoInTx(
            {
              ...tx,
              audit: {
                append: async (event, at) => {
                  events.push({ event, at });
                },
                appendAll: async (more) => {
                  events.push(...more);
                },
              },
            },
            now,
          );
          const live = await tx.requests.list({
            requesterIds: [principalId],
            states: ['pending', 'approved', 'active'],
            limit: 1000,
          });
          const grantIds: string[] = [];
          let cancelled = 0;
          for (const request of live) {
            const ended = core.endForAccountClosure(request, closure, reason, now);
            if (!(await tx.requests.update(ended, request.version))) throw retry;
            const grant = await tx.grants.getByRequest(request.id);
            if (ended.state === 'revoked' && grant?.status === 'active') {
              await tx.grants.update(grants.beginRevocation(grant, now));
              grantIds.push(grant.id);
            }
            if (ended.state === 'cancelled') cancelled++;
            events.push({
              event: {
                type: ended.state === 'revoked' ? 'grant.revoked' : 'request.cancelled',
                actor,
                severity: 'warning',
                ...origin(from),
                requestId: request.id,
                grantId: grant?.id ?? null,
                resourceId: request.resourceId,
                reason: ended.endReason,
                data: { [closure]: principalId, previousState: request.state },
              },
              at: now,
            });
          }
          await tx.audit.appendAll(events);
          return { cancelled, grantIds };
        });
      } catch (error) {
        if (error === retry) continue;
        throw error;
      }
      for (const grantId of outcome.grantIds) this.deps.onGrantEnded?.(grantId, 'revoked');
      const failures: unknown[] = [];
      await forEachConcurrently(outcome.grantIds, revocationConcurrency, (grantId) =>
        this.completeRevocation(grantId).then(
          () => undefined,
          (error: unknown) => {
            failures.push(error);
          },
        ),
      );
      // A failed target clean-up is recorded and retried by the expiry loop: access has ended.
      return { cancelled: outcome.cancelled, revoked: outcome.grantIds.length };
    }
    throw new PortcullisError('conflict', "The principal's requests kept changing; try again");
  }

  /**
   * Ends every pending request whose review deadline has passed (`requests.pending_ttl`): nobody
   * completed its reviews in time. Returns how many it ended.
   */
  async lapseDue(limit = 200): Promise<number> {
    const now = this.deps.clock.now();
    const due = await this.deps.store.requests.listPastReviewDeadline(now, limit);
    const lapsed = await this.endInBatches(due, now, core.lapse, async (request, ended) => ({
      event: {
        type: 'request.expired',
        actor: 'system',
        requestId: request.id,
        resourceId: request.resourceId,
        reason: ended.endReason,
        data: {
          reviewBy: request.reviewBy,
          approvals: request.reviews.filter((r) => r.verdict === 'approve').map((r) => r.reviewerId),
          approvalsRequired: core.effectiveApprovals(request.route),
        },
      },
      result: request.id,
    }));
    return lapsed.length;
  }

  /** Ends every active request whose deadline has passed. Returns how many it ended. */
  async expireDue(limit = 200): Promise<number> {
    const now = this.deps.clock.now();
    const due = await this.deps.store.requests.listExpired(now, limit);
    const ended = await this.endInBatches(
      due,
      now,
      core.expire,
      async (request, _expired, tx) => {
        const grant = await tx.grants.getByRequest(request.id);
        const active = grant?.status === 'active';
        if (active) await tx.grants.update(grants.beginRevocation(grant, now));
        return {
          event: {
            type: 'grant.expired',
            actor: 'system',
            requestId: request.id,
            grantId: grant?.id ?? null,
            resourceId: request.resourceId,
            data: { expiresAt: request.expiresAt },
          },
          ...(active ? { result: grant.id } : {}),
        };
      },
      (grantIds) => {
        for (const grantId of grantIds) this.deps.onGrantEnded?.(grantId, 'expired');
      },
    );
    // Then the targets are cleaned up, several at a time; a failure there is recorded per grant.
    const failures: unknown[] = [];
    await forEachConcurrently(ended, revocationConcurrency, (grantId) =>
      this.completeRevocation(grantId).then(
        () => undefined,
        (error: unknown) => {
          failures.push(error);
        },
      ),
    );
    throwIfAny(failures, 'grants could not be expired');
    return ended.length;
  }

  /**
   * Moves each of `due` on by `end` (a pure transition), a batch per transaction: many requests end
   * under one lock on the audit chain and one commit, so a burst of deadlines is not serialised one
   * commit at a time. A request another writer changed first (a review, a revoke, another replica)
   * is skipped; the next pass re-reads it. `record` makes the transition's other writes in the same
   * transaction and gives its audit event, appended last and all at once so the chain head stays
   * locked briefly, and optionally a result. `committed` gets each batch's results after its commit.
   */
  private async endInBatches<T>(
    due: readonly AccessRequest[],
    now: number,
    end: (request: AccessRequest, now: number) => AccessRequest,
    record: (
      request: AccessRequest,
      ended: AccessRequest,
      tx: Transaction,
    ) => Promise<{ event: AuditEventInput; result?: T }>,
    committed?: (results: readonly T[]) => void,
  ): Promise<T[]> {
    const all: T[] = [];
    for (let start = 0; start < due.length; start += expiryBatchSize) {
      const batch = due.slice(start, start + expiryBatchSize);
      const results = await this.deps.store.transaction(async (tx) => {
        const done: T[] = [];
        const events: { event: AuditEventInput; at: number }[] = [];
        for (const request of batch) {
          const ended = end(request, now);
          if (!(await tx.requests.update(ended, request.version))) continue;
          const { event, result } = await record(request, ended, tx);
          events.push({ event, at: now });
          if (result !== undefined) done.push(result);
        }
        await tx.audit.appendAll(events);
        return done;
      });
      all.push(...results);
      committed?.(results);
    }
    return all;
  }

  /** Retries revocations that are due (after a failure, or left over by a crash). */
  async processDueRevocations(limit = 100): Promise<number> {
    const due = await this.deps.store.grants.listDueRevocations(this.deps.clock.now(), limit);
    const failures: unknown[] = [];
    // One grant that cannot even be recorded as failed must not hold up the others.
    await forEachConcurrently(due, revocationConcurrency, (grant) =>
      this.completeRevocation(grant.id).then(
        () => undefined,
        (error: unknown) => {
          failures.push(error);
        },
      ),
    );
    throwIfAny(failures, 'revocations could not be processed');
    return due.length;
  }

  /**
   * Takes the access back in the target. A failure is recorded (state, audit event, metric) and
   * retried later with backoff; it is never dropped.
   */
  async completeRevocation(grantId: string): Promise<Grant> {
    const grant = await this.deps.store.grants.get(grantId);
    if (!grant) throw new PortcullisError('not_found', `No grant ${grantId}`);
    if (grant.status !== 'revoking' && grant.status !== 'revoke_failed') return grant;
    try {
      // Inside the try: a resource removed from the configuration since the grant was made is a
      // failed revocation (visible, retried), not an error that stops the expiry loop or start-up.
      const resource = this.resource(grant.resourceId);
      // A role removed from the configuration: the grant's own artefacts are still taken back.
      const role = resource.roles.get(grant.role) ?? { name: grant.role, description: '', grants: [] };
      await this.deps.provisioners.get(resource.kind).revoke({ grant, resource, role });
    } catch (error) {
      const failure = this.failure(error, 'revocation', grant);
      const now = this.deps.clock.now();
      const failed = grants.markRevokeFailed(grant, failure.text, now, failure.reference);
      // A concurrent revoker (a repeated release, the expiry loop) may have finished meanwhile:
      // its success stands, this failure is not recorded over it.
      const recorded = await this.deps.store.transaction(async (tx) => {
        if (!(await tx.grants.updateIfStatus(failed, unfinishedRevocation))) return false;
        await tx.audit.append(
          {
            type: 'grant.revocation_failed',
            actor: 'system',
            severity: 'high',
            requestId: grant.requestId,
            grantId,
            resourceId: grant.resourceId,
            reason: failure.text,
            data: {
              attempts: failed.revokeAttempts,
              nextAttemptAt: failed.nextAttemptAt,
              ...AccessService.failureData(failure),
            },
          },
          now,
        );
        return true;
      });
      if (!recorded) return (await this.deps.store.grants.get(grantId)) ?? failed;
      this.deps.metrics.revocationFailed(grant.resourceId);
      return failed;
    }
    const now = this.deps.clock.now();
    const revoked = grants.markRevoked(grant, now);
    // One revocation, one completion event: a concurrent revoker that finished first wins.
    const completed = await this.deps.store.transaction(async (tx) => {
      if (!(await tx.grants.updateIfStatus(revoked, unfinishedRevocation))) return false;
      await tx.grants.setSealedCredentials(grantId, null);
      await tx.audit.append(
        {
          type: 'grant.revocation_completed',
          actor: 'system',
          requestId: grant.requestId,
          grantId,
          resourceId: grant.resourceId,
          data: { attempts: grant.revokeAttempts + 1, lagMs: Math.max(0, now - grant.expiresAt) },
        },
        now,
      );
      return true;
    });
    if (!completed) return (await this.deps.store.grants.get(grantId)) ?? revoked;
    if (now >= grant.expiresAt) this.deps.metrics.revocationLag((now - grant.expiresAt) / 1000);
    return revoked;
  }

  /** At boot: end overdue grants and requests, finish interrupted activations and revocations. */
  async recover(): Promise<{ expired: number; lapsed: number; activated: number; revocations: number }> {
    const expired = await this.expireDue(10_000);
    const lapsed = await this.lapseDue(10_000);
    let activated = 0;
    for (const request of await this.deps.store.requests.listApprovedAwaitingActivation(1000)) {
      try {
        // Not counted: a request another replica is activating, or one the re-check denied.
        if ((await this.activate(request.id)).state === 'active') activated++;
      } catch {
        // activate() already recorded the failure.
      }
    }
    const revocations = await this.processDueRevocations(10_000);
    return { expired, lapsed, activated, revocations };
  }

  // ------------------------------------------------------------ using access

  /** The requester's own grant while it gives access; someone else's reads as missing. */
  async liveGrantOfRequester(
    principal: Principal,
    grantId: string,
  ): Promise<{ grant: Grant; request: AccessRequest }> {
    const grant = await this.deps.store.grants.get(grantId);
    // Someone else's grant looks the same as a missing one: no hint that it exists.
    if (!grant || grant.principalId !== principal.id)
      throw new PortcullisError('not_found', `No grant ${grantId}`);
    const request = await this.deps.store.requests.get(grant.requestId);
    if (!request || !core.isAccessLive(request, this.deps.clock.now()) || grant.status !== 'active') {
      throw new PortcullisError('invalid_transition', 'The grant is not active', {
        grantStatus: grant.status,
      });
    }
    return { grant, request };
  }

  /** The requester's credentials for a live grant; every showing is audited, before it happens. */
  async credentials(
    principal: Principal,
    grantId: string,
    from: RequestOrigin,
  ): Promise<Record<string, string>> {
    const credentials = await this.credentialsIfAny(principal, grantId, from);
    if (!credentials)
      throw new PortcullisError('not_found', 'This grant has no credentials; use a token instead');
    return credentials;
  }

  /** As {@link credentials}, but undefined for a live grant whose target handed out none (a webhook target may not). */
  async credentialsIfAny(
    principal: Principal,
    grantId: string,
    from: RequestOrigin,
  ): Promise<Record<string, string> | undefined> {
    const { grant } = await this.liveGrantOfRequester(principal, grantId);
    const gateway = this.deps.gatewayOnlyEndpoint(grant.resourceId);
    if (gateway) {
      const issued = await this.tokenFor(principal, grant, from, { for: 'gateway_credentials' });
      return gatewayCredentials(gateway, grant, issued);
    }
    const credentials = await this.openCredentials(grantId);
    if (!credentials) return undefined;
    await this.auditGrantUse('credentials.shown', principal, grant, from, this.deps.clock.now());
    return credentials;
  }

  /** A signed access token for a live grant, never valid past the grant's end. */
  async issueToken(principal: Principal, grantId: string, from: RequestOrigin): Promise<IssuedToken> {
    const { grant } = await this.liveGrantOfRequester(principal, grantId);
    return this.tokenFor(principal, grant, from);
  }

  /** Issues an access token for a live grant, audited as `token.issued` before it is returned. */
  private async tokenFor(
    principal: Principal,
    grant: Grant,
    from: RequestOrigin,
    context: Record<string, unknown> = {},
  ): Promise<IssuedToken> {
    const now = this.deps.clock.now();
    const issued = await this.deps.tokens.issueAccessToken({
      grant,
      principal,
      now,
      ttlSeconds: this.deps.accessTokenTtlSeconds,
    });
    await this.auditGrantUse('token.issued', principal, grant, from, now, {
      jti: issued.jti,
      expiresAt: issued.expiresAt,
      ...context,
    });
    return issued;
  }

  /** True while the grant gives access: what introspection and the gateway ask. */
  async isGrantLive(grantId: string): Promise<boolean> {
    const grant = await this.deps.store.grants.get(grantId);
    if (!grant || grant.status !== 'active') return false;
    const request = await this.deps.store.requests.get(grant.requestId);
    return request !== undefined && core.isAccessLive(request, this.deps.clock.now());
  }

  /**
   * For the database gateway: a live grant and the upstream login its provisioner created, opened
   * from the sealed credentials. Not audited as `credentials.shown`: nobody is shown them — the
   * gateway logs in upstream with them and the user never learns them. Undefined when the grant
   * is not live or has no login credentials.
   */
  async upstreamCredentials(
    grantId: string,
  ): Promise<{ grant: Grant; username: string; password: string } | undefined> {
    if (!(await this.isGrantLive(grantId))) return undefined;
    const grant = await this.deps.store.grants.get(grantId);
    const credentials = grant ? await this.openCredentials(grantId) : undefined;
    if (!grant || !credentials) return undefined;
    const { username, password } = credentials;
    if (typeof username !== 'string' || typeof password !== 'string') return undefined;
    return { grant, username, password };
  }

  /** The grant's provisioned credentials, unsealed; undefined when it has none. */
  private async openCredentials(grantId: string): Promise<Record<string, string> | undefined> {
    const sealed = await this.deps.store.grants.getSealedCredentials(grantId);
    return sealed ? (JSON.parse(await this.deps.secrets.open(sealed)) as Record<string, string>) : undefined;
  }

  /**
   * Records that the requester used their grant (credentials shown, token issued, an SSH key
   * certified) — before it happens.
   */
  async auditGrantUse(
    type: 'credentials.shown' | 'token.issued' | 'ssh.key_certified',
    principal: Principal,
    grant: Grant,
    from: RequestOrigin,
    at: number,
    data?: Record<string, unknown>,
  ): Promise<void> {
    await this.deps.store.transaction((tx) =>
      tx.audit.append(
        {
          type,
          actor: principal.id,
          ...origin(from),
          requestId: grant.requestId,
          grantId: grant.id,
          resourceId: grant.resourceId,
          ...(data ? { data } : {}),
        },
        at,
      ),
    );
  }

  async grantIdOf(requestId: string): Promise<string | undefined> {
    return (await this.deps.store.grants.getByRequest(requestId))?.id;
  }

  /**
   * Whether `viewer` may see a grant of `principalId` on `resourceId` (and what hangs off it, such
   * as its gateway sessions): its principal, the resource's owners and admins.
   */
  maySeeGrant(
    viewer: Principal,
    grant: { readonly principalId: string; readonly resourceId: string },
  ): boolean {
    return (
      this.isSamePerson(viewer, grant.principalId) ||
      this.isAdmin(viewer) ||
      (this.deps.resources.get(grant.resourceId)?.owners ?? []).some((o) => viewer.groups.includes(o))
    );
  }

  /** A grant its principal, the resource owners or an admin may see. */
  async getGrant(viewer: Principal, grantId: string): Promise<Grant> {
    const grant = await this.deps.store.grants.get(grantId);
    if (!grant || !this.maySeeGrant(viewer, grant)) {
      throw new PortcullisError('not_found', `No grant ${grantId}`);
    }
    return grant;
  }

  async listGrants(
    viewer: Principal,
    scope: 'mine' | 'all',
    statuses?: grants.GrantStatus[],
  ): Promise<Grant[]> {
    const identities = this.identitiesOf(viewer);
    if (scope === 'mine') return this.deps.store.grants.listForPrincipals(identities, statuses);
    // Visibility in the query, so the newest 500 are the newest 500 this viewer may see.
    const owned = [...this.deps.resources.values()]
      .filter((r) => r.owners.some((g) => viewer.groups.includes(g)))
      .map((r) => r.id);
    return this.deps.store.grants.list({
      limit: 500,
      ...(statuses ? { statuses } : {}),
      ...(this.isAdmin(viewer) ? {} : { visibleTo: { principalIds: identities, resourceIds: owned } }),
    });
  }

  /** Every identity of the person `principal` is, under the configured identity links. */
  private identitiesOf(principal: Principal): readonly string[] {
    const all = this.deps.identityLinks.identitiesOf(this.canonicalOf(principal.id));
    return all.includes(principal.id) ? all : [principal.id, ...all];
  }

  /** Whether `principalId` is one of `principal`'s identities (the same person). */
  isSamePerson(principal: Principal, principalId: string): boolean {
    return this.canonicalOf(principalId) === this.canonicalOf(principal.id);
  }
}
