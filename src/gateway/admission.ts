/**
 * Who may pass the gateway: the startup packet's `database` names the resource, `user` the
 * principal id or the grant id, and the cleartext password is a Portcullis access token for a grant
 * on that resource. Admission verifies the token (signature, expiry, audience including the
 * resource), requires its grant to be live and for that resource, and requires `user` to match the
 * token's `sub` or `grant_id`. Only then are the grant's upstream credentials opened.
 *
 * A refusal carries the SQLSTATE and message the client is sent (28P01 for a bad password/token,
 * 28000 when the token is fine but does not authorise this connection) and a stable `reason` for
 * the audit log. Messages never contain the token.
 */
import type { ConfiguredResource, PostgresTarget } from '../config/load.js';
import { isPortcullisError } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import type { VerifiedAccessToken } from '../tokens/token-service.js';

/** The slice of the token service and access service admission needs. */
export interface AdmissionDeps {
  verifyAccessToken(
    token: string,
    now: number,
    options: { readonly resourceId?: string },
  ): Promise<VerifiedAccessToken>;
  upstreamCredentials(
    grantId: string,
  ): Promise<{ grant: Grant; username: string; password: string } | undefined>;
  readonly resources: ReadonlyMap<string, ConfiguredResource>;
  now(): number;
}

export interface AdmissionRequest {
  readonly user: string;
  readonly database: string;
  readonly password: string;
}

export interface Admitted {
  readonly ok: true;
  readonly grant: Grant;
  readonly principalId: string;
  readonly resource: ConfiguredResource;
  readonly target: PostgresTarget;
  /** The grant's own login in the target: never shown to the client. */
  readonly upstream: { readonly username: string; readonly password: string };
}

export interface Refused {
  readonly ok: false;
  readonly sqlState: '28P01' | '28000';
  readonly message: string;
  /** Stable, for the audit event. */
  readonly reason: string;
  readonly grantId: string | null;
  readonly principalId: string | null;
}

function refused(
  sqlState: Refused['sqlState'],
  reason: string,
  message: string,
  ids: { grantId?: string; principalId?: string } = {},
): Refused {
  return {
    ok: false,
    sqlState,
    reason,
    message,
    grantId: ids.grantId ?? null,
    principalId: ids.principalId ?? null,
  };
}

/** Decides one login attempt; throws only on faults (storage, key store), never on a bad token. */
export async function admit(deps: AdmissionDeps, request: AdmissionRequest): Promise<Admitted | Refused> {
  const { user, database, password } = request;
  const resource = deps.resources.get(database);
  if (!resource || resource.kind !== 'postgres' || !resource.postgres) {
    return refused(
      '28000',
      'unknown_resource',
      `database "${database}" is not a PostgreSQL resource served by this gateway (dbname must be a resource id)`,
    );
  }
  if (password === '') {
    return refused(
      '28P01',
      'no_token',
      `password authentication failed for user "${user}": the password must be a Portcullis access token (portcullis token GRANT)`,
    );
  }
  let token: VerifiedAccessToken;
  try {
    token = await deps.verifyAccessToken(password, deps.now(), { resourceId: resource.id });
  } catch (error) {
    if (!isPortcullisError(error) || error.code !== 'invalid_token') throw error;
    const why = typeof error.details.reason === 'string' ? error.details.reason : 'invalid';
    if (why === 'wrong_audience') {
      return refused(
        '28000',
        'token_for_another_resource',
        `the access token is not for resource "${resource.id}"`,
      );
    }
    return refused(
      '28P01',
      `token_${why}`,
      `password authentication failed for user "${user}": the access token is not valid (${error.message.toLowerCase()})`,
    );
  }
  const ids = { grantId: token.grantId, principalId: token.sub };
  if (user !== token.sub && user !== token.grantId) {
    return refused(
      '28000',
      'user_mismatch',
      `user "${user}" does not match the access token: use the principal id or the grant id`,
      ids,
    );
  }
  const credentials = await deps.upstreamCredentials(token.grantId);
  if (!credentials) {
    return refused('28000', 'grant_not_live', `access grant ${token.grantId} is not active`, ids);
  }
  // INVARIANT: the grant opened is the token's, for this very resource and principal.
  if (credentials.grant.resourceId !== resource.id || credentials.grant.principalId !== token.sub) {
    return refused(
      '28000',
      'grant_mismatch',
      `access grant ${token.grantId} is not for "${resource.id}"`,
      ids,
    );
  }
  return {
    ok: true,
    grant: credentials.grant,
    principalId: token.sub,
    resource,
    target: resource.postgres,
    upstream: { username: credentials.username, password: credentials.password },
  };
}
