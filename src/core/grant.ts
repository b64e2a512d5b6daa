/**
 * A grant is the provisioned side of an active request: what was created in the target and the
 * progress of taking it back. Revocation is idempotent and retried with backoff; a failing
 * revocation stays visible (`revoke_failed`) and keeps being retried, it is never dropped.
 */
import { PortcullisError } from './errors.js';

export const grantStatuses = [
  'applying',
  'active',
  'revoking',
  'revoked',
  'revoke_failed',
  'apply_failed',
] as const;
export type GrantStatus = (typeof grantStatuses)[number];

/** What a provisioner created and needs to take the access back (role names, token ids…). Never secrets. */
export type Artefacts = Readonly<Record<string, string | number | boolean | null>>;

export interface Grant {
  readonly id: string;
  readonly requestId: string;
  readonly principalId: string;
  readonly resourceId: string;
  readonly role: string;
  readonly status: GrantStatus;
  readonly notBefore: number;
  readonly expiresAt: number;
  readonly artefacts: Artefacts;
  readonly revokeAttempts: number;
  /** When the next revocation attempt is due (null when none is pending). */
  readonly nextAttemptAt: number | null;
  /**
   * What went wrong in the last failed attempt. When it is a target system's own text (or an
   * unexpected fault), it may name the target's internals (admin account, address, version):
   * `lastErrorReference` is then set and only administrators are shown the text, everyone else
   * {@link targetFailureNotice} (docs/security.md).
   */
  readonly lastError: string | null;
  /** The reference of `lastError` in the audit log and the server log; null when it is Portcullis' own text. */
  readonly lastErrorReference: string | null;
  readonly revokedAt: number | null;
}

const transitions: Readonly<Record<GrantStatus, readonly GrantStatus[]>> = {
  applying: ['active', 'apply_failed'],
  active: ['revoking'],
  revoking: ['revoked', 'revoke_failed'],
  revoke_failed: ['revoked', 'revoke_failed'],
  revoked: [],
  apply_failed: ['revoking'],
};

function move(grant: Grant, to: GrantStatus, patch: Partial<Grant>): Grant {
  if (!transitions[grant.status].includes(to)) {
    throw new PortcullisError('invalid_transition', `A grant that is ${grant.status} cannot become ${to}`);
  }
  return { ...grant, ...patch, status: to };
}

export function newGrant(input: {
  id: string;
  requestId: string;
  principalId: string;
  resourceId: string;
  role: string;
  notBefore: number;
  expiresAt: number;
  artefacts: Artefacts;
}): Grant {
  return {
    ...input,
    status: 'applying',
    revokeAttempts: 0,
    nextAttemptAt: null,
    lastError: null,
    lastErrorReference: null,
    revokedAt: null,
  };
}

export function markApplied(grant: Grant, artefacts: Artefacts): Grant {
  return move(grant, 'active', { artefacts: { ...grant.artefacts, ...artefacts } });
}

/** `reference`: set when `error` is a target's own text (see {@link Grant.lastErrorReference}). */
export function markApplyFailed(grant: Grant, error: string, reference: string | null = null): Grant {
  return move(grant, 'apply_failed', { lastError: error, lastErrorReference: reference });
}

/** Access has ended logically (expired or revoked); the target still has to be cleaned up. */
export function beginRevocation(grant: Grant, now: number): Grant {
  return move(grant, 'revoking', { nextAttemptAt: now });
}

export function markRevoked(grant: Grant, now: number): Grant {
  return move(grant, 'revoked', {
    revokedAt: now,
    nextAttemptAt: null,
    lastError: null,
    lastErrorReference: null,
  });
}

export const revocationBackoff = { baseMs: 500, maxMs: 5 * 60_000 } as const;

/** Exponential backoff with a ceiling: 0.5 s, 1 s, 2 s, … up to 5 minutes, forever. */
export function revocationDelayMs(attempts: number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 20);
  return Math.min(revocationBackoff.baseMs * 2 ** exponent, revocationBackoff.maxMs);
}

/** `reference`: set when `error` is a target's own text (see {@link Grant.lastErrorReference}). */
export function markRevokeFailed(
  grant: Grant,
  error: string,
  now: number,
  reference: string | null = null,
): Grant {
  const attempts = grant.revokeAttempts + 1;
  return move(grant, 'revoke_failed', {
    revokeAttempts: attempts,
    lastError: error,
    lastErrorReference: reference,
    nextAttemptAt: now + revocationDelayMs(attempts),
  });
}

export function needsRevocation(grant: Grant, now: number): boolean {
  return (
    (grant.status === 'revoking' || grant.status === 'revoke_failed') && (grant.nextAttemptAt ?? 0) <= now
  );
}

/**
 * What requesters and approvers read instead of a target system's own error text, which is kept
 * for administrators (grant view, audit log, server log) under `reference`.
 */
export function targetFailureNotice(what: 'provisioning' | 'revocation', reference: string): string {
  const action = what === 'provisioning' ? 'Provisioning' : 'Revocation';
  return `${action} failed at the target (reference ${reference}); an administrator can find the details in the audit log under that reference`;
}

/**
 * The grant's last error as someone who is not an administrator sees it: a target's own text is
 * replaced by {@link targetFailureNotice}; Portcullis' own text (e.g. an unknown resource) is kept.
 */
export function lastErrorNotice(grant: Grant): string | null {
  if (grant.lastError === null || grant.lastErrorReference === null) return grant.lastError;
  // A grant that is revoke_failed failed its revocation; one with an error otherwise (revoking,
  // apply_failed) failed its provisioning, and a successful revocation clears the error.
  return targetFailureNotice(
    grant.status === 'revoke_failed' ? 'revocation' : 'provisioning',
    grant.lastErrorReference,
  );
}
