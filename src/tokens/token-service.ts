/**
 * Portcullis-issued JWTs, signed with the active `token` signing key (EdDSA or ES256):
 *
 * - **Access tokens** for a grant (`typ: at+jwt`, RFC 9068). `aud` is the configured audience
 *   plus the resource id, so a service behind Portcullis can insist on tokens for itself. `exp`
 *   never falls after the grant's end (rounded down to the second).
 * - **Session tokens** the CLI and console use for the API after login
 *   (`typ: portcullis-session+jwt`, `aud: <audience>:session`).
 *
 * The two never stand in for each other: type and audience differ and both are checked.
 * Verification accepts EdDSA and ES256, each only under a published key made for it (a key's
 * algorithm, not the token's header, decides), checks issuer, audience and type exactly, tolerates
 * 5 s of clock skew on `nbf` and none on `exp`, and resolves keys from the published key set.
 */
import { randomBytes } from 'node:crypto';
import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { PortcullisError } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import type { Principal } from '../core/principal.js';
import type { SigningKeyStore } from './key-store.js';
import { tokenSigningAlgorithms } from './signing-algorithms.js';
import { invalidToken, rejectionFor, UnknownKeyId } from './token-errors.js';

export const accessTokenType = 'at+jwt';
export const sessionTokenType = 'portcullis-session+jwt';

/** Accepted difference between replicas' clocks, applied to `nbf` only. */
export const clockToleranceSeconds = 5;

/** Tokens longer than this are refused before any parsing. */
const maxTokenLength = 8192;

/** The slice of {@link SigningKeyStore} the token service uses. */
export type TokenKeys = Pick<SigningKeyStore, 'activeSigningKey' | 'verificationKey'>;

export interface TokenServiceOptions {
  readonly keys: TokenKeys;
  /** `iss` of every token: the public URL of Portcullis. */
  readonly issuer: string;
  /** Base audience (`tokens.audience`); session tokens use `<audience>:session`. */
  readonly audience: string;
  /** Longest life of an access token; a longer request is shortened to it. */
  readonly accessTokenTtlSeconds: number;
  /** Longest life of a session token; a longer request is shortened to it. */
  readonly sessionTtlSeconds: number;
  /** `client_id` of access tokens (RFC 9068 requires one). Default `portcullis`. */
  readonly clientId?: string;
}

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  /** Milliseconds since the epoch (a whole second); for access tokens never after the grant's end. */
  readonly expiresAt: number;
}

export interface AccessTokenInput {
  readonly grant: Pick<
    Grant,
    'id' | 'principalId' | 'resourceId' | 'role' | 'status' | 'notBefore' | 'expiresAt'
  >;
  readonly principal: Pick<Principal, 'id'>;
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** Requested lifetime; capped at the configured access token TTL. Default: that TTL. */
  readonly ttlSeconds?: number;
  /** Scopes the role maps to (token resources), put in `scope` space-separated. */
  readonly scopes?: readonly string[];
}

export interface VerifiedAccessToken {
  readonly jti: string;
  /** The principal id. */
  readonly sub: string;
  readonly grantId: string;
  readonly role: string;
  readonly resourceId: string;
  readonly audience: readonly string[];
  readonly scope: string | null;
  readonly clientId: string;
  /** Milliseconds since the epoch. */
  readonly issuedAt: number;
  readonly notBefore: number;
  readonly expiresAt: number;
}

export interface VerifiedSession {
  readonly jti: string;
  /** The principal id. */
  readonly sub: string;
  /** The principal as asserted when the session was issued (groups included). */
  readonly principal: Principal;
  readonly issuedAt: number;
  readonly expiresAt: number;
  /** The principal's `sessionsValidAfter` when the session was issued (claim `sva`), or null. */
  readonly sessionsValidAfter: number | null;
}

/** RFC 7662 introspection response. An inactive token reveals nothing else. */
export type IntrospectionResponse =
  | { readonly active: false }
  | {
      readonly active: true;
      readonly token_type: 'Bearer';
      readonly iss: string;
      readonly sub: string;
      readonly aud: readonly string[];
      readonly exp: number;
      readonly iat: number;
      readonly nbf: number;
      readonly jti: string;
      readonly client_id: string;
      readonly scope?: string;
      readonly grant_id: string;
      readonly role: string;
      readonly resource: string;
    };

/** Whether a grant gives access now; injected so the service stays independent of storage. */
export type GrantLiveness = (grantId: string) => Promise<boolean>;

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function newJti(): string {
  return randomBytes(16).toString('base64url');
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function requireString(payload: JWTPayload, claim: string): string {
  const value = payload[claim];
  if (typeof value !== 'string' || value === '') throw invalidToken('malformed');
  return value;
}

function requireNumber(payload: JWTPayload, claim: string): number {
  const value = payload[claim];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidToken('malformed');
  return value;
}

function audiences(payload: JWTPayload): string[] {
  return typeof payload.aud === 'string' ? [payload.aud] : isStringArray(payload.aud) ? payload.aud : [];
}

function positiveTtl(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new PortcullisError('validation_failed', `${name} must be a positive whole number of seconds`, {
      [name]: value,
    });
  }
  return value;
}

