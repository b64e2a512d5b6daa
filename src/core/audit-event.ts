/**
 * What the audit log records. Events are built by the application layer and appended, in the same
 * transaction as the state change they describe, to a hash chain (see src/audit).
 */
export const auditEventTypes = [
  'config.loaded',
  'auth.login',
  'auth.login_failed',
  'auth.logout',
  'auth.token_rejected',
  'request.created',
  'request.denied_by_policy',
  'request.approved',
  'request.denied',
  'request.reviewed',
  'request.cancelled',
  'request.expired',
  'request.reminded',
  'request.review_rejected',
  'grant.activated',
  'grant.failed',
  'grant.expired',
  'grant.expiring',
  'grant.revoked',
  'grant.released',
  'grant.revocation_completed',
  'grant.revocation_failed',
  'token.issued',
  'credentials.shown',
  'ssh.key_certified',
  'ssh.session_started',
  'ssh.session_closed',
  'ssh.session_ended',
  'keys.rotated',
  'keys.next_published',
  'audit.viewed',
  'audit.pruned',
  'security.denied',
  'gateway.admission_refused',
  'gateway.session_started',
  'gateway.session_ended',
  'gateway.session_end_requested',
  'gateway.statement',
  'gateway.statements',
  'gateway.recording_failed',
  'keys.recovery_key_set',
  'keys.emergency_rotated',
  'break_glass.enrolled',
  'break_glass.sealed',
  'break_glass.initiated',
  'break_glass.confirmed',
  'break_glass.activated',
  'break_glass.cancelled',
  'break_glass.expired',
  'break_glass.ended',
  'break_glass.refused',
  'break_glass.locked_out',
  'break_glass.credentials_shown',
  'break_glass.provisioning_failed',
  'break_glass.reviewed',
  'break_glass.rotated',
  'break_glass.drill_recorded',
  'break_glass.alert_failed',
  'break_glass.security_key_revoked',
  'scim.user_created',
  'scim.user_updated',
  'scim.user_deactivated',
  'scim.user_reactivated',
  'scim.user_deleted',
  'scim.group_created',
  'scim.group_updated',
  'scim.group_deleted',
  'scim.request_rejected',
  'principal.locked',
  'principal.unlocked',
  'notification.failed',
  'reconcile.completed',
  'reconcile.drift_found',
  'reconcile.taken_back',
  'reconcile.take_back_failed',
  'reconcile.standing_found',
] as const;
export type AuditEventType = (typeof auditEventTypes)[number];

export type Severity = 'info' | 'warning' | 'high';

/** One event before it is chained: the caller's facts. */
export interface AuditEventInput {
  readonly type: AuditEventType;
  /** Principal id or `system`. */
  readonly actor: string;
  readonly severity?: Severity;
  /** Source IP of the caller, when there was one. */
  readonly sourceIp?: string | null;
  readonly userAgent?: string | null;
  readonly requestId?: string | null;
  readonly grantId?: string | null;
  readonly resourceId?: string | null;
  readonly reason?: string | null;
  /** Deciding policy ids, for policy decisions. */
  readonly policyIds?: readonly string[];
  /** Further facts; never secrets. */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** Where the action came from, carried from the edge to the audit event. */
export interface RequestOrigin {
  readonly sourceIp: string | null;
  readonly userAgent: string | null;
  readonly channel: string;
}

export const systemOrigin: RequestOrigin = { sourceIp: null, userAgent: null, channel: 'system' };
