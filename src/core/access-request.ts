/**
 * The access-request lifecycle, as pure functions of (state, input, actor, now). No I/O: storage
 * wraps these in a compare-and-swap on `version`.
 *
 *   pending → approved → active → expired | revoked
 *   pending → denied | cancelled | expired;  approved → denied | failed | cancelled
 *
 * `approved → denied` is the policy re-check at activation ({@link denyOnRecheck}).
 */
import { PortcullisError } from './errors.js';
import type { ApprovalRoute } from './policy-decision.js';
import type { Principal } from './principal.js';

export const requestStates = [
  'pending',
  'approved',
  'active',
  'expired',
  'revoked',
  'denied',
  'cancelled',
  'failed',
] as const;
export type RequestState = (typeof requestStates)[number];

// INVARIANT: this table is the only place that says which transition is legal.
const allowedTransitions: Readonly<Record<RequestState, readonly RequestState[]>> = {
  pending: ['approved', 'denied', 'cancelled', 'expired'],
  approved: ['active', 'denied', 'failed', 'cancelled'],
  active: ['expired', 'revoked'],
  expired: [],
  revoked: [],
  denied: [],
  cancelled: [],
  failed: [],
};

export const terminalStates: readonly RequestState[] = requestStates.filter(
  (s) => allowedTransitions[s].length === 0,
);

export function canTransition(from: RequestState, to: RequestState): boolean {
  return allowedTransitions[from].includes(to);
}

export function assertTransition(from: RequestState, to: RequestState): void {
  if (!canTransition(from, to)) {
    throw new PortcullisError('invalid_transition', `A request that is ${from} cannot become ${to}`, {
      state: from,
      target: to,
    });
  }
}

export type Verdict = 'approve' | 'deny';

export interface Review {
  readonly reviewerId: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly at: number;
}

