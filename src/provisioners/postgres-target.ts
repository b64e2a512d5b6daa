/**
 * Reading a `postgres` resource's target: its settings, the address handed to requesters and the
 * admin URL pointed at another database. Errors here never quote the admin URL (it holds a password).
 */
import type { ConfiguredResource, PostgresTarget } from '../config/load.js';
import { PortcullisError } from '../core/errors.js';
import type { ResourceDefinition } from '../core/resource.js';
import { formatPostgresUrl, parsePostgresUrl, postgresUrl, tcpHostOf } from '../text/postgres-url.js';

/** The resource's PostgreSQL settings; a resource without them is a wiring fault. */
export function postgresTargetOf(resource: ResourceDefinition): PostgresTarget {
  const target = (resource as ConfiguredResource).postgres;
  if (!target) {
    throw new PortcullisError(
      'provisioning_failed',
      `Resource ${resource.id} (kind ${resource.kind}) has no postgres settings`,
    );
  }
  return target;
}

function parseAdminUrl(target: PostgresTarget): URL {
  const url = parsePostgresUrl(target.adminUrl.reveal());
  if (url) return url;
  throw new PortcullisError(
    'provisioning_failed',
    `The admin URL ${target.adminUrl} is not a postgres:// URL`,
  );
}

/** Where requesters connect: public_host/public_port, else the admin URL's host and port. */
export function publicAddress(target: PostgresTarget): { readonly host: string; readonly port: number } {
  const admin = target.publicHost && target.publicPort ? undefined : parseAdminUrl(target);
  const host = target.publicHost ?? (admin ? tcpHostOf(admin) : '');
  if (host === '') {
    throw new PortcullisError(
      'provisioning_failed',
      'The admin URL names no TCP host (a unix socket?): set postgres.public_host for requesters',
    );
  }
  const port = target.publicPort ?? (admin?.port ? Number(admin.port) : 5432);
  return { host, port };
}

/**
 * `postgres://login:password@host:port/database`, each part percent-encoded as libpq expects;
 * the admin URL's `sslmode` is carried over so requesters connect as securely as Portcullis does.
 */
export function requesterConnectionString(target: PostgresTarget, login: string, password: string): string {
  return postgresUrl({
    ...publicAddress(target),
    user: login,
    password,
    database: target.database,
    sslmode: parseAdminUrl(target).searchParams.get('sslmode'),
  });
}

/**
 * The admin URL with another database. node-postgres decodes the path with decodeURI, so a name
 * that cannot round-trip (one containing `#`, `?`, `/`, `%`…) is refused rather than mistaken.
 */
export function adminUrlForDatabase(target: PostgresTarget, database: string): string {
  const url = parseAdminUrl(target);
  url.pathname = `/${encodeURIComponent(database)}`;
  let decoded: string | undefined;
  try {
    decoded = decodeURI(url.pathname.slice(1));
  } catch {
    decoded = undefined;
  }
  if (decoded !== database) {
    throw new PortcullisError(
      'provisioning_failed',
      `Cannot connect to database ${JSON.stringify(database)} through a node-postgres URL`,
    );
  }
  return formatPostgresUrl(url);
}

/**
 * Where Portcullis itself reaches the server (the admin URL's TCP host and port), the admin URL's
 * `sslmode` and `sslrootcert` (a CA file, as libpq takes it): the database gateway connects
 * upstream the same way.
 */
export function adminAddress(target: PostgresTarget): {
  readonly host: string;
  readonly port: number;
  readonly sslMode: string | null;
  readonly sslRootCert: string | null;
  readonly channelBinding: string | null;
} {
  const url = parseAdminUrl(target);
  const host = tcpHostOf(url);
  if (host === '') {
    throw new PortcullisError(
      'provisioning_failed',
      'The admin URL names no TCP host (a unix socket?): the gateway needs a TCP address',
    );
  }
  const port = url.searchParams.get('port') ?? url.port;
  return {
    host,
    port: port ? Number(port) : 5432,
    sslMode: url.searchParams.get('sslmode'),
    sslRootCert: url.searchParams.get('sslrootcert'),
    channelBinding: url.searchParams.get('channel_binding'),
  };
}
