/**
 * Browser sign-in with one OpenID Connect identity provider: authorization code flow with PKCE
 * (S256), `state` and `nonce`. The pending sign-in lives in the shared {@link EphemeralStore}
 * (kind `oidc-login`, key = `state`), so any replica can finish it, and it can be finished once.
 *
 * @example
 * const login = new OidcLogin(settings, { ephemeral: store.ephemeral, clock });
 * // GET /auth/oidc/corp/login
 * const { authorizationUrl, loginId } = await login.begin({
 *   redirectUri: `${publicUrl}/auth/oidc/corp/callback`,
 *   returnTo: '/requests',
 * });
 * // set loginId in an HttpOnly, SameSite=Lax cookie (Path=/auth/oidc/corp), redirect to authorizationUrl
 * // GET /auth/oidc/corp/callback?code=…&state=…&iss=…
 * const { principal, returnTo } = await login.complete(callbackUrl, loginIdFromCookie);
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { EphemeralStore } from '../app/ports.js';
import type { IdentityProviderSettings } from '../config/load.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { type Claims, hasProfileClaims, principalFromClaims, subjectOf } from './idp-claims.js';
import { IdpDiscovery, isUnavailability, unavailable } from './idp-discovery.js';
import { idpRefusedLogin, loginFailure, loginFailureFrom } from './login-failure.js';

/** EphemeralStore kind of pending sign-ins. */
export const pendingLoginKind = 'oidc-login';

/** How long a user has to finish signing in at the IdP. */
export const defaultPendingLoginTtlSeconds = 600;

const maxReturnToLength = 2048;
const maxContextLength = 4096;

export interface OidcLoginOptions {
  readonly ephemeral: EphemeralStore;
  readonly clock?: Clock;
  /** Share one discovery with the {@link IdpJwtVerifier}; by default the login discovers alone. */
  readonly discovery?: IdpDiscovery;
  readonly pendingLoginTtlSeconds?: number;
}

export interface BeginLoginInput {
  /** This IdP's callback URL on Portcullis, registered at the IdP, e.g. `…/auth/oidc/corp/callback`. */
  readonly redirectUri: string;
  /** Where to send the browser afterwards: a path on Portcullis (`/requests`), never another site. */
  readonly returnTo?: string;
  /**
   * Opaque data the caller needs back at the callback (e.g. a CLI login's loopback redirect and
   * PKCE challenge), at most 4096 characters. Stored server-side, never sent to the IdP.
   */
  readonly context?: string;
}

export interface BegunLogin {
  /** Send the browser here (302/303). */
  readonly authorizationUrl: string;
  /**
   * Binds the sign-in to the browser that started it. Keep it in an HttpOnly, SameSite=Lax cookie
   * and pass it back to {@link OidcLogin.complete}; it defeats login CSRF (an attacker making a
   * victim's browser finish the attacker's sign-in).
   */
  readonly loginId: string;
  readonly expiresAt: number;
}

/** A device authorization (RFC 8628 §3.2) as the IdP answered it. */
export interface DeviceAuthorization {
  readonly deviceCode: string;
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly expiresInSeconds: number;
  readonly intervalSeconds: number;
}

/** One poll of the token endpoint with a device code. */
export type DevicePoll =
  | { readonly status: 'authorization_pending' }
  | { readonly status: 'slow_down' }
  | { readonly status: 'complete'; readonly principal: Principal };

const deviceCodeGrant = 'urn:ietf:params:oauth:grant-type:device_code';

export interface CompletedLogin {
  readonly principal: Principal;
  /** The `returnTo` given to {@link OidcLogin.begin}, already checked to be a local path. */
  readonly returnTo: string | undefined;
  /** The `context` given to {@link OidcLogin.begin}. */
  readonly context: string | undefined;
}

/** What the store holds between begin and complete. Version it: replicas may run different builds. */
interface PendingLogin {
  readonly v: 1;
  readonly idp: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly redirectUri: string;
  readonly returnTo: string | undefined;
  readonly context: string | undefined;
  /** SHA-256 of the loginId, so the store does not hold the browser binding itself. */
  readonly loginIdHash: string;
  readonly expiresAt: number;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function isLocalPath(value: string): boolean {
  // "/x" but not "//host" or "/\host" (browsers treat both as another origin), no control characters.
  return (
    /^\/(?![/\\])/.test(value) && !/[\u0000-\u001f\u007f]/.test(value) && value.length <= maxReturnToLength
  );
}

function parsePending(raw: string): PendingLogin | undefined {
  try {
    const value = JSON.parse(raw) as Partial<PendingLogin>;
    if (
      value.v !== 1 ||
      typeof value.idp !== 'string' ||
      typeof value.codeVerifier !== 'string' ||
      typeof value.nonce !== 'string' ||
      typeof value.redirectUri !== 'string' ||
      typeof value.loginIdHash !== 'string' ||
      typeof value.expiresAt !== 'number'
    ) {
      return undefined;
    }
    return value as PendingLogin;
  } catch {
    return undefined;
  }
}

export class OidcLogin {
  /** The identity provider's id from the configuration. */
  readonly id: string;
  readonly displayName: string;
  readonly protocol = 'oidc' as const;
  readonly #settings: IdentityProviderSettings;
  readonly #store: EphemeralStore;
  readonly #clock: Clock;
  readonly #discovery: IdpDiscovery;
  readonly #pendingTtlMs: number;

