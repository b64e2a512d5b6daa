/**
 * What a PostgreSQL connection URL allows the server to ask for: libpq's `require_auth` and
 * `channel_binding` parameters, with a stricter default than libpq's (no cleartext password to a
 * server that has not proved who it is). {@link GuardedClient} in guarded-client.ts keeps to it.
 */
import { PortcullisError } from '../core/errors.js';
import { connectsThroughUnixSocket, parsePostgresUrl } from '../text/postgres-url.js';

export type PostgresAuthMethod = 'password' | 'md5' | 'scram-sha-256' | 'none';
export type ChannelBindingMode = 'disable' | 'prefer' | 'require';

export interface PostgresAuthPolicy {
  /** The methods the server may ask for; 'none' is a login that asks for nothing (trust, peer). */
  readonly accepted: ReadonlySet<PostgresAuthMethod>;
  readonly channelBinding: ChannelBindingMode;
}

const supportedMethods: readonly PostgresAuthMethod[] = ['password', 'md5', 'scram-sha-256', 'none'];
/** libpq knows these too; node-postgres cannot do them, so they may only be excluded. */
const unsupportedMethods = ['gss', 'sspi'];

const channelBindingProblem = 'channel_binding must be disable, prefer or require';

function isChannelBindingMode(mode: string): mode is ChannelBindingMode {
  return mode === 'disable' || mode === 'prefer' || mode === 'require';
}

/** A URL's `channel_binding` (its value, or null when absent): `prefer` by default. */
export function channelBindingOf(value: string | null, source: string): ChannelBindingMode {
  const mode = value ?? 'prefer';
  if (!isChannelBindingMode(mode)) {
    throw new PortcullisError('config_invalid', `${source}: ${channelBindingProblem}`);
  }
  return mode;
}

/** Whether the URL's `sslmode` has the server prove who it is (a certificate chain, libpq's meaning). */
export function checksServerCertificate(url: URL): boolean {
  const sslmode = url.searchParams.get('sslmode');
  return sslmode === 'verify-ca' || sslmode === 'verify-full';
}

/** The methods `require_auth` allows, or what is wrong with it. */
function parseRequireAuth(value: string): Set<PostgresAuthMethod> | string {
  const items = value.split(',').map((item) => item.trim());
  const negated = items.map((item) => item.startsWith('!'));
  if (negated.some((n) => n) && !negated.every((n) => n)) {
    return 'require_auth cannot mix methods with !excluded methods';
  }
  const names = items.map((item) => (item.startsWith('!') ? item.slice(1) : item));
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) return `require_auth names ${JSON.stringify(name)} twice`;
    seen.add(name);
    const known = (supportedMethods as readonly string[]).includes(name) || unsupportedMethods.includes(name);
    if (!known) {
      return `require_auth has an unknown method ${JSON.stringify(name)} (password, md5, scram-sha-256, none; gss and sspi only as !gss, !sspi)`;
    }
    if (!negated[0] && unsupportedMethods.includes(name)) {
      return `require_auth=${name} is not supported by Portcullis's PostgreSQL client`;
    }
  }
  if (negated[0]) return new Set(supportedMethods.filter((method) => !seen.has(method)));
  return new Set(names as PostgresAuthMethod[]);
}

/**
 * The policy a connection URL asks for.
 *
 * - `require_auth` as libpq reads it (PostgreSQL 16+): a comma-separated list of the methods the
 *   server may ask for, or of `!methods` it may not.
 * - Without it: anything but a cleartext password, which is allowed only when the server is
 *   authenticated first (`sslmode=verify-ca`/`verify-full`) or reached through a unix socket.
 * - A cleartext password named in `require_auth` needs the same; a URL that allows it anyway is
 *   refused, since anyone on the path could ask for it.
 * - `channel_binding`: `prefer` by default (SCRAM-SHA-256-PLUS whenever the server offers it over
 *   TLS), `require` only with TLS (`sslmode` other than `disable`) and only SCRAM.
 *
 * @param source names the URL in errors (it is never quoted: it may hold a password).
 * @throws PortcullisError `config_invalid`
 */
export function postgresAuthPolicy(connectionString: string, source: string): PostgresAuthPolicy {
  const read = readPostgresAuthPolicy(connectionString);
  if ('problem' in read) throw new PortcullisError('config_invalid', `${source}: ${read.problem}`);
  return read.policy;
}

/** {@link postgresAuthPolicy}, with what is wrong with the URL as a value rather than thrown. */
export function readPostgresAuthPolicy(
  connectionString: string,
): { readonly policy: PostgresAuthPolicy } | { readonly problem: string } {
  const url = parsePostgresUrl(connectionString);
  if (!url) return { problem: 'not a postgres:// URL' };
  const channelBinding = url.searchParams.get('channel_binding') ?? 'prefer';
  if (!isChannelBindingMode(channelBinding)) return { problem: channelBindingProblem };
  if (channelBinding === 'require' && (url.searchParams.get('sslmode') ?? 'disable') === 'disable') {
    return { problem: 'channel_binding=require needs TLS to the server (an sslmode of require or stricter)' };
  }
  const serverAuthenticated = checksServerCertificate(url) || connectsThroughUnixSocket(url);
  const requireAuth = url.searchParams.get('require_auth');
  if (requireAuth === null) {
    const accepted = new Set<PostgresAuthMethod>(['scram-sha-256', 'md5', 'none']);
    if (serverAuthenticated) accepted.add('password');
    return { policy: { accepted, channelBinding } };
  }
  const accepted = parseRequireAuth(requireAuth);
  if (typeof accepted === 'string') return { problem: accepted };
  if (accepted.has('password') && !serverAuthenticated) {
    return {
      problem:
        'require_auth allows a cleartext password, which needs sslmode=verify-ca or verify-full (or a unix socket): anyone on the path could ask for it',
    };
  }
  return { policy: { accepted, channelBinding } };
}
