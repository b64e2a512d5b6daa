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
  readonly lastError: string | null;
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
    revokedAt: null,
  };
}

export function markApplied(grant: Grant, artefacts: Artefacts): Grant {
  return move(grant, 'active', { artefacts: { ...grant.artefacts, ...artefacts } });
}

export function markApplyFailed(grant: Grant, error: string): Grant {
  return move(grant, 'apply_failed', { lastError: error });
}

/** Access has ended logically (expired or revoked); the target still has to be cleaned up. */
export function beginRevocation(grant: Grant, now: number): Grant {
  return move(grant, 'revoking', { nextAttemptAt: now });
}

export function markRevoked(grant: Grant, now: number): Grant {
  return move(grant, 'revoked', { revokedAt: now, nextAttemptAt: null, lastError: null });
}

export const revocationBackoff = { baseMs: 500, maxMs: 5 * 60_000 } as const;

/** Exponential backoff with a ceiling: 0.5 s, 1 s, 2 s, … up to 5 minutes, forever. */
export function revocationDelayMs(attempts: number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 20);
  return Math.min(revocationBackoff.baseMs * 2 ** exponent, revocationBackoff.maxMs);
}

export function markRevokeFailed(grant: Grant, error: string, now: number): Grant {
  const attempts = grant.revokeAttempts + 1;
  return move(grant, 'revoke_failed', {
    revokeAttempts: attempts,
    lastError: error,
    nextAttemptAt: now + revocationDelayMs(attempts),
  });
}

export function needsRevocation(grant: Grant, now: number): boolean {
  return (
    (grant.status === 'revoking' || grant.status === 'revoke_failed') && (grant.nextAttemptAt ?? 0) <= now
  );
}
