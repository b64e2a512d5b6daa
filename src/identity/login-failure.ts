/**
 * Turns what openid-client throws during a sign-in into `login_failed` errors with a stable
 * `reason`. Messages say what went wrong in words a user or operator can act on and never carry
 * tokens, codes, verifiers or the IdP's free-text descriptions (attacker-controlled in a callback).
 */
import * as client from 'openid-client';
import { PortcullisError } from '../core/errors.js';

export type LoginFailureReason =
  | 'state_mismatch'
  | 'browser_mismatch'
  | 'nonce_mismatch'
  | 'code_invalid'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  | 'id_token_invalid'
  | 'id_token_expired'
  | 'idp_error'
  | 'token_request_failed'
  | 'userinfo_failed'
  | 'invalid_response'
  | 'device_flow_unsupported'
  | 'expired_token'
  | 'access_denied';

export function loginFailure(reason: LoginFailureReason, message: string, cause?: unknown): PortcullisError {
  return new PortcullisError(
    'login_failed',
    message,
    { reason },
    cause === undefined ? undefined : { cause },
  );
}

/** An OAuth error code as sent by the IdP, if it looks like one; never free text. */
function oauthErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[a-z0-9_.-]{1,64}$/i.test(value) ? value : undefined;
}

function innerCause(error: client.ClientError): { message: string; claim: unknown } {
  const inner = error.cause;
  if (inner instanceof Error) {
    const detail = inner.cause as { claim?: unknown } | undefined;
    return { message: inner.message, claim: detail?.claim };
  }
  return { message: error.message, claim: undefined };
}

function fromClientError(error: client.ClientError): PortcullisError {
  const { message, claim } = innerCause(error);
  switch (error.code) {
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      if (claim === 'nonce')
        return loginFailure('nonce_mismatch', 'the ID token does not belong to this sign-in (nonce)', error);
      if (claim === 'iss')
        return loginFailure('issuer_mismatch', 'the ID token was issued by another identity provider', error);
      if (claim === 'aud' || claim === 'azp')
        return loginFailure('audience_mismatch', 'the ID token was issued to another client', error);
      return loginFailure('id_token_invalid', 'the ID token failed validation', error);
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return loginFailure(
        'id_token_expired',
        'the ID token is expired or not yet valid (check clocks)',
        error,
      );
    case 'OAUTH_KEY_SELECTION_FAILED':
      return loginFailure(
        'id_token_invalid',
        'no signing key of the identity provider matches the ID token',
        error,
      );
    case 'OAUTH_INVALID_RESPONSE':
      if (message.includes('"iss"'))
        return loginFailure(
          'issuer_mismatch',
          'the response came from another identity provider than the one this sign-in started with',
          error,
        );
      if (message.includes('"state"'))
        return loginFailure('state_mismatch', 'the response does not belong to this sign-in (state)', error);
      if (message.includes('signature'))
        return loginFailure('id_token_invalid', 'the ID token signature is not valid', error);
      return loginFailure('invalid_response', 'the identity provider sent an invalid response', error);
    default:
      return loginFailure('invalid_response', 'the identity provider sent an invalid response', error);
  }
}

/** The IdP answered the authorization request with an error (e.g. `access_denied`). */
export function idpRefusedLogin(errorParameter: unknown, cause?: unknown): PortcullisError {
  const idpError = oauthErrorCode(errorParameter);
  return new PortcullisError(
    'login_failed',
    `the identity provider refused the sign-in${idpError ? ` (${idpError})` : ''}`,
    { reason: 'idp_error', ...(idpError ? { idpError } : {}) },
    cause === undefined ? undefined : { cause },
  );
}

/** Classifies a failure of the authorization code grant (callback validation, token request, ID token). */
export function loginFailureFrom(error: unknown): PortcullisError {
  if (error instanceof PortcullisError) return error;
  if (error instanceof client.AuthorizationResponseError) return idpRefusedLogin(error.error, error);
  if (error instanceof client.ResponseBodyError) {
    if (error.error === 'invalid_grant') {
      return loginFailure(
        'code_invalid',
        'the authorization code is invalid, expired or already used',
        error,
      );
    }
    const idpError = oauthErrorCode(error.error);
    return new PortcullisError(
      'login_failed',
      `the identity provider refused the token request${idpError ? ` (${idpError})` : ''}`,
      { reason: 'token_request_failed', ...(idpError ? { idpError } : {}) },
      { cause: error },
    );
  }
  if (error instanceof client.ClientError) return fromClientError(error);
  return loginFailure('invalid_response', 'the sign-in response could not be processed', error);
}
