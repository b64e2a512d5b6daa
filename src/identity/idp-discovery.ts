/**
 * Lazy OpenID Connect discovery for one identity provider. Nothing is fetched until the first
 * login or API token needs the IdP; a failure is reported as `identity_provider_unavailable`
 * within the IdP's configured timeout and forgotten, so the next call retries. One IdP being down
 * never affects another, nor start-up.
 */
import * as client from 'openid-client';
import type { IdentityProviderSettings } from '../config/load.js';
import { PortcullisError } from '../core/errors.js';
import { isLoopbackUrl } from '../text/loopback-address.js';

/** Seconds of clock difference tolerated on ID token timestamps (`exp`, `iat`, `auth_time`). */
export const idTokenClockToleranceSeconds = 30;

/** What discovery needs from an IdP's settings. */
export type DiscoverySettings = Pick<IdentityProviderSettings, 'id' | 'issuer' | 'client_id' | 'timeout'> & {
  readonly clientSecret: IdentityProviderSettings['clientSecret'];
};

/** True for failures of the network or of the IdP itself, as opposed to a protocol violation. */
export function isUnavailability(error: unknown): boolean {
  if (error instanceof DOMException) return error.name === 'TimeoutError' || error.name === 'AbortError';
  if (error instanceof TypeError) return /fetch failed|network|socket|terminated/i.test(error.message);
  if (error instanceof client.ClientError) {
    // A 5xx or a non-JSON answer (a proxy's error page) means the IdP is not serving.
    return (
      isTimeout(error) ||
      error.code === 'OAUTH_ABORT' ||
      error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
      error.code === 'OAUTH_RESPONSE_IS_NOT_JSON'
    );
  }
  return false;
}

function isTimeout(error: unknown): boolean {
  // openid-client reports its own timeout as OAUTH_TIMEOUT; jose and fetch as a TimeoutError.
  return (
    (error instanceof client.ClientError && error.code === 'OAUTH_TIMEOUT') ||
    (error instanceof Error && error.name === 'TimeoutError') ||
    (error instanceof DOMException && error.name === 'TimeoutError')
  );
}

export type UnavailabilityReason = 'timeout' | 'unreachable' | 'invalid_metadata';

function unavailabilityReason(error: unknown): UnavailabilityReason {
  if (isTimeout(error)) return 'timeout';
  if (isUnavailability(error)) return 'unreachable';
  return 'invalid_metadata';
}

/** Wraps a failure to reach or understand the IdP into the error callers show. */
export function unavailable(
  idp: string,
  error: unknown,
  stage: string,
  reason: UnavailabilityReason = unavailabilityReason(error),
): PortcullisError {
  const what =
    reason === 'timeout' ? 'did not answer in time' : reason === 'unreachable' ? 'could not be reached' : '';
  const message =
    what !== ''
      ? `identity provider "${idp}" ${what} (${stage})`
      : `identity provider "${idp}" returned unusable ${stage} metadata`;
  return new PortcullisError('identity_provider_unavailable', message, { idp, reason }, { cause: error });
}

export class IdpDiscovery {
  readonly #settings: DiscoverySettings;
  #configuration: Promise<client.Configuration> | undefined;

  constructor(settings: DiscoverySettings) {
    this.#settings = settings;
  }

  get idp(): string {
    return this.#settings.id;
  }

  /**
   * The discovered client configuration (metadata, client authentication, timeouts). Concurrent
   * callers share one request; a failed discovery is not cached.
   */
  configuration(): Promise<client.Configuration> {
    this.#configuration ??= this.#discover().catch((error: unknown) => {
      this.#configuration = undefined;
      throw error;
    });
    return this.#configuration;
  }

  async #discover(): Promise<client.Configuration> {
    const settings = this.#settings;
    const issuer = new URL(settings.issuer);
    const secret = settings.clientSecret?.reveal();
    const authentication = secret ? client.ClientSecretBasic(secret) : client.None();
    try {
      return await client.discovery(
        issuer,
        settings.client_id,
        { [client.clockTolerance]: idTokenClockToleranceSeconds },
        authentication,
        {
          timeout: settings.timeout,
          // Plain http only for an IdP on loopback (the demo, tests); elsewhere openid-client's
          // https-only default stands.
          ...(isLoopbackUrl(issuer) ? { execute: [client.allowInsecureRequests] } : {}),
        },
      );
    } catch (error) {
      throw unavailable(settings.id, error, 'discovery');
    }
  }
}
