/** `portcullis proxy GRANT`: a local PostgreSQL listener for a gateway-only grant (src/cli/db-proxy.ts). */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { GrantView } from '../../http/views.js';
import { isLoopbackAddress } from '../../text/loopback-address.js';
import { postgresUrl } from '../../text/postgres-url.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { DbProxy } from '../db-proxy.js';
import { GatewayCredentialCache, gatewayLoginFrom } from '../gateway-credential-cache.js';
import { relativeTime, sanitizeText } from '../output.js';
import { nextStopSignal } from '../signals.js';
import { grantPath } from './grant-commands.js';

export interface ProxyOptions {
  readonly host?: string;
  readonly port?: string;
  readonly ca?: string;
}

/** Shortest local password accepted from PORTCULLIS_PROXY_PASSWORD. */
const minLocalPasswordLength = 16;
/** After the grant's end, time for the gateway's own FATAL to reach open sessions before they are cut. */
const endGraceMs = 2000;

/**
 * Errors after which no later login can succeed: the proxy stops and exits with them. An ended CLI
 * session (exit 3) is not one of them: a `portcullis login` in another terminal mends it.
 */
const finalExitCodes: ReadonlySet<number> = new Set([
  exitCodes.usage,
  exitCodes.forbidden,
  exitCodes.notFound,
  exitCodes.conflict,
]);

/** `portcullis proxy GRANT [--port N] [--host 127.0.0.1] [--ca FILE]`; runs until Ctrl-C or the grant's end. */
export async function proxyGrant(ctx: CliContext, grantId: string, options: ProxyOptions): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  if (isIP(host) === 0 || !isLoopbackAddress(host))
    throw usageError(`--host must be a loopback address such as 127.0.0.1 or ::1, not ${host}`);
  const port = options.port === undefined ? 0 : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw usageError('--port must be 0–65535');
  const ca = options.ca === undefined ? undefined : readCa(options.ca);
  const password = localPassword(ctx);

  const client = await ctx.client();
  const grant = await client.get<GrantView>(grantPath(grantId));
  const credentials = new GatewayCredentialCache(async () => {
    // The saved session is read again for every fetch, so a new `portcullis login` is picked up.
    const current = await ctx.client();
    const answer = await current.get<{ credentials: Record<string, string> }>(
      `${grantPath(grantId)}/credentials`,
    );
    return gatewayLoginFrom(grantId, answer.credentials);
  }, ctx.io.now);
  // Fails here, before listening, when the grant is not live or not gateway-only.
  await credentials.get(false);

  let finalError: CliError | undefined;
  const proxy = new DbProxy({
    host,
    port,
    password,
    login: (fresh) => credentials.get(fresh),
    tls: ca === undefined ? {} : { ca },
    onLoginError: (error) => {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof CliError && error.exitCode === exitCodes.unauthenticated)
        return { message: sessionEndedMessage(message, error.hint), final: false };
      const final = error instanceof CliError && finalExitCodes.has(error.exitCode);
      if (final) finalError ??= error;
      return { message, final };
    },
    note: (text) => ctx.output.note(sanitizeText(text)),
  });
  const boundPort = await proxy.listen();
  const connectionString = postgresUrl({
    host,
    port: boundPort,
    user: grantId,
    password,
    database: grant.resource,
    sslmode: 'disable',
  });
  ctx.output.result(
    {
      grant_id: grantId,
      connection_string: connectionString,
      host,
      port: String(boundPort),
      username: grantId,
      password,
      database: grant.resource,
      sslmode: 'disable',
      grant_expires_at: grant.expires_at,
    },
    () => {
      ctx.output.line(connectionString);
      ctx.output.note(
        `Proxying grant ${sanitizeText(grantId)} (${sanitizeText(grant.resource)}/${sanitizeText(grant.role)}) through the Portcullis gateway on ${host}:${boundPort} until it ends (${relativeTime(grant.expires_at, ctx.io.now())}); Ctrl-C to stop.`,
      );
    },
  );

  const signal = nextStopSignal();
  let expiryTimer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    const delay = Date.parse(grant.expires_at) - ctx.io.now() + endGraceMs;
    expiryTimer = setTimeout(() => resolve('expired'), Math.min(Math.max(0, delay), 2 ** 31 - 1));
  });
  try {
    const why = await Promise.race([signal.received, proxy.stopped.then(() => 'stopped' as const), expired]);
    if (why === 'expired') ctx.output.note(`Grant ${sanitizeText(grantId)} has ended; the proxy stops.`);
    else if (why === 'SIGINT' || why === 'SIGTERM') ctx.output.note(`${why}: the proxy stops.`);
    else if (proxy.connectionCount > 0) {
      // No new login can succeed, but sessions already open are still admitted by the gateway.
      ctx.output.note(
        `No new logins (${sanitizeText(finalError?.message ?? 'no credentials')}); waiting for ${proxy.connectionCount} open session(s) to end (Ctrl-C cuts them).`,
      );
      await Promise.race([proxy.drained(), signal.received, expired]);
    }
  } finally {
    signal.dispose();
    clearTimeout(expiryTimer);
    await proxy.close();
  }
  if (finalError) throw finalError;
}

/** What a client and the terminal read while the CLI session is refused. */
function sessionEndedMessage(message: string, hint: string | undefined): string {
  const login = hint?.match(/`(portcullis login[^`]*)`/)?.[1] ?? 'portcullis login';
  return `${message}. Your Portcullis sign-in has ended: run \`${login}\`, then connect again (the proxy keeps running; open sessions go on)`;
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw usageError(
      `--ca ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** PORTCULLIS_PROXY_PASSWORD (for a saved GUI connection), else a new random one per run. */
function localPassword(ctx: CliContext): string {
  const fixed = ctx.io.env.PORTCULLIS_PROXY_PASSWORD;
  if (!fixed) return randomBytes(18).toString('base64url');
  if (fixed.length < minLocalPasswordLength)
    throw usageError(`PORTCULLIS_PROXY_PASSWORD must have at least ${minLocalPasswordLength} characters`);
  return fixed;
}
