/**
 * Gateway credentials for `portcullis proxy`, fetched through the API and reused while their token
 * has time left: one `token.issued` per token lifetime, not one per connection a pool opens.
 */
import { CliError, exitCodes } from './cli-error.js';
import type { ProxyLogin } from './db-proxy.js';
import type { GatewayLogin } from './gateway-dialer.js';

/** Longest margin before a token's expiry at which it is no longer handed out. */
const maxRenewMarginMs = 60_000;

export class GatewayCredentialCache {
  readonly #fetch: () => Promise<GatewayLogin>;
  readonly #now: () => number;
  #current: { readonly login: GatewayLogin; readonly renewAt: number } | undefined;
  #inFlight: Promise<GatewayLogin> | undefined;

  constructor(fetch: () => Promise<GatewayLogin>, now: () => number) {
    this.#fetch = fetch;
    this.#now = now;
  }

  /** A login whose token has time left; `fresh` fetches a new one regardless. */
  async get(fresh: boolean): Promise<ProxyLogin> {
    const current = this.#current;
    if (!fresh && current && this.#now() < current.renewAt) return { login: current.login, cached: true };
    return { login: await this.#refresh(), cached: false };
  }

  #refresh(): Promise<GatewayLogin> {
    if (this.#inFlight) return this.#inFlight;
    const fetchedAt = this.#now();
    this.#inFlight = this.#fetch()
      .then((login) => {
        // A quarter of the token's life, at most a minute: time for a login to reach the gateway.
        const margin = Math.min(maxRenewMarginMs, Math.max(0, (login.expiresAt - fetchedAt) / 4));
        this.#current = { login, renewAt: login.expiresAt - margin };
        return login;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
    return this.#inFlight;
  }
}

/**
 * The gateway login in a `GET /api/v1/grants/{id}/credentials` answer.
 * @throws CliError `not_gateway_only` (exit 2) when the grant's credentials log in directly.
 */
export function gatewayLoginFrom(
  grantId: string,
  credentials: Readonly<Record<string, string>>,
): GatewayLogin {
  if (credentials.via !== 'gateway')
    throw new CliError(
      'not_gateway_only',
      `Grant ${grantId} is on a resource that is not gateway-only: its credentials log in to the database directly`,
      exitCodes.usage,
      { hint: `connect with \`portcullis creds ${grantId}\`` },
    );
  const port = Number(credentials.port);
  const expiresAt = Date.parse(credentials.password_expires_at ?? '');
  const { host, username, password, database, sslmode } = credentials;
  if (
    !host ||
    !username ||
    !password ||
    !database ||
    !Number.isInteger(port) ||
    port < 1 ||
    port > 65_535 ||
    (sslmode !== 'require' && sslmode !== 'disable') ||
    Number.isNaN(expiresAt)
  )
    throw new CliError(
      'unexpected_response',
      `The server's gateway credentials for grant ${grantId} are incomplete`,
      exitCodes.unexpected,
    );
  return { host, port, user: username, password, database, tls: sslmode === 'require', expiresAt };
}
