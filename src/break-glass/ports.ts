/**
 * What the break-glass service needs from the edges: alert channels and the WebAuthn ceremony.
 * Both are contracts only; the adapters live in `src/break-glass/alerts/` and
 * `src/break-glass/webauthn.ts`, the service in `src/app/break-glass-service.ts`.
 */

/** Steps of an activation, and changes to custodians' factors, that every configured channel hears about. */
export type BreakGlassAlertKind =
  | 'initiated'
  | 'confirmed'
  | 'activated'
  | 'ended'
  | 'expired'
  | 'cancelled'
  | 'refused'
  | 'locked_out'
  | 'reviewed'
  | 'rotated'
  | 'drill_completed'
  | 'drill_overdue'
  | 'security_key_enrolled'
  | 'security_key_revoked';

/** One alert. Never carries a secret: no passphrase, code, share or downstream password. */
export interface BreakGlassAlert {
  /** Unique per alert; receivers use it to drop duplicates caused by retries. */
  readonly id: string;
  readonly kind: BreakGlassAlertKind;
  readonly accountId: string;
  readonly activationId: string | null;
  readonly drill: boolean;
  /** Custodian ids involved so far (initiator first). */
  readonly custodians: readonly string[];
  readonly reason: string | null;
  readonly incident: string | null;
  /** Epoch ms of the event. */
  readonly at: number;
  /** One human line, e.g. "Break-glass ACTIVE on prod-db-emergency until 14:05 UTC". */
  readonly summary: string;
}

/** One delivery route (a signed webhook, an SMTP recipient list…). */
export interface AlertChannel {
  readonly name: string;
  readonly kind: string;
  /** Delivers once or throws; retries are the dispatcher's business, not the channel's. */
  send(alert: BreakGlassAlert): Promise<void>;
}

/** Outcome of one delivery attempt, reported so that the service can audit it. */
export interface AlertDeliveryReport {
  readonly alertId: string;
  readonly channel: string;
  readonly attempt: number;
  readonly delivered: boolean;
  /** Present when `delivered` is false: the error message, never a secret. */
  readonly error?: string;
  /** True when the dispatcher has given up on this channel for this alert. */
  readonly final: boolean;
}

/**
 * Sends an alert to every channel without ever blocking or failing the caller: a channel that is
 * down is retried with backoff in the background and each attempt is reported.
 */
export interface AlertDispatcher {
  dispatch(alert: BreakGlassAlert): void;
  /** Resolves once every delivery started so far has succeeded or been given up (tests, shutdown). */
  settle(): Promise<void>;
}

/** A WebAuthn credential as stored for a custodian (public material only). */
export interface StoredSecurityKey {
  /** base64url credential id. */
  readonly credentialId: string;
  /** base64url COSE public key. */
  readonly publicKey: string;
  readonly counter: number;
  readonly transports: readonly string[];
}
