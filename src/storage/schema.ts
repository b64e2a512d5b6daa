/**
 * Table types for Kysely. Timestamps are integer milliseconds since the epoch (bigint in
 * PostgreSQL, INTEGER in SQLite); booleans are 0/1; structured values are JSON text. One shape
 * for both dialects keeps one set of migrations.
 */
import type { Generated } from 'kysely';

export interface PrincipalsTable {
  id: string;
  idp: string;
  subject: string;
  display_name: string;
  email: string | null;
  /** JSON array of Portcullis groups as asserted at the last login. */
  groups: string;
  groups_asserted_at: number;
  last_login_at: number;
  disabled: number;
  /** An administrator's lock (src/core/principal.ts): all three set, or all null. */
  locked_at: number | null;
  locked_by: string | null;
  lock_reason: string | null;
  /** Bearer tokens issued until then (ms) are refused: set by a lock or a SCIM deactivation. */
  sessions_valid_after: number | null;
}

export interface AccessRequestsTable {
  id: string;
  requester_id: string;
  resource_id: string;
  role: string;
  duration_seconds: number;
  reason: string;
  ticket: string | null;
  state: string;
  /** JSON ApprovalRoute */
  route: string;
  /** JSON Review[] */
  reviews: string;
  created_at: number;
  updated_at: number;
  activated_at: number | null;
  expires_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  version: number;
  /** `context.source` at creation (`api`, `cli`, …); `api` for rows from before 0009. */
  source: Generated<string>;
  /** Deadline of a pending request's reviews (ms); null when it never waited for any (0010). */
  review_by: number | null;
}

export interface GrantsTable {
  id: string;
  request_id: string;
  principal_id: string;
  resource_id: string;
  role: string;
  status: string;
  not_before: number;
  expires_at: number;
  /** JSON Artefacts */
  artefacts: string;
  revoke_attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  /** Reference of a target's own error text in `last_error` (only administrators are shown that text). */
  last_error_reference: string | null;
  revoked_at: number | null;
  /** Requester credentials sealed with the key-encryption key. */
  sealed_credentials: string | null;
}

export interface AuditEventsTable {
  seq: number;
  id: string;
  at: number;
  type: string;
  actor: string;
  severity: string;
  source_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  grant_id: string | null;
  resource_id: string | null;
  reason: string | null;
  /** JSON string[] */
  policy_ids: string;
  /** JSON object */
  data: string;
  prev_hash: string;
  hash: string;
}

/** A single row (id = 1) holding the chain head; locking it serialises appends. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
  /** The last sequence removed by retention (0: none); readers see only events after it. */
  pruned_through: Generated<number>;
}

export interface AuditCheckpointsTable {
  seq: number;
  at: number;
  head_hash: string;
  kid: string;
  signature: string;
}

export interface SigningKeysTable {
  kid: string;
  purpose: string;
  alg: string;
  public_jwk: string;
  sealed_private_jwk: string;
  created_at: number;
  active: number;
  publish_until: number | null;
}

/** Short-lived single-use values: OIDC login state, one-time CLI login codes. */
export interface EphemeralStateTable {
  kind: string;
  key: string;
  value: string;
  expires_at: number;
}

export interface BreakGlassCustodiansTable {
  account_id: string;
  custodian_id: string;
  passphrase_hash: string;
  sealed_totp_secret: string;
  last_time_step: number | null;
  enrolled_at: number;
  rotated_at: number | null;
}

export interface BreakGlassSealsTable {
  account_id: string;
  /** JSON Seal (verifier only) */
  seal: string;
  created_at: number;
}

export interface BreakGlassActivationsTable {
  id: string;
  account_id: string;
  state: string;
  drill: number;
  initiated_at: number;
  expires_at: number | null;
  handle_hash: string;
  /** JSON string[] */
  request_ids: string;
  /** JSON Activation */
  activation: string;
  version: number;
}

export interface BreakGlassGuessingTable {
  key: string;
  /** JSON GuessingState */
  state: string;
  version: number;
}

export interface BreakGlassSecurityKeysTable {
  credential_id: string;
  account_id: string;
  custodian_id: string;
  /** base64url COSE public key */
  public_key: string;
  counter: number;
  /** JSON string[] */
  transports: string;
  aaguid: string;
  backed_up: number;
  created_at: number;
}

export interface BreakGlassDrillsTable {
  id: string;
  account_id: string;
  activation_id: string;
  at: number;
  passed: number;
  /** JSON report */
  report: string;
}

/** SCIM 2.0 users an identity provider provisioned (docs/scim.md). */
export interface ScimUsersTable {
  id: string;
  idp: string;
  subject: string;
  user_name: string;
  user_name_key: string;
  external_id: string | null;
  active: number;
  created_at: number;
  updated_at: number;
  version: number;
}

export interface ScimGroupsTable {
  id: string;
  idp: string;
  display_name: string;
  external_id: string | null;
  created_at: number;
  updated_at: number;
  version: number;
}

export interface ScimGroupMembersTable {
  group_id: string;
  user_id: string;
}

/** One row, made by migration 0011: this installation's id. */
export interface InstallationTable {
  id: string;
  created_at: number;
}

export interface NotificationCursorsTable {
  channel: string;
  /** The last audit sequence the channel has handled. */
  position: number;
  lease_owner: string | null;
  /** Epoch ms; 0 when released. */
  lease_until: Generated<number>;
}

export interface Database {
  principals: PrincipalsTable;
  access_requests: AccessRequestsTable;
  grants: GrantsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
  signing_keys: SigningKeysTable;
  ephemeral_state: EphemeralStateTable;
  break_glass_custodians: BreakGlassCustodiansTable;
  break_glass_seals: BreakGlassSealsTable;
  break_glass_activations: BreakGlassActivationsTable;
  break_glass_guessing: BreakGlassGuessingTable;
  break_glass_drills: BreakGlassDrillsTable;
  break_glass_security_keys: BreakGlassSecurityKeysTable;
  scim_users: ScimUsersTable;
  scim_groups: ScimGroupsTable;
  scim_group_members: ScimGroupMembersTable;
  notification_cursors: NotificationCursorsTable;
  installation: InstallationTable;
}

export type { Generated };
