/**
 * Offline evidence: `portcullis keys export` (the public keys of a server, token and audit kept
 * apart, in one file) and `portcullis token verify` (is this token genuine and valid, with that
 * file alone and no network).
 */
import { writeFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { normalizeServerUrl } from '../api-client.js';
import { exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { relativeTime, sanitizeText } from '../output.js';

/**
 * `keys export [--output FILE] [--issuer URL]`: fetches `/.well-known/jwks.json` (token keys) and
 * `/.well-known/portcullis-audit-keys.json` (audit keys) from the server — no sign-in needed — and
 * writes one bundle for `token verify --keys` and `audit verify --key`.
 */
export async function exportPublicKeys(
  ctx: CliContext,
  options: { output?: string; issuer?: string },
): Promise<void> {
  const { publicKeyBundleFormat } = await import('../../audit/public-keys.js');
  const server = await ctx.loginServer();
  const client = ctx.anonymousClient(server);
  const [tokenKeys, auditKeys] = await Promise.all([
    client.get<{ keys: JWK[] }>('/.well-known/jwks.json'),
    client.get<{ keys: JWK[] }>('/.well-known/portcullis-audit-keys.json'),
  ]);
  const bundle = {
    format: publicKeyBundleFormat,
    server,
    issuer: options.issuer === undefined ? server : normalizeServerUrl(options.issuer),
    exported_at: new Date(ctx.io.now()).toISOString(),
    token_keys: { keys: tokenKeys.keys },
    audit_keys: { keys: auditKeys.keys },
  };
  const text = `${JSON.stringify(bundle, null, 2)}\n`;
  if (options.output === undefined) {
    ctx.output.raw(text);
    return;
  }
  try {
    await writeFile(options.output, text, { flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      `Cannot write ${options.output}: ${code === 'EEXIST' ? 'the file exists' : (code ?? String(error))}`,
    );
  }
  ctx.output.result(
    { file: options.output, token_keys: tokenKeys.keys.length, audit_keys: auditKeys.keys.length },
    () =>
      ctx.output.line(
        `Wrote ${options.output}: ${tokenKeys.keys.length} token key(s), ${auditKeys.keys.length} audit key(s) of ${server}.\n` +
          'Keep it with the evidence: retired token keys leave the server after the rotation overlap.',
      ),
  );
}

export interface VerifyTokenOptions {
  readonly keys: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly at?: string;
}

async function readStdin(ctx: CliContext): Promise<string> {
  let text = '';
  for await (const chunk of ctx.io.stdin) text += chunk.toString();
  return text;
}

const time = (seconds: unknown) =>
  typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : '-';

/**
 * `token verify TOKEN --keys FILE`: offline. Exit 0 when the token is genuine and valid, 10 when it
 * is not (the reason is printed; a genuine token that has merely expired is said to be genuine).
 */
export async function verifyToken(
  ctx: CliContext,
  tokenArgument: string,
  options: VerifyTokenOptions,
): Promise<number> {
  const { loadKeyFile } = await import('../../audit/public-keys.js');
  const { verifyTokenOffline } = await import('../../tokens/offline-verify.js');
  let loaded: Awaited<ReturnType<typeof loadKeyFile>>;
  try {
    loaded = await loadKeyFile(options.keys, 'token');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      `Cannot use the key file: ${code === 'ENOENT' ? `${options.keys}: no such file` : (error as Error).message}`,
    );
  }
  const issuer = options.issuer ?? loaded.bundle?.issuer;
  if (issuer === undefined) {
    throw usageError(
      'Which issuer? Pass --issuer URL (the Portcullis public URL)',
      'or use a key file from `portcullis keys export`, which names it',
    );
  }
  let at = ctx.io.now();
  if (options.at !== undefined) {
    at = Date.parse(options.at);
    if (Number.isNaN(at))
      throw usageError(`--at ${JSON.stringify(options.at)} is not a date and time (ISO 8601)`);
  }
  // `-` reads the token from stdin, so it stays out of the shell history and the process list.
  const token = tokenArgument === '-' ? await readStdin(ctx) : tokenArgument;
  const audience = options.audience ?? 'portcullis';
  const result = await verifyTokenOffline(token, { keys: loaded.keys, issuer, audience, at });
  const checked = { issuer, audience, at: new Date(at).toISOString(), keys: options.keys };
  ctx.output.result({ ...result, checked }, () => {
    const c = result.claims ?? {};
    if (result.valid) {
      ctx.output.line(`VALID: Portcullis ${result.kind} token, signed by key ${result.kid}`);
    } else if (result.genuine) {
      ctx.output.line(`NOT VALID (${result.problem}): ${sanitizeText(result.message)}`);
      ctx.output.line(`  The signature is genuine (key ${result.kid}); the claims below are authentic.`);
    } else {
      ctx.output.line(`INVALID (${result.problem}): ${sanitizeText(result.message)}`);
      ctx.output.line('  Not shown to be issued by this Portcullis; its content is not to be trusted.');
      return;
    }
    const rows: [string, unknown][] = [
      ['issuer', c.iss],
      ['subject', c.sub],
      ['audience', Array.isArray(c.aud) ? c.aud.join(', ') : c.aud],
      ['grant', c.grant_id],
      ['resource', c.resource],
      ['role', c.role],
      ['scope', c.scope],
      ['token id', c.jti],
      ['issued', time(c.iat)],
      ['not before', time(c.nbf)],
      ['expires', typeof c.exp === 'number' ? `${time(c.exp)} (${relativeTime(time(c.exp), at)})` : '-'],
    ];
    for (const [name, value] of rows) {
      if (value !== undefined && value !== null)
        ctx.output.line(`  ${name.padEnd(11)}${sanitizeText(String(value))}`);
    }
    ctx.output.line(`  checked at ${checked.at} against issuer ${issuer}, audience ${audience}`);
  });
  return result.valid ? exitCodes.ok : exitCodes.verificationFailed;
}
