/**
 * Why a Portcullis token was refused, as a stable reason carried in `invalid_token` errors (and
 * from there in `auth.token_rejected` audit events).
 */
import { errors } from 'jose';
import { PortcullisError } from '../core/errors.js';

export const tokenRejections = [
  'expired',
  'not_yet_valid',
  'bad_signature',
  'wrong_audience',
  'wrong_issuer',
  'unknown_kid',
  'alg_not_allowed',
  'wrong_type',
  'malformed',
] as const;
export type TokenRejection = (typeof tokenRejections)[number];

const messages: Readonly<Record<TokenRejection, string>> = {
  expired: 'The token has expired',
  not_yet_valid: 'The token is not valid yet',
  bad_signature: 'The token signature does not verify',
  wrong_audience: 'The token was issued for another audience',
  wrong_issuer: 'The token was issued by another issuer',
  unknown_kid: 'The token was signed with an unknown or retired key',
  alg_not_allowed: 'The token uses a signing algorithm that is not accepted',
  wrong_type: 'The token is of another type',
  malformed: 'The token is malformed',
};

/** An `invalid_token` error with `details.reason`. */
export function invalidToken(reason: TokenRejection, cause?: unknown): PortcullisError {
  return new PortcullisError(
    'invalid_token',
    messages[reason],
    { reason },
    cause === undefined ? undefined : { cause },
  );
}

/** Thrown by the key resolver when no published key has the token's kid. */
export class UnknownKeyId extends Error {
  constructor(kid: string) {
    super(`no published key ${kid}`);
    this.name = 'UnknownKeyId';
  }
}

const claimRejections: Readonly<Record<string, TokenRejection>> = {
  aud: 'wrong_audience',
  iss: 'wrong_issuer',
  typ: 'wrong_type',
  nbf: 'not_yet_valid',
  exp: 'expired',
};

/** Maps what `jwtVerify` (or our key resolver) threw to a rejection reason. */
export function rejectionFor(error: unknown): TokenRejection {
  if (error instanceof UnknownKeyId) return 'unknown_kid';
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (error instanceof errors.JWTClaimValidationFailed) {
    // A required claim that is absent is a malformed token, whichever claim it is.
    if (error.reason === 'missing') return 'malformed';
    return claimRejections[error.claim] ?? 'malformed';
  }
  return 'malformed';
}
