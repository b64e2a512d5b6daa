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

/** Whether `text` is a libpq URI by its scheme (`postgres://` or `postgresql://`). */
export function isPostgresUrl(text: string): boolean {
  return text.startsWith('postgres://') || text.startsWith('postgresql://');
}

/** Stands in for the empty host of `postgres://user:pw@/db?host=/socket`, which WHATWG URLs reject. */
const noHost = 'portcullis-no-host.invalid';

/**
 * A libpq URI as a WHATWG URL (its query parameters decoded), or undefined when it is not one. The
 * caller reports the failure without the text, which may hold a password.
 */
export function parsePostgresUrl(text: string): URL | undefined {
  for (const candidate of [text, text.replace('@/', `@${noHost}/`)]) {
    try {
      return new URL(candidate);
    } catch {
      // The error would quote the URL, password included.
    }
  }
  return undefined;
}

/** The URL as node-postgres reads it again: the stand-in for an empty host removed. */
export function formatPostgresUrl(url: URL): string {
  return url.toString().replace(`@${noHost}/`, '@/');
}

/** The URL's TCP host, or '' when it names none (a unix socket, or the default host). */
export function tcpHostOf(url: URL): string {
  const hostParameter = url.searchParams.get('host');
  if (hostParameter) return hostParameter.startsWith('/') ? '' : hostParameter;
  const hostname = unbracketedHost(url.hostname);
  return hostname === noHost || isEncodedPath(hostname) ? '' : hostname;
}

/** Whether the URL connects through a unix socket (`?host=/dir` or an encoded `%2Fdir` host). */
export function connectsThroughUnixSocket(url: URL): boolean {
  const hostParameter = url.searchParams.get('host');
  if (hostParameter) return hostParameter.startsWith('/');
  return isEncodedPath(url.hostname);
}

function isEncodedPath(hostname: string): boolean {
  return hostname.startsWith('%2F') || hostname.startsWith('%2f');
}
