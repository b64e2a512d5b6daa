/**
 * libpq connection URIs, as Portcullis hands them to people: `postgres://user:password@host:port/
 * database`, each part percent-encoded as libpq and node-postgres decode it, an IPv6 host in
 * brackets, and `sslmode` when one is given.
 */
export interface PostgresUrlParts {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly sslmode?: string | null;
}

export function postgresUrl(parts: PostgresUrlParts): string {
  const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
  const query = parts.sslmode ? `?sslmode=${encodeURIComponent(parts.sslmode)}` : '';
  return `postgres://${encodeURIComponent(parts.user)}:${encodeURIComponent(parts.password)}@${host}:${parts.port}/${encodeURIComponent(parts.database)}${query}`;
}

/** A host as a URL writes it (`[2001:db8::1]`) without the brackets an IPv6 address takes there. */
export function unbracketedHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}