  constructor(settings: IdentityProviderSettings, options: OidcLoginOptions) {
    this.id = settings.id;
    this.displayName = settings.display_name;
    this.#settings = settings;
    this.#store = options.ephemeral;
    this.#clock = options.clock ?? systemClock;
    this.#discovery = options.discovery ?? new IdpDiscovery(settings);
    this.#pendingTtlMs = (options.pendingLoginTtlSeconds ?? defaultPendingLoginTtlSeconds) * 1000;
  }

  /**
   * Starts a sign-in: discovers the IdP if needed, stores the pending sign-in and returns where to
   * send the browser. Throws `identity_provider_unavailable` when the IdP cannot be reached within
   * its timeout, `validation_failed` for a bad redirect URI or returnTo.
   */
  async begin(input: BeginLoginInput): Promise<BegunLogin> {
    const redirectUri = URL.parse(input.redirectUri);
    if (redirectUri === null || (redirectUri.protocol !== 'https:' && redirectUri.protocol !== 'http:')) {
      throw new PortcullisError('validation_failed', 'redirectUri must be an absolute http(s) URL');
    }
    if (input.returnTo !== undefined && !isLocalPath(input.returnTo)) {
      throw new PortcullisError(
        'validation_failed',
        'returnTo must be a path on Portcullis, such as /requests',
        {
          field: 'returnTo',
        },
      );
    }
    if (input.context !== undefined && input.context.length > maxContextLength) {
      throw new PortcullisError(
        'validation_failed',
        `context must be at most ${maxContextLength} characters`,
      );
    }
    const configuration = await this.#discovery.configuration();

    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const loginId = randomBytes(32).toString('base64url');
    const scopes = new Set(['openid', ...this.#settings.scopes]);
    const authorizationUrl = client.buildAuthorizationUrl(configuration, {
      response_type: 'code',
      redirect_uri: redirectUri.href,
      scope: [...scopes].join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });

    const expiresAt = this.#clock.now() + this.#pendingTtlMs;
    const pending: PendingLogin = {
      v: 1,
      idp: this.id,
      codeVerifier,
      nonce,
      redirectUri: redirectUri.href,
      returnTo: input.returnTo,
      context: input.context,
      loginIdHash: sha256(loginId).toString('base64url'),
      expiresAt,
    };
    await this.#store.put(pendingLoginKind, state, JSON.stringify(pending), expiresAt);
    return { authorizationUrl: authorizationUrl.href, loginId, expiresAt };
  }

  /**
   * Finishes a sign-in from the URL the IdP redirected the browser to. The pending sign-in is
   * consumed first, so a callback (and its code) works once. Throws `login_failed` with a
   * `reason` (`state_mismatch`, `browser_mismatch`, `nonce_mismatch`, `code_invalid`,
   * `issuer_mismatch`, `idp_error`, …) or `identity_provider_unavailable`.
   *
   * @param loginId the value {@link begin} returned, from the browser's cookie. When given it must
   *   match (else `browser_mismatch`); HTTP routes should always pass it. Omitting it skips the
   *   browser binding, which is only right where the caller binds the flow another way.
   */
  async complete(callbackUrl: URL, loginId?: string): Promise<CompletedLogin> {
    const state = callbackUrl.searchParams.get('state');
    if (state === null || state === '') {
      // Some IdPs drop state on errors; still say what the IdP said rather than blame the state.
      const idpError = callbackUrl.searchParams.get('error');
      if (idpError !== null) throw idpRefusedLogin(idpError);
      throw loginFailure('state_mismatch', 'the identity provider sent no state');
    }
    const raw = await this.#store.take(pendingLoginKind, state, this.#clock.now());
    const pending = raw === undefined ? undefined : parsePending(raw);
    if (pending === undefined || pending.idp !== this.id || pending.expiresAt <= this.#clock.now()) {
      throw loginFailure(
        'state_mismatch',
        'this sign-in is unknown, expired or already finished; start again',
      );
    }
    if (
      loginId !== undefined &&
      !timingSafeEqual(sha256(loginId), Buffer.from(pending.loginIdHash, 'base64url'))
    ) {
      throw loginFailure('browser_mismatch', 'this sign-in was started in another browser; start again');
    }

    const configuration = await this.#discovery.configuration();
    // The token request must carry exactly the redirect_uri of the authorization request, whatever
    // host or scheme a proxy in front of Portcullis made the callback URL look like.
    const currentUrl = new URL(pending.redirectUri);
    currentUrl.search = callbackUrl.search;

    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      if (isUnavailability(error)) throw unavailable(this.id, error, 'token request');
      throw loginFailureFrom(error);
    }

    const idToken: Claims = tokens.claims() ?? {};
    const subject = subjectOf(idToken);
    if (subject === undefined) throw loginFailure('id_token_invalid', 'the ID token has no usable subject');

    let claims = idToken;
    if (!hasProfileClaims(idToken, this.#settings) && configuration.serverMetadata().userinfo_endpoint) {
      claims = { ...(await this.#userinfo(configuration, tokens.access_token, subject)), ...idToken };
    }
    return {
      principal: principalFromClaims(subject, claims, this.#settings),
      returnTo: pending.returnTo,
      context: pending.context,
    };
  }

  /**
   * Starts a device authorization (RFC 8628) at the IdP. Fails with `login_failed`
   * (`device_flow_unsupported`) when discovery advertises no `device_authorization_endpoint`.
   */
  async beginDevice(): Promise<DeviceAuthorization> {
    const configuration = await this.#discovery.configuration();
    if (!configuration.serverMetadata().device_authorization_endpoint)
      throw loginFailure(
        'device_flow_unsupported',
        `identity provider "${this.id}" does not offer the device authorization grant; use the browser login`,
      );
    let answer: Awaited<ReturnType<typeof client.initiateDeviceAuthorization>>;
    try {
      answer = await client.initiateDeviceAuthorization(configuration, {
        scope: [...new Set(['openid', ...this.#settings.scopes])].join(' '),
      });
    } catch (error) {
      if (isUnavailability(error)) throw unavailable(this.id, error, 'device authorization');
      throw loginFailureFrom(error);
    }
    return {
      deviceCode: answer.device_code,
      userCode: answer.user_code,
      verificationUri: answer.verification_uri,
      verificationUriComplete: answer.verification_uri_complete,
      expiresInSeconds: answer.expires_in,
      // RFC 8628 §3.2: 5 seconds when the IdP names no interval.
      intervalSeconds: answer.interval ?? 5,
    };
  }

  /**
   * Asks the IdP's token endpoint once whether the user finished. The ID token is validated
   * (issuer, audience, expiry) by openid-client; `expired_token` and `access_denied` end the
   * login with that reason.
   */
  async pollDevice(deviceCode: string): Promise<DevicePoll> {
    const configuration = await this.#discovery.configuration();
    let tokens: Awaited<ReturnType<typeof client.genericGrantRequest>>;
    try {
      tokens = await client.genericGrantRequest(configuration, deviceCodeGrant, { device_code: deviceCode });
    } catch (error) {
      if (isUnavailability(error)) throw unavailable(this.id, error, 'token request');
      if (error instanceof client.ResponseBodyError) {
        if (error.error === 'authorization_pending') return { status: 'authorization_pending' };
        if (error.error === 'slow_down') return { status: 'slow_down' };
        // Some IdPs (oidc-provider among them) forget an expired device code: invalid_grant.
        if (error.error === 'expired_token' || error.error === 'invalid_grant')
          throw loginFailure(
            'expired_token',
            'the device code expired (or was used) before the sign-in finished',
            error,
          );
        if (error.error === 'access_denied')
          throw loginFailure('access_denied', 'the sign-in was refused at the identity provider', error);
      }
      throw loginFailureFrom(error);
    }
    const idToken: Claims = tokens.claims() ?? {};
    const subject = subjectOf(idToken);
    if (subject === undefined) throw loginFailure('id_token_invalid', 'the ID token has no usable subject');
    let claims = idToken;
    if (!hasProfileClaims(idToken, this.#settings) && configuration.serverMetadata().userinfo_endpoint) {
      claims = { ...(await this.#userinfo(configuration, tokens.access_token, subject)), ...idToken };
    }
    return { status: 'complete', principal: principalFromClaims(subject, claims, this.#settings) };
  }

  async #userinfo(
    configuration: client.Configuration,
    accessToken: string,
    subject: string,
  ): Promise<Claims> {
    try {
      return await client.fetchUserInfo(configuration, accessToken, subject);
    } catch (error) {
      if (isUnavailability(error)) throw unavailable(this.id, error, 'userinfo');
      throw loginFailure('userinfo_failed', 'the identity provider did not return the user profile', error);
    }
  }
}