export interface AccessRequest {
  readonly id: string;
  readonly requesterId: string;
  readonly resourceId: string;
  readonly role: string;
  /** Length of access once active; waiting for approval does not consume it. */
  readonly durationSeconds: number;
  readonly reason: string;
  readonly ticket: string | null;
  readonly state: RequestState;
  readonly route: ApprovalRoute;
  readonly reviews: readonly Review[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly activatedAt: number | null;
  readonly expiresAt: number | null;
  readonly endedAt: number | null;
  /** Why the request reached its terminal state (denial reason, revoke reason, failure). */
  readonly endReason: string | null;
  /** Optimistic-concurrency counter; every transition increments it. */
  readonly version: number;
  /**
   * Where the request was made (`api`, `cli`, …): the policy's `context.source`, kept so that the
   * re-check at approval and activation sees what the decision at creation saw. Absent on
   * break-glass requests (no policy decides them) and read as `api` for rows from before it was kept.
   */
  readonly source?: string;
  /**
   * When a request still pending lapses (`requests.pending_ttl` after it was made): no review is
   * taken from then on. Absent on requests that were never pending (auto-approved, break-glass).
   */
  readonly reviewBy?: number;
}

export interface NewRequestInput {
  readonly id: string;
  readonly requester: Principal;
  readonly resourceId: string;
  readonly role: string;
  readonly durationSeconds: number;
  readonly reason: string;
  readonly ticket: string | null;
  /** `context.source` of the decision: `api`, `cli`, … */
  readonly source?: string;
  /** How long the request may wait for its reviews (`requests.pending_ttl`). */
  readonly pendingTtlSeconds: number;
}

/** Absolute ceiling on any grant, whatever a policy says. */
export const maxDurationSeconds = 7 * 24 * 3600;
export const minDurationSeconds = 1;

/** The lifecycle fields of a request just created: nothing has happened to it yet. */
export function unstartedLifecycle(
  now: number,
): Pick<
  AccessRequest,
  'createdAt' | 'updatedAt' | 'activatedAt' | 'expiresAt' | 'endedAt' | 'endReason' | 'version'
> {
  return {
    createdAt: now,
    updatedAt: now,
    activatedAt: null,
    expiresAt: null,
    endedAt: null,
    endReason: null,
    version: 1,
  };
}

/** Creates a request the policy allowed. An auto-approve route skips review. */
export function openRequest(input: NewRequestInput, route: ApprovalRoute, now: number): AccessRequest {
  if (!Number.isInteger(input.durationSeconds) || input.durationSeconds < minDurationSeconds) {
    throw new PortcullisError(
      'invalid_duration',
      `Duration must be a whole number of at least ${minDurationSeconds} seconds`,
    );
  }
  const ceiling = Math.min(route.maxDurationSeconds, maxDurationSeconds);
  // Written as "not within" so that a route maximum that is not a number refuses instead of allowing.
  if (!(input.durationSeconds <= ceiling)) {
    throw new PortcullisError(
      'invalid_duration',
      `Duration ${input.durationSeconds}s is above the ${ceiling}s allowed by policy ${route.policyId}`,
      { maxDurationSeconds: ceiling, policyId: route.policyId },
    );
  }
  const autoApproved = route.autoApprove && route.requiredApprovals === 0;
  return {
    id: input.id,
    requesterId: input.requester.id,
    resourceId: input.resourceId,
    role: input.role,
    durationSeconds: input.durationSeconds,
    reason: input.reason,
    ticket: input.ticket,
    ...(input.source === undefined ? {} : { source: input.source }),
    state: autoApproved ? 'approved' : 'pending',
    route,
    reviews: [],
    ...unstartedLifecycle(now),
    ...(autoApproved ? {} : { reviewBy: now + input.pendingTtlSeconds * 1000 }),
  };
}

/** True once a pending request can no longer be reviewed; the expiry loop then ends it ({@link lapse}). */
export function isPastReviewDeadline(
  request: Pick<AccessRequest, 'state' | 'reviewBy'>,
  now: number,
): boolean {
  return request.state === 'pending' && request.reviewBy !== undefined && now >= request.reviewBy;
}

/** Nobody completed the reviews in time: the request ends `expired`, dated at its deadline. */
export function lapse(request: AccessRequest, now: number): AccessRequest {
  if (!isPastReviewDeadline(request, now)) {
    throw new PortcullisError('invalid_transition', 'The request has not reached its review deadline');
  }
  return next(request, 'expired', now, {
    endedAt: request.reviewBy ?? now,
    endReason: 'not reviewed in time',
  });
}

function next(
  request: AccessRequest,
  to: RequestState,
  now: number,
  patch: Partial<AccessRequest>,
): AccessRequest {
  assertTransition(request.state, to);
  return { ...request, ...patch, state: to, updatedAt: now, version: request.version + 1 };
}

/** Groups whose approvals count for this route; a reviewer outside them is not an approver here. */
export function reviewerQualifies(route: ApprovalRoute, reviewer: Principal): boolean {
  return route.approverGroups.length === 0 || reviewer.groups.some((g) => route.approverGroups.includes(g));
}

export interface ReviewInput {
  readonly reviewer: Principal;
  readonly verdict: Verdict;
  readonly reason: string;
  /** Whether the policy set authorises this reviewer for `approve` on the resource. */
  readonly policyAllows: boolean;
  /**
   * The canonical id of a principal id (`identity_links`): identities linked into one person are
   * one person here, also when the request or an earlier review was made before the link existed.
   * The identity when absent (no links).
   */
  readonly canonicalId?: (principalId: string) => string;
}

/**
 * Applies one review. Nobody reviews their own request; a person counts once whatever groups they
 * hold and whichever of their linked identities they use; a denial by an authorised approver ends the request; the threshold approves it.
 */
export function applyReview(request: AccessRequest, input: ReviewInput, now: number): AccessRequest {
  if (request.state !== 'pending') {
    throw new PortcullisError('invalid_transition', `The request is ${request.state}, not pending`, {
      state: request.state,
    });
  }
  if (isPastReviewDeadline(request, now)) {
    throw new PortcullisError(
      'request_expired',
      'The request was not reviewed in time (requests.pending_ttl); the requester may ask again',
      { reviewBy: new Date(request.reviewBy ?? now).toISOString() },
    );
  }
  const canonical = input.canonicalId ?? ((id: string) => id);
  const reviewer = canonical(input.reviewer.id);
  if (reviewer === canonical(request.requesterId)) {
    throw new PortcullisError('self_review', 'Nobody may approve or deny their own request');
  }
  if (!input.policyAllows || !reviewerQualifies(request.route, input.reviewer)) {
    throw new PortcullisError('not_an_approver', 'You are not an authorised approver for this request', {
      approverGroups: request.route.approverGroups,
    });
  }
  if (request.reviews.some((r) => canonical(r.reviewerId) === reviewer)) {
    throw new PortcullisError('already_reviewed', 'You have already reviewed this request');
  }
  const review: Review = {
    reviewerId: input.reviewer.id,
    verdict: input.verdict,
    reason: input.reason,
    at: now,
  };
  const reviews = [...request.reviews, review];
  if (input.verdict === 'deny') {
    return next(request, 'denied', now, { reviews, endedAt: now, endReason: input.reason || 'denied' });
  }
  const approvals = new Set(
    reviews.filter((r) => r.verdict === 'approve').map((r) => canonical(r.reviewerId)),
  ).size;
  if (approvals >= Math.max(1, request.route.requiredApprovals)) {
    return next(request, 'approved', now, { reviews });
  }
  return { ...request, reviews, updatedAt: now, version: request.version + 1 };
}

/**
 * Approvals a route really needs: none for an auto-approve route without approvals, otherwise at
 * least one (a route of 0 approvals that is not auto-approved still needs someone to approve).
 */
export function effectiveApprovals(route: ApprovalRoute): number {
  return route.autoApprove && route.requiredApprovals === 0 ? 0 : Math.max(1, route.requiredApprovals);
}

/**
 * Whether the route the policy gives now (`current`) asks no more than the route the request has
 * followed (`followed`), for a request of `durationSeconds`. It asks more when it needs more
 * approvals, when its approver groups leave out a group whose approvals counted (or restrict a
 * route where anyone authorised could approve), or when its maximum is below the duration.
 */
export function routeStillCovers(
  followed: ApprovalRoute,
  current: ApprovalRoute,
  durationSeconds: number,
): boolean {
  if (effectiveApprovals(current) > effectiveApprovals(followed)) return false;
  if (!(durationSeconds <= Math.min(current.maxDurationSeconds, maxDurationSeconds))) return false;
  if (current.approverGroups.length === 0) return true;
  return (
    followed.approverGroups.length > 0 &&
    followed.approverGroups.every((g) => current.approverGroups.includes(g))
  );
}

/**
 * The policy re-check at approval or activation failed: the request (pending with its last
 * approval applied, or approved and not yet active) ends denied by the system.
 */
export function denyOnRecheck(request: AccessRequest, reason: string, now: number): AccessRequest {
  return next(request, 'denied', now, { endedAt: now, endReason: reason });
}

/** Access becomes usable: the clock starts now, not when the request was made. */
export function activate(request: AccessRequest, now: number): AccessRequest {
  return next(request, 'active', now, { activatedAt: now, expiresAt: now + request.durationSeconds * 1000 });
}

export function markFailed(request: AccessRequest, reason: string, now: number): AccessRequest {
  return next(request, 'failed', now, { endedAt: now, endReason: reason });
}

export function expire(request: AccessRequest, now: number): AccessRequest {
  if (request.expiresAt === null || now < request.expiresAt) {
    throw new PortcullisError('invalid_transition', 'The grant has not reached its end yet');
  }
  return next(request, 'expired', now, { endedAt: request.expiresAt, endReason: 'expired' });
}

export type EndedBy = 'owner' | 'requester';

/**
 * Ends active access early: revoked by an owner/admin, or released by the requester (under any of
 * their linked identities, by `canonicalId`).
 */
export function revoke(
  request: AccessRequest,
  actor: Principal,
  by: EndedBy,
  reason: string,
  now: number,
  canonicalId: (principalId: string) => string = (id) => id,
): AccessRequest {
  if (by === 'requester' && canonicalId(actor.id) !== canonicalId(request.requesterId)) {
    throw new PortcullisError('forbidden', 'Only the requester can release their own access');
  }
  const label = by === 'requester' ? 'released by requester' : 'revoked';
  return next(request, 'revoked', now, { endedAt: now, endReason: reason ? `${label}: ${reason}` : label });
}

/**
 * The requester withdraws a request that has not become active. `canonicalId` as in
 * {@link ReviewInput}: the requester under any of their linked identities.
 */
export function cancel(
  request: AccessRequest,
  actor: Principal,
  now: number,
  canonicalId: (principalId: string) => string = (id) => id,
): AccessRequest {
  if (canonicalId(actor.id) !== canonicalId(request.requesterId)) {
    throw new PortcullisError('forbidden', 'Only the requester can cancel their request');
  }
  return next(request, 'cancelled', now, { endedAt: now, endReason: 'cancelled by requester' });
}

/** Why all of a requester's access ends at once. */
export type AccountClosure = 'deprovisioned' | 'locked';

/**
 * The identity provider deprovisioned the requester (SCIM) or an administrator locked them: a
 * request not yet active is cancelled, active access is revoked. Other states are final and stay
 * as they are.
 */
export function endForAccountClosure(
  request: AccessRequest,
  closure: AccountClosure,
  reason: string,
  now: number,
): AccessRequest {
  const label = `${closure}: ${reason}`;
  if (request.state === 'active') return next(request, 'revoked', now, { endedAt: now, endReason: label });
  return next(request, 'cancelled', now, { endedAt: now, endReason: label });
}

/** True while the grant gives access at `now`: the check tokens and the gateway rely on. */
export function isAccessLive(request: Pick<AccessRequest, 'state' | 'expiresAt'>, now: number): boolean {
  return request.state === 'active' && request.expiresAt !== null && now < request.expiresAt;
}
