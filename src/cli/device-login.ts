/**
 * CLI sign-in without a browser on this machine: the OAuth 2.0 device authorization grant
 * (RFC 8628), run by the Portcullis server against the identity provider.
 *
 * 1. `POST /api/v1/auth/device {idp}` → a user code and a verification URI to open on any device;
 * 2. poll `POST /api/v1/auth/device/token {device_id}` every `interval` seconds: the server answers
 *    `authorization_pending`, `slow_down` (the interval grew; it is always the server's), or the
 *    session token once the person has signed in;
 * 3. the IdP's refusal (`access_denied`) or an expired code (`expired_token`) ends it with the
 *    server's problem as a CliError.
 *
 * When the IdP offers no device flow, {@link deviceLogin} returns null and the caller falls back to
 * the loopback browser login.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';
import type { CliTokenResponse } from './loopback-login.js';

/** The body of `POST /api/v1/auth/device`. */
export interface DeviceStartResponse {
  readonly device_id: string;
  readonly user_code: string;
  readonly verification_uri: string;
  readonly verification_uri_complete: string | null;
  readonly expires_at: string;
  readonly interval: number;
}

type DevicePollResponse =
  | { readonly status: 'authorization_pending' | 'slow_down'; readonly interval: number }
  | ({ readonly status: 'complete' } & CliTokenResponse);

export interface DeviceLoginOptions {
  /** An unauthenticated client for the server. */
  readonly client: ApiClient;
  readonly idp: string;
  /** Shows the user code and where to enter it. */
  readonly present: (start: DeviceStartResponse) => void;
  readonly now: () => number;
  /** Waits between polls; default a real timer. */
  readonly wait?: (ms: number) => Promise<void>;
}

/** Runs the device login; null when the identity provider does not offer it. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<CliTokenResponse | null> {
  const wait = options.wait ?? ((ms: number) => sleep(ms));
  let start: DeviceStartResponse;
  try {
    start = await options.client.post<DeviceStartResponse>('/api/v1/auth/device', { idp: options.idp });
  } catch (error) {
    if (error instanceof CliError && error.details.reason === 'device_flow_unsupported') return null;
    throw error;
  }
  options.present(start);
  const deadline = Date.parse(start.expires_at);
  let interval = Math.max(1, start.interval);
  for (;;) {
    await wait(interval * 1000);
    if (options.now() >= deadline) {
      throw new CliError(
        'expired_token',
        'The code expired before the sign-in finished',
        exitCodes.unauthenticated,
        {
          hint: 'run `portcullis login --device` again',
        },
      );
    }
    const polled = await options.client.post<DevicePollResponse>('/api/v1/auth/device/token', {
      device_id: start.device_id,
    });
    if (polled.status === 'complete') {
      return {
        session_token: polled.session_token,
        expires_at: polled.expires_at,
        principal: polled.principal,
      };
    }
    interval = Math.max(1, polled.interval);
  }
}
