/**
 * Accepts JWT access tokens issued by a configured identity provider as API bearer tokens, for
 * IdPs with `api_audiences`. The unverified `iss` only picks which IdP's keys and rules apply;
 * everything is then checked against that IdP: signature with its JWKS (fetched from the
 * discovered `jwks_uri`, re-fetched when an unknown `kid` appears, at most once per cooldown),
 * `iss`, `aud` ∈ api_audiences, `alg` ∈ allowed_algorithms (so `none` and HMAC are refused),
 * `exp`/`nbf` with a small tolerance, and a `sub`.
 *
 * Failures are `invalid_token` with a `reason`: `malformed`, `unconfigured_issuer`,
 * `wrong_issuer`, `alg_not_allowed`, `unknown_kid`, `bad_signature`, `expired`, `not_yet_valid`,
 * `wrong_audience`, `invalid_claims`; an unreachable IdP is `identity_provider_unavailable`.
 *
 * @example
 * const verifier = new IdpJwtVerifier(config.identityProviders);
 * if (verifier.handles(bearer)) principal = await verifier.verify(bearer);
 */
import { createRemoteJWKSet, decodeJwt, errors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { VerifiedIdpToken } from '../app/session-service.js';
import type { IdentityProviderSettings } from '../config/load.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { isLoopbackUrl } from '../text/loopback-address.js';
import { principalFromClaims, subjectOf } from './idp-claims.js';
import { IdpDiscovery, isUnavailability, unavailable } from './idp-discovery.js';

/** Seconds of clock difference tolerated on `exp` and `nbf`. */
export const apiTokenClockToleranceSeconds = 30;

/** Default minimum time between two JWKS fetches triggered by unknown key ids. */
export const defaultJwksCooldownSeconds = 30;

/** Longer bearer tokens are refused unparsed. */
const maxTokenLength = 16_384;

export type InvalidTokenReason =
  | 'malformed'
  | 'unconfigured_issuer'
  | 'wrong_issuer'
  | 'alg_not_allowed'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'invalid_claims';

export interface IdpJwtVerifierOptions {
  readonly clock?: Clock;
  /** Discovery per IdP id, shared with {@link OidcLogin}; missing ones are created. */
  readonly discoveries?: ReadonlyMap<string, IdpDiscovery>;
  /** Minimum seconds between JWKS re-fetches caused by an unknown `kid`. Default 30. */
  readonly jwksCooldownSeconds?: number;
}

function invalid(reason: InvalidTokenReason, message: string, cause?: unknown): PortcullisError {
  return new PortcullisError(
    'invalid_token',
    message,
    { reason },
    cause === undefined ? undefined : { cause },
  );
}

/** Issuer identifiers compared the way openid-client's discovery compares them (URL-normalised). */
function issuerKey(issuer: string): string {
  return URL.parse(issuer)?.href ?? issuer;
}

interface VerificationKeys {
  readonly issuer: string;
  readonly jwks: JWTVerifyGetKey;
}

class ApiIdp {
  #keys: Promise<VerificationKeys> | undefined;

  constructor(
    readonly settings: IdentityProviderSettings,
    private readonly discovery: IdpDiscovery,
    private readonly jwksCooldownMs: number,
  ) {}

  keys(): Promise<VerificationKeys> {
    this.#keys ??= this.#load().catch((error: unknown) => {
      this.#keys = undefined;
      throw error;
    });
    return this.#keys;
  }

  async #load(): Promise<VerificationKeys> {
    const metadata = (await this.discovery.configuration()).serverMetadata();
    const jwksUri = metadata.jwks_uri ? URL.parse(metadata.jwks_uri) : null;
    if (jwksUri === null || (jwksUri.protocol !== 'https:' && !isLoopbackUrl(jwksUri))) {
      throw new PortcullisError(
        'identity_provider_unavailable',
        `identity provider "${this.settings.id}" publishes no usable HTTPS jwks_uri`,
        { idp: this.settings.id, reason: 'invalid_metadata' },
      );
    }
    return {
      issuer: metadata.issuer,
      jwks: createRemoteJWKSet(jwksUri, {
        timeoutDuration: this.settings.timeout * 1000,
        cooldownDuration: this.jwksCooldownMs,
      }),
    };
  }
}

