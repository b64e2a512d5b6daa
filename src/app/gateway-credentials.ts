/**
 * What a requester is shown for a grant on a gateway-only resource (`postgres.gateway_only`): a
 * connection to the database gateway with a fresh access token as its password. The grant's own
 * login never leaves Portcullis, so every session goes through the gateway, which admits it only
 * while the grant is live and records its statements. `psql "$(portcullis creds GRANT)"` works
 * unchanged; the gateway admits the grant id as the user name.
 */
import type { Grant } from '../core/grant.js';
import { postgresUrl } from '../text/postgres-url.js';
import type { IssuedToken } from './ports.js';

/** Where people reach the gateway. */
export interface GatewayEndpoint {
  readonly host: string;
  readonly port: number;
  /** The gateway serves TLS (the connection asks for it); without it only loopback clients log in. */
  readonly tls: boolean;
}

export function gatewayCredentials(
  endpoint: GatewayEndpoint,
  grant: Grant,
  token: IssuedToken,
): Record<string, string> {
  const sslmode = endpoint.tls ? 'require' : 'disable';
  return {
    // Says what the other fields are: `portcullis proxy` serves only gateway connections.
    via: 'gateway',
    connection_string: postgresUrl({
      host: endpoint.host,
      port: endpoint.port,
      user: grant.id,
      password: token.token,
      database: grant.resourceId,
      sslmode,
    }),
    host: endpoint.host,
    port: String(endpoint.port),
    username: grant.id,
    password: token.token,
    database: grant.resourceId,
    sslmode,
    // The token, not the grant: a new login after this needs new credentials; open sessions go on.
    password_expires_at: new Date(token.expiresAt).toISOString(),
  };
}