/**
 * Issues and verifies Portcullis access and session tokens, and answers token introspection.
 *
 * @example
 * const tokens = new TokenService({
 *   keys, issuer: config.server.publicUrl, audience: config.tokens.audience,
 *   accessTokenTtlSeconds: config.tokens.accessTokenTtlSeconds,
 *   sessionTtlSeconds: config.tokens.sessionTtlSeconds,
 * });
 * const { token, expiresAt } = await tokens.issueAccessToken({ grant, principal, now: clock.now() });
 */
export class TokenService {
  readonly issuer: string;
  readonly audience: string;
  readonly sessionAudience: string;
  readonly #keys: TokenKeys;
  readonly #accessTokenTtlSeconds: number;
  readonly #sessionTtlSeconds: number;
  readonly #clientId: string;

  constructor(options: TokenServiceOptions) {
    if (!options.issuer || !options.audience) throw new TypeError('issuer and audience are required');
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.sessionAudience = `${options.audience}:session`;
    this.#keys = options.keys;
    this.#accessTokenTtlSeconds = positiveTtl(options.accessTokenTtlSeconds, 'accessTokenTtlSeconds');
    this.#sessionTtlSeconds = positiveTtl(options.sessionTtlSeconds, 'sessionTtlSeconds');
    this.#clientId = options.clientId ?? 'portcullis';
  }