function fromJoseError(idp: string, error: unknown): PortcullisError {
  if (error instanceof PortcullisError) return error;
  if (error instanceof errors.JWTExpired) return invalid('expired', 'the token has expired', error);
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'aud':
        return invalid('wrong_audience', 'the token is not meant for this API (audience)', error);
      case 'iss':
        return invalid('wrong_issuer', 'the token issuer does not match the identity provider', error);
      case 'nbf':
        return invalid('not_yet_valid', 'the token is not valid yet', error);
      default:
        return error.reason === 'missing'
          ? invalid('malformed', `the token lacks the "${error.claim}" claim`, error)
          : invalid('invalid_claims', `the token's "${error.claim}" claim is not valid`, error);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return invalid('alg_not_allowed', 'the token signing algorithm is not allowed', error);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return invalid('unknown_kid', 'no signing key of the identity provider matches the token', error);
  }
  if (
    error instanceof errors.JWSSignatureVerificationFailed ||
    error instanceof errors.JWKSMultipleMatchingKeys
  ) {
    return invalid('bad_signature', 'the token signature is not valid', error);
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return invalid('malformed', 'the token is not a well-formed JWT', error);
  }
  if (error instanceof errors.JWKSTimeout) return unavailable(idp, error, 'JWKS', 'timeout');
  if (error instanceof errors.JWKSInvalid) return unavailable(idp, error, 'JWKS', 'invalid_metadata');
  // jose's generic error here is a non-200 or non-JSON JWKS response: the IdP is not serving keys.
  if (isUnavailability(error) || (error instanceof errors.JOSEError && error.code === 'ERR_JOSE_GENERIC')) {
    return unavailable(idp, error, 'JWKS', 'unreachable');
  }
  return invalid('malformed', 'the token could not be verified', error);
}

export class IdpJwtVerifier {
  readonly #byIssuer = new Map<string, ApiIdp>();
  /** Issuers of IdPs used for sign-in only, to tell "wrong issuer" from "never heard of it". */
  readonly #loginOnlyIssuers = new Set<string>();
  readonly #clock: Clock;

  /**
   * @throws PortcullisError `config_invalid` when two API-enabled IdPs share an issuer, or when an
   * IdP lists its own client_id in api_audiences (its ID tokens would then pass as API tokens).
   */
  constructor(identityProviders: readonly IdentityProviderSettings[], options: IdpJwtVerifierOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const cooldownMs = (options.jwksCooldownSeconds ?? defaultJwksCooldownSeconds) * 1000;
    for (const settings of identityProviders) {
      const key = issuerKey(settings.issuer);
      if (settings.api_audiences.length === 0) {
        this.#loginOnlyIssuers.add(key);
        continue;
      }
      if (settings.api_audiences.includes(settings.client_id)) {
        throw new PortcullisError(
          'config_invalid',
          `identity provider "${settings.id}": api_audiences must not contain its client_id (ID tokens would be accepted as API tokens)`,
        );
      }
      if (this.#byIssuer.has(key)) {
        throw new PortcullisError(
          'config_invalid',
          `identity provider "${settings.id}": another identity provider accepting API tokens has the same issuer`,
        );
      }
      const discovery = options.discoveries?.get(settings.id) ?? new IdpDiscovery(settings);
      this.#byIssuer.set(key, new ApiIdp(settings, discovery, cooldownMs));
    }
  }

  /** True when at least one identity provider accepts API tokens. */
  get enabled(): boolean {
    return this.#byIssuer.size > 0;
  }

  /**
   * Whether an (unverified) bearer token claims to come from an IdP this verifier accepts, so the
   * HTTP layer can route it here rather than to Portcullis's own token verification. Not a check.
   */
  handles(token: string): boolean {
    const issuer = this.#peekIssuer(token);
    return issuer !== undefined && this.#byIssuer.has(issuerKey(issuer));
  }

  /**
   * Verifies `token` and returns the principal it asserts (groups mapped like at sign-in), with
   * when it was issued (`iat`, ms; null without one) and when it expires (ms).
   */
  async verify(token: string): Promise<VerifiedIdpToken> {
    const issuer = this.#peekIssuer(token);
    if (issuer === undefined) throw invalid('malformed', 'the token is not a well-formed JWT with an issuer');
    const idp = this.#byIssuer.get(issuerKey(issuer));
    if (idp === undefined) {
      if (this.#loginOnlyIssuers.has(issuerKey(issuer))) {
        throw invalid('wrong_issuer', 'tokens of this identity provider are not accepted by the API');
      }
      throw invalid('unconfigured_issuer', 'issuer not configured');
    }

    const { settings } = idp;
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      const keys = await idp.keys();
      ({ payload } = await jwtVerify(token, keys.jwks, {
        issuer: keys.issuer,
        audience: [...settings.api_audiences],
        algorithms: [...settings.allowed_algorithms],
        clockTolerance: apiTokenClockToleranceSeconds,
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      throw fromJoseError(settings.id, error);
    }
    const subject = subjectOf(payload);
    if (subject === undefined) throw invalid('malformed', 'the token has no usable subject');
    return {
      principal: principalFromClaims(subject, payload, settings),
      issuedAt: typeof payload.iat === 'number' ? payload.iat * 1000 : null,
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }

  #peekIssuer(token: string): string | undefined {
    if (token.length > maxTokenLength) return undefined;
    try {
      const { iss } = decodeJwt(token);
      return typeof iss === 'string' && iss !== '' ? iss : undefined;
    } catch {
      return undefined;
    }
  }
}
