/** A `postgres` resource's settings as the configuration loader makes them, for unit tests. */
import type { ConfiguredResource, PostgresTarget } from '../src/config/load.js';
import { Secret } from '../src/config/secret.js';

/** The settings of a resource on `db.internal` (database `app`), with `overrides`. */
export function testPostgresTarget(
  overrides: Partial<PostgresTarget> & { url?: string } = {},
): PostgresTarget {
  const { url = 'postgres://admin:s3cret@db.internal:6432/postgres', ...rest } = overrides;
  return {
    adminUrl: new Secret(url, 'PROD_DB_ADMIN_URL'),
    database: 'app',
    publicHost: undefined,
    publicPort: undefined,
    connectionLimit: 5,
    gatewayOnly: false,
    gatewayUpstreamAuth: ['scram-sha-256'],
    reassignOwnedTo: 'postgres',
    standingAllowed: [],
    ...rest,
  };
}

/** A `postgres` resource `prod-db` with {@link testPostgresTarget} settings and no roles. */
export function testPostgresResource(
  overrides: Partial<PostgresTarget> & { url?: string } = {},
): ConfiguredResource {
  return {
    id: 'prod-db',
    kind: 'postgres',
    description: '',
    sensitivity: 'high',
    labels: {},
    owners: [],
    roles: new Map(),
    postgres: testPostgresTarget(overrides),
  };
}
