/**
 * What people hear about an access request, decided from an audit event and the request it names.
 * Pure: no I/O. The relay (src/app/notification-relay.ts) reads the audit log, loads the request,
 * asks {@link notificationFor} and hands the result to the channels.
 */
import { type AccessRequest, effectiveApprovals } from './access-request.js';
import type { AuditEventType } from './audit-event.js';

/** Audit event types that can become notifications; channels subscribe to some of them. */
export const notifiableEvents = [
  'request.created',
  'request.reminded',
  'request.approved',
  'request.denied',
  'request.cancelled',
  'request.expired',
  'grant.activated',
  'grant.failed',
  'grant.expiring',
  'grant.expired',
  'grant.revoked',
] as const satisfies readonly AuditEventType[];

export type NotifiableEvent = (typeof notifiableEvents)[number];

/** What a channel subscribes to when its configuration names no events. */
export const defaultNotificationEvents: readonly NotifiableEvent[] = [
  'request.created',
  'request.reminded',
  'request.approved',
  'request.denied',
  'request.expired',
  'grant.failed',
  'grant.expiring',
  'grant.revoked',
];

export function isNotifiableEvent(type: string): type is NotifiableEvent {
  return (notifiableEvents as readonly string[]).includes(type);
}

/** Who a notification is for, besides a channel's fixed recipients. */
export type NotificationAudience = 'approvers' | 'requester';

/** The facts of an audit event that decide a notification (a subset of an audit record). */
export interface NotifiedEvent {
  /** The audit event id: stable across retries and replicas, so receivers drop duplicates by it. */
  readonly id: string;
  readonly type: string;
  readonly actor: string;
  readonly at: number;
  readonly requestId: string | null;
  readonly grantId: string | null;
  /** The event's own reason (a denial's or revocation's), when it has one. */
  readonly reason: string | null;
}

export interface AccessNotification {
  readonly id: string;
  readonly event: NotifiableEvent;
  readonly at: number;
  /** Principal id or `system`. */
  readonly actor: string;
  readonly audience: NotificationAudience;
  readonly requestId: string;
  /** Set on grant events: what `portcullis creds` and `revoke` take. */
  readonly grantId: string | null;
  readonly requesterId: string;
  readonly resourceId: string;
  readonly role: string;
  readonly durationSeconds: number;
  /** The requester's reason, as asked. */
  readonly requestReason: string;
  readonly ticket: string | null;
  /** The reason of this step (denial, revocation, failure), when there is one. */
  readonly stepReason: string | null;
  readonly approvalsRequired: number;
  /** Empty: any authorised approver (nobody to address by group). */
  readonly approverGroups: readonly string[];
  readonly expiresAt: number | null;
  /** Approvals the request has so far, and when it lapses without the rest (for a reminder). */
  readonly approvalsGiven: number;
  readonly reviewBy: number | null;
}

/** Events for the request's approvers; every other step is for its requester. */
const forApprovers: ReadonlySet<string> = new Set(['request.created', 'request.reminded']);

/**
 * The notification an event calls for, or null: events of other types, events without a request,
 * and a `request.created` that needed no approval (its `request.approved` follows) call for none.
 * A new request, and its reminder, are for its approvers; every later step is for its requester.
 */
export function notificationFor(event: NotifiedEvent, request: AccessRequest): AccessNotification | null {
  if (!isNotifiableEvent(event.type) || event.requestId !== request.id) return null;
  if (event.type === 'request.created' && request.route.requiredApprovals === 0) return null;
  return {
    id: event.id,
    event: event.type,
    at: event.at,
    actor: event.actor,
    audience: forApprovers.has(event.type) ? 'approvers' : 'requester',
    requestId: request.id,
    grantId: event.grantId,
    requesterId: request.requesterId,
    resourceId: request.resourceId,
    role: request.role,
    durationSeconds: request.durationSeconds,
    requestReason: request.reason,
    ticket: request.ticket,
    stepReason: forApprovers.has(event.type) ? null : event.reason,
    approvalsRequired: effectiveApprovals(request.route),
    approverGroups: request.route.approverGroups,
    expiresAt: request.expiresAt,
    approvalsGiven: request.reviews.filter((review) => review.verdict === 'approve').length,
    reviewBy: request.reviewBy ?? null,
  };
}