  /**
   * Issues an access token for a live grant held by `principal`. `exp` is the earlier of
   * `now + ttl` and the grant's end, in whole seconds rounded down. Refused (`forbidden`) when the
   * grant is not live at `now`, ends within the second, or belongs to someone else.
   */
  async issueAccessToken(input: AccessTokenInput): Promise<IssuedToken> {
    const { grant, principal, now } = input;
    if (grant.principalId !== principal.id) {
      throw new PortcullisError('forbidden', 'The grant belongs to another principal', {
        reason: 'not_grant_holder',
      });
    }
    const live = grant.status === 'active' && grant.notBefore <= now && now < grant.expiresAt;
    const ttl = Math.min(
      positiveTtl(input.ttlSeconds ?? this.#accessTokenTtlSeconds, 'ttlSeconds'),
      this.#accessTokenTtlSeconds,
    );
    const iat = seconds(now);
    // INVARIANT: exp * 1000 <= grant.expiresAt — a token never outlives its grant.
    const exp = Math.min(iat + ttl, seconds(grant.expiresAt));
    if (!live || exp * 1000 <= now) {
      throw new PortcullisError(
        'forbidden',
        `Grant ${grant.id} is not live, so no token can be issued for it`,
        {
          reason: 'grant_not_live',
          grantId: grant.id,
          status: grant.status,
        },
      );
    }
    const scope = input.scopes && input.scopes.length > 0 ? input.scopes.join(' ') : undefined;
    const jti = newJti();
    const token = await this.#sign(accessTokenType, {
      iss: this.issuer,
      sub: principal.id,
      aud: [this.audience, grant.resourceId],
      iat,
      nbf: iat,
      exp,
      jti,
      client_id: this.#clientId,
      ...(scope === undefined ? {} : { scope }),
      grant_id: grant.id,
      role: grant.role,
      resource: grant.resourceId,
    });
    return { token, jti, expiresAt: exp * 1000 };
  }

  /**
   * Issues a session token for the API after login; `ttlSeconds` is capped at the configured session
   * TTL. `sessionsValidAfter` is the principal's stored value, carried as `sva` so a later lock or
   * deactivation (which changes it) ends this session for good.
   */
  async issueSessionToken(
    principal: Principal,
    now: number,
    ttlSeconds?: number,
    sessionsValidAfter: number | null = null,
  ): Promise<IssuedToken> {
    const ttl = Math.min(
      positiveTtl(ttlSeconds ?? this.#sessionTtlSeconds, 'ttlSeconds'),
      this.#sessionTtlSeconds,
    );
    const iat = seconds(now);
    const jti = newJti();
    const token = await this.#sign(sessionTokenType, {
      iss: this.issuer,
      sub: principal.id,
      aud: this.sessionAudience,
      iat,
      nbf: iat,
      exp: iat + ttl,
      jti,
      idp: principal.idp,
      idp_sub: principal.subject,
      name: principal.displayName,
      ...(principal.email === null ? {} : { email: principal.email }),
      groups: [...principal.groups],
      ...(sessionsValidAfter === null ? {} : { sva: sessionsValidAfter }),
    });
    return { token, jti, expiresAt: (iat + ttl) * 1000 };
  }

  /**
   * Verifies an access token; throws `invalid_token` with `details.reason`. With `resourceId`,
   * a token for another resource is refused as `wrong_audience`.
   */
  async verifyAccessToken(
    token: string,
    now: number,
    options: { readonly resourceId?: string } = {},
  ): Promise<VerifiedAccessToken> {
    const payload = await this.#verify(token, now, accessTokenType, this.audience);
    const resourceId = requireString(payload, 'resource');
    const audience = audiences(payload);
    if (
      options.resourceId !== undefined &&
      (resourceId !== options.resourceId || !audience.includes(resourceId))
    ) {
      throw invalidToken('wrong_audience');
    }
    return {
      jti: requireString(payload, 'jti'),
      sub: requireString(payload, 'sub'),
      grantId: requireString(payload, 'grant_id'),
      role: requireString(payload, 'role'),
      resourceId,
      audience,
      scope: typeof payload.scope === 'string' ? payload.scope : null,
      clientId: requireString(payload, 'client_id'),
      issuedAt: requireNumber(payload, 'iat') * 1000,
      notBefore: requireNumber(payload, 'nbf') * 1000,
      expiresAt: requireNumber(payload, 'exp') * 1000,
    };
  }

  /** Verifies a session token; throws `invalid_token` with `details.reason`. */
  async verifySessionToken(token: string, now: number): Promise<VerifiedSession> {
    const payload = await this.#verify(token, now, sessionTokenType, this.sessionAudience);
    const sub = requireString(payload, 'sub');
    const idp = requireString(payload, 'idp');
    const subject = requireString(payload, 'idp_sub');
    if (!isStringArray(payload.groups)) throw invalidToken('malformed');
    const principal: Principal = {
      id: sub,
      idp,
      subject,
      displayName: typeof payload.name === 'string' ? payload.name : subject,
      email: typeof payload.email === 'string' ? payload.email : null,
      groups: payload.groups,
    };
    return {
      jti: requireString(payload, 'jti'),
      sub,
      principal,
      issuedAt: requireNumber(payload, 'iat') * 1000,
      expiresAt: requireNumber(payload, 'exp') * 1000,
      sessionsValidAfter: typeof payload.sva === 'number' ? payload.sva : null,
    };
  }

  /**
   * Token introspection (RFC 7662) for access tokens. `{ active: false }` and nothing more for
   * anything invalid, expired, not an access token, or whose grant is no longer live. Failures
   * of `isGrantLive` or of the key store propagate: they are faults, not answers.
   */
  async introspect(token: string, now: number, isGrantLive: GrantLiveness): Promise<IntrospectionResponse> {
    let verified: VerifiedAccessToken;
    try {
      verified = await this.verifyAccessToken(token, now);
    } catch (error) {
      if (error instanceof PortcullisError && error.code === 'invalid_token') return { active: false };
      throw error;
    }
    if (!(await isGrantLive(verified.grantId))) return { active: false };
    return {
      active: true,
      token_type: 'Bearer',
      iss: this.issuer,
      sub: verified.sub,
      aud: verified.audience,
      exp: verified.expiresAt / 1000,
      iat: verified.issuedAt / 1000,
      nbf: verified.notBefore / 1000,
      jti: verified.jti,
      client_id: verified.clientId,
      ...(verified.scope === null ? {} : { scope: verified.scope }),
      grant_id: verified.grantId,
      role: verified.role,
      resource: verified.resourceId,
    };
  }

  async #sign(typ: string, claims: JWTPayload): Promise<string> {
    const key = await this.#keys.activeSigningKey('token');
    return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ }).sign(key.privateKey);
  }

  async #verify(token: string, now: number, typ: string, audience: string): Promise<JWTPayload> {
    if (typeof token !== 'string' || token.length === 0 || token.length > maxTokenLength) {
      throw invalidToken('malformed');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          if (typeof header.kid !== 'string' || header.kid === '') throw new errors.JWSInvalid('no kid');
          const key = await this.#keys.verificationKey('token', header.kid, now);
          if (!key) throw new UnknownKeyId(header.kid);
          // RFC 8725 §3.1: the key says which algorithm verifies, never the header alone.
          if (header.alg !== key.alg) throw new errors.JOSEAlgNotAllowed(`key ${header.kid} is ${key.alg}`);
          return key.publicKey;
        },
        {
          algorithms: [...tokenSigningAlgorithms],
          typ,
          issuer: this.issuer,
          audience,
          clockTolerance: clockToleranceSeconds,
          currentDate: new Date(now),
          requiredClaims: ['sub', 'jti', 'iat', 'nbf', 'exp'],
        },
      ));
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof UnknownKeyId) {
        throw invalidToken(rejectionFor(error), error);
      }
      // Not a verdict on the token (e.g. the key store could not be read): let it surface.
      throw error;
    }
    // The skew tolerance is for `nbf`; at `exp` the token ends on time, as its grant does.
    if (now >= requireNumber(payload, 'exp') * 1000) throw invalidToken('expired');
    return payload;
  }
}
