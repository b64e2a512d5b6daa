/** `portcullis login`, `logout` and `whoami`. */
import { isCleartextRemote } from '../api-client.js';
import { usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { deviceLogin } from '../device-login.js';
import { type CliTokenResponse, loopbackLogin } from '../loopback-login.js';
import { relativeTime, sanitizeText } from '../output.js';
import { type DemoCredentials, scriptedDemoLogin } from '../scripted-browser.js';
import { deleteSession, readSession, type SavedSession, sessionPath, writeSession } from '../session-file.js';

export interface LoginOptions {
  readonly idp?: string;
  readonly username?: string;
  readonly passwordStdin?: boolean;
  /** False with `--no-browser`. */
  readonly browser: boolean;
  readonly printToken?: boolean;
  /** `--device`: the device authorization grant (RFC 8628) instead of a loopback redirect. */
  readonly device?: boolean;
}

interface ProvidersResponse {
  readonly providers: ReadonlyArray<{
    readonly id: string;
    readonly display_name: string;
    /** Absent from servers that predate SAML: OIDC then. */
    readonly protocol?: 'oidc' | 'saml';
  }>;
}

/** Reads stdin to its end (bounded) and returns its first line. */
async function readFirstLine(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > 64 * 1024) throw usageError('--password-stdin: more than 64 KiB on stdin');
    chunks.push(buffer);
  }
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
}

async function demoCredentials(ctx: CliContext, options: LoginOptions): Promise<DemoCredentials | null> {
  if (options.username === undefined) {
    if (options.passwordStdin) throw usageError('--password-stdin needs --username');
    return null;
  }
  let password: string | undefined;
  if (options.passwordStdin) {
    if (ctx.io.stdin.isTTY) ctx.output.note('Reading the password from stdin (end with Enter, then Ctrl-D)…');
    password = await readFirstLine(ctx.io.stdin);
  } else {
    password = ctx.io.env.PORTCULLIS_PASSWORD;
  }
  if (!password) {
    throw usageError(
      `--username needs a password: pipe it with --password-stdin or set PORTCULLIS_PASSWORD`,
      'never pass a password as an argument: it would show in the process list and shell history',
    );
  }
  return { username: options.username, password };
}

async function chooseProvider(
  ctx: CliContext,
  server: string,
  requested: string | undefined,
): Promise<{ id: string; protocol: 'oidc' | 'saml' }> {
  const { providers } = await ctx.anonymousClient(server).get<ProvidersResponse>('/api/v1/auth/providers');
  const pick = (p: ProvidersResponse['providers'][number]) => ({ id: p.id, protocol: p.protocol ?? 'oidc' });
  if (requested !== undefined) {
    const found = providers.find((p) => p.id === requested);
    // An id the list does not show still goes to the server, which answers not_found.
    return found ? pick(found) : { id: requested, protocol: 'oidc' };
  }
  const [only] = providers;
  if (providers.length === 1 && only) return pick(only);
  if (providers.length === 0) throw usageError(`${server} offers no identity provider to sign in with`);
  throw usageError(
    `${server} offers several identity providers; pick one with --idp: ${providers
      .map((p) => `${sanitizeText(p.id)} (${sanitizeText(p.display_name)})`)
      .join(', ')}`,
  );
}

