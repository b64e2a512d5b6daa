/**
 * The one error type of Portcullis. Every failure a caller can act on carries a stable `code`
 * (documented in docs/errors.md and rendered as `application/problem+json` by the HTTP edge).
 * Anything that is not a PortcullisError is an internal fault and is shown only as `internal`.
 */
export const errorCatalogue = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  malformed_json: { status: 400, title: 'The request body is not valid JSON' },
  invalid_duration: { status: 400, title: 'The requested duration is not allowed' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  invalid_token: { status: 401, title: 'The token is not valid' },
  forbidden: { status: 403, title: 'You are not allowed to do this' },
  csrf_rejected: { status: 403, title: 'The form did not come from this Portcullis console' },
  policy_denied: { status: 403, title: 'The policy does not allow this request' },
  self_review: { status: 403, title: 'Nobody may review their own request' },
  not_an_approver: { status: 403, title: 'You are not an authorised approver for this request' },
  not_found: { status: 404, title: 'Not found' },
  unknown_resource: { status: 404, title: 'Unknown resource' },
  unknown_role: { status: 404, title: 'Unknown role for this resource' },
  invalid_transition: { status: 409, title: 'The request is not in a state that allows this' },
  already_reviewed: { status: 409, title: 'You have already reviewed this request' },
  request_expired: { status: 409, title: 'The request was not reviewed in time' },
  conflict: { status: 409, title: 'The resource changed concurrently; try again' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  login_failed: { status: 400, title: 'The sign-in did not complete' },
  sign_in_not_allowed: { status: 403, title: "The identity provider's rules do not let this user sign in" },
  reauthentication_required: { status: 401, title: 'Your groups are too old; sign in again' },
  audit_unavailable: { status: 503, title: 'The audit log cannot be written; the action was refused' },
  provisioning_failed: { status: 502, title: 'The target system did not accept the change' },
  database_auth_refused: {
    status: 502,
    title: 'The database asked for a login this connection does not allow; nothing was sent',
  },
  identity_provider_unavailable: { status: 502, title: 'The identity provider could not be reached' },
  config_invalid: { status: 500, title: 'The configuration is not valid' },
  unknown_emergency_account: { status: 404, title: 'Unknown emergency account' },
  not_a_custodian: { status: 403, title: 'You are not a custodian of this emergency account' },
  self_confirmation: { status: 403, title: 'The initiator cannot confirm their own break-glass activation' },
  already_confirmed: {
    status: 409,
    title: 'You have already confirmed this activation; one person counts once',
  },
  confirmation_window_closed: { status: 409, title: 'The confirmation window of this activation has passed' },
  scope_exceeded: { status: 403, title: 'The request is outside the emergency account scope' },
  break_glass_auth_failed: { status: 401, title: 'The emergency credentials were not accepted' },
  break_glass_locked: { status: 429, title: 'Too many failed attempts; try again later' },
  share_invalid: { status: 400, title: 'A recovery share is mistyped or malformed' },
  share_wrong_account: { status: 400, title: 'A recovery share belongs to another account or seal' },
  shares_duplicated: { status: 400, title: 'The same recovery share was given more than once' },
  shares_insufficient: { status: 400, title: 'Not enough distinct recovery shares' },
  shares_mismatch: { status: 403, title: 'The recovery shares do not open this seal' },
  break_glass_not_enrolled: {
    status: 409,
    title: 'The emergency account is not ready: a custodian is not enrolled or the seal is missing',
  },
  break_glass_unavailable: { status: 503, title: 'Break-glass is not configured on this server' },
  drill_already_recorded: { status: 409, title: 'This drill was already recorded' },
  scim_invalid_filter: { status: 400, title: 'The SCIM filter is malformed or not supported' },
  scim_invalid_syntax: { status: 400, title: 'The SCIM request does not follow the schema' },
  scim_invalid_value: { status: 400, title: 'A SCIM attribute has a missing or unacceptable value' },
  scim_invalid_path: { status: 400, title: 'The SCIM PATCH path is not valid' },
  scim_no_target: { status: 400, title: 'The SCIM PATCH path matches nothing' },
  scim_mutability: { status: 400, title: 'The SCIM attribute cannot be changed' },
  scim_uniqueness: { status: 409, title: 'A SCIM resource with this unique value already exists' },
  principal_disabled: { status: 403, title: 'This account was deprovisioned by its identity provider' },
  principal_locked: { status: 403, title: 'This account was locked by an administrator' },
  internal: { status: 500, title: 'Internal error' },
  recovery_key_refused: { status: 403, title: 'The recovery key was not accepted' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra, non-secret fields shown to the caller (e.g. the policy reason, validation issues). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message?: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message ?? errorCatalogue[code].title, options);
    this.name = 'PortcullisError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = details;
  }

  /** Client errors are safe to show; server-side faults are reported as a generic title. */
  get expose(): boolean {
    return this.status < 500 || this.code === 'audit_unavailable' || this.code === 'provisioning_failed';
  }
}

export function isPortcullisError(value: unknown): value is PortcullisError {
  return value instanceof PortcullisError;
}
