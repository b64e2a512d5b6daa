/** The refusal a principal that may not act gets, whichever door it comes through. */
import { PortcullisError } from '../core/errors.js';
import { type PrincipalLock, type PrincipalStanding, standingOf } from '../core/principal.js';

/** The error for a principal that may not act (the catalogue's title as its message); `undefined` when it may. */
export function standingRefusal(standing: PrincipalStanding): PortcullisError | undefined {
  switch (standing) {
    case 'enabled':
      return undefined;
    case 'disabled':
      return new PortcullisError('principal_disabled', undefined, { reason: 'principal_disabled' });
    case 'locked':
      // The catalogue's title only: the lock's reason is for administrators and the audit log.
      return new PortcullisError('principal_locked', undefined, { reason: 'principal_locked' });
  }
}

/**
 * Bounds the age of an IdP token without `iat`: one that expires more than this after a lock or
 * deactivation was issued after it for all Portcullis can tell. IdP API tokens live an hour or so.
 */
const assumedMaxTokenLifetimeMs = 24 * 3_600_000;

/**
 * The bearer token a principal presented: a Portcullis session carries the principal's
 * `sessionsValidAfter` from when it was issued; an IdP token only its times (ms).
 */
export type PresentedToken =
  | { readonly kind: 'session'; readonly sessionsValidAfter: number | null }
  | { readonly kind: 'idp'; readonly issuedAt: number | null; readonly expiresAt: number };

/**
 * Throws the refusal for a stored principal that may not act (`undefined`: no row, nothing to
 * refuse), and, given the token it presented, refuses a token issued before its last lock or
 * deactivation: a session taken from a stolen laptop stays dead after the account is unlocked.
 */
export function assertMayAct(
  principal:
    | {
        readonly disabled: boolean;
        readonly lock: PrincipalLock | null;
        readonly sessionsValidAfter: number | null;
      }
    | undefined,
  token?: PresentedToken,
): void {
  if (!principal) return;
  const refusal = standingRefusal(standingOf(principal));
  if (refusal) throw refusal;
  const validAfter = principal.sessionsValidAfter;
  if (!token || validAfter === null) return;
  const stale =
    token.kind === 'session'
      ? token.sessionsValidAfter !== validAfter
      : // Seconds-precision `iat`: a token from the lock's own second is refused too (fail closed).
        (token.issuedAt ?? token.expiresAt - assumedMaxTokenLifetimeMs) <= validAfter;
  if (stale)
    throw new PortcullisError(
      'invalid_token',
      'This session ended when the account was locked or deactivated; sign in again',
      { reason: 'session_revoked' },
    );
}