/** `portcullis login`: the loopback browser flow, or the scripted demo login with `--username`. */
export async function login(ctx: CliContext, options: LoginOptions): Promise<void> {
  const server = await ctx.loginServer();
  const credentials = await demoCredentials(ctx, options);
  if (isCleartextRemote(server)) {
    ctx.output.note(
      `warning: ${server} is plain http to another host; your session token would cross the network unencrypted`,
    );
  }
  const { id: idp, protocol } = await chooseProvider(ctx, server, options.idp);
  const client = ctx.anonymousClient(server);
  if (options.device && credentials) throw usageError('--device and --username cannot be combined');
  const viaDevice = options.device
    ? await deviceLogin({
        client,
        idp,
        now: ctx.io.now,
        present: (start) => {
          ctx.output.note(
            `To sign in, open ${start.verification_uri} on any device and enter the code:\n\n  ${sanitizeText(start.user_code)}\n`,
          );
          if (start.verification_uri_complete)
            ctx.output.note(
              `Or open this link, which carries the code:\n\n  ${start.verification_uri_complete}\n`,
            );
          ctx.output.note(
            `Waiting for the sign-in to finish (until ${start.expires_at}; Ctrl-C to give up)…`,
          );
        },
      })
    : null;
  if (options.device && !viaDevice)
    ctx.output.note(`${idp} does not offer the device flow; signing in through the browser instead.`);
  const session: CliTokenResponse =
    viaDevice ??
    (await loopbackLogin({
      client,
      idp,
      protocol,
      present: (authorizationUrl, callbackUrl) => {
        if (credentials)
          return scriptedDemoLogin({ authorizationUrl, callbackUrl, credentials, fetch: ctx.io.fetch });
        ctx.output.note(`Open this URL in your browser to sign in:\n\n  ${authorizationUrl}\n`);
        if (options.browser && ctx.output.interactive) ctx.io.openBrowser(authorizationUrl);
        ctx.output.note('Waiting for the sign-in to finish (up to 5 minutes; Ctrl-C to give up)…');
      },
    }));
  const saved: SavedSession = {
    server,
    session_token: session.session_token,
    expires_at: session.expires_at,
    principal: session.principal,
  };
  const file = await writeSession(ctx.home, ctx.profile, saved);
  const { principal } = session;
  const summary = `Signed in to ${server} as ${sanitizeText(principal.display_name)} (${sanitizeText(principal.id)}), groups: ${principal.groups.map((g) => sanitizeText(g)).join(', ') || '(none)'}; session expires ${relativeTime(session.expires_at, ctx.io.now())} (profile "${ctx.profile}").`;
  if (ctx.output.json) {
    ctx.output.data({
      server,
      profile: ctx.profile,
      session_file: file,
      expires_at: session.expires_at,
      principal,
      ...(options.printToken ? { session_token: session.session_token } : {}),
    });
  } else if (options.printToken) {
    ctx.output.note(summary);
    ctx.output.line(session.session_token);
  } else {
    ctx.output.line(summary);
  }
}

/**
 * `portcullis logout`: ends the session at the server (its token is refused from then on, on every
 * replica), then forgets it here. If the server cannot be reached the local copy is still removed,
 * and the output says the token stays valid until it expires.
 */
export async function logout(ctx: CliContext): Promise<void> {
  const path = sessionPath(ctx.home, ctx.profile);
  const saved = await readSession(ctx.home, ctx.profile).catch(() => null);
  let endedAtServer = false;
  if (saved && Date.parse(saved.expires_at) > ctx.io.now()) {
    try {
      await (await ctx.client()).post('/api/v1/auth/logout');
      endedAtServer = true;
    } catch {
      // Unreachable server or an already-ended session: forgetting it here is still right.
    }
  }
  const removed = await deleteSession(ctx.home, ctx.profile);
  ctx.output.result(
    { profile: ctx.profile, removed, ended_at_server: endedAtServer, session_file: path },
    () =>
      ctx.output.line(
        !removed
          ? `Profile "${ctx.profile}" was not signed in.`
          : endedAtServer
            ? `Signed out (profile "${ctx.profile}", ${saved?.server}): the session is ended at the server and forgotten here.`
            : `Signed out (profile "${ctx.profile}"${saved ? `, ${saved.server}` : ''}). The server could not end the session, so its token stays valid there until ${saved?.expires_at ?? 'it expires'}; it is forgotten here.`,
      ),
  );
}

interface MeResponse {
  readonly id: string;
  readonly idp: string;
  readonly display_name: string;
  readonly email: string | null;
  readonly groups: readonly string[];
}

/** `portcullis whoami`: who the server says you are. */
export async function whoami(ctx: CliContext): Promise<void> {
  const session = await ctx.session();
  const me = await (await ctx.client()).get<MeResponse>('/api/v1/me');
  ctx.output.result(
    { ...me, server: session.server, profile: ctx.profile, session_expires_at: session.expires_at },
    () => {
      ctx.output.line(
        `${sanitizeText(me.display_name)} (${sanitizeText(me.id)})${me.email ? ` <${sanitizeText(me.email)}>` : ''}`,
      );
      ctx.output.line(`  identity provider  ${sanitizeText(me.idp)}`);
      ctx.output.line(`  groups             ${me.groups.map((g) => sanitizeText(g)).join(', ') || '(none)'}`);
      ctx.output.line(`  server             ${session.server} (profile "${ctx.profile}")`);
      ctx.output.line(`  session expires    ${relativeTime(session.expires_at, ctx.io.now())}`);
    },
  );
}
