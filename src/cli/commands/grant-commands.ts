/** `portcullis grants`, `revoke`, `creds` and `token`. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { grantStatuses } from '../../core/grant.js';
import { loginName } from '../../core/resource.js';
import type { GrantView } from '../../http/views.js';
import { writeFileAtomically } from '../atomic-file.js';
import { usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { formatTable, relativeTime, sanitizeText } from '../output.js';

/** The API path of one grant. */
export const grantPath = (id: string) => `/api/v1/grants/${encodeURIComponent(id)}`;

export interface ListGrantsOptions {
  readonly all?: boolean;
  readonly status?: string;
}

/** `portcullis grants [--all] [--status active]`. */
export async function listGrants(ctx: CliContext, options: ListGrantsOptions): Promise<void> {
  if (options.status) {
    const known: readonly string[] = grantStatuses;
    const unknown = options.status.split(',').filter((s) => !known.includes(s));
    if (unknown.length > 0) {
      throw usageError(`Unknown status ${unknown.join(', ')}; statuses are ${grantStatuses.join(', ')}`);
    }
  }
  const { grants } = await (await ctx.client()).get<{ grants: GrantView[] }>('/api/v1/grants', {
    scope: options.all ? 'all' : 'mine',
    status: options.status,
  });
  ctx.output.result({ grants }, () => {
    if (grants.length === 0) {
      ctx.output.line(`No grants${options.status ? ` with status ${options.status}` : ''}.`);
      return;
    }
    const now = ctx.io.now();
    ctx.output.line(
      formatTable(
        [
          { header: 'id' },
          { header: 'principal', maxWidth: 28 },
          { header: 'access', maxWidth: 40 },
          { header: 'status' },
          { header: 'expires' },
          { header: 'note', maxWidth: 48 },
        ],
        grants.map((g) => [
          g.id,
          g.principal,
          `${g.resource}/${g.role}`,
          g.status,
          g.revoked_at ? `ended ${relativeTime(g.revoked_at, now)}` : relativeTime(g.expires_at, now),
          // The reference first: the column is cut at 48 characters, and it is what to look up.
          g.last_error_reference
            ? `ref ${g.last_error_reference}: ${g.last_error ?? ''}`
            : (g.last_error ?? ''),
        ]),
      ),
    );
  });
}

/** `portcullis revoke GRANT [--reason]`: end a grant now (also a requester's early release). */
export async function revokeGrant(ctx: CliContext, id: string, reason: string | undefined): Promise<void> {
  const grant = await (await ctx.client()).post<GrantView>(`${grantPath(id)}/revoke`, {
    reason: reason ?? '',
  });
  ctx.output.result(grant, () =>
    ctx.output.line(
      `Grant ${grant.id} (${sanitizeText(grant.principal)}: ${sanitizeText(grant.resource)}/${sanitizeText(grant.role)}) is ${sanitizeText(grant.status)}${grant.status === 'revoking' ? '; the access is being taken back' : ''}`,
    ),
  );
}

/**
 * `portcullis creds GRANT [--ssh-key FILE]`: the requester's credentials. Prints just the connection
 * string when there is one (so `psql "$(portcullis creds G)"` works), else every field; all with
 * `--json`. An SSH grant's key and certificate are written to FILE and FILE-cert.pub with
 * `--ssh-key`, and the ssh command printed; without it, its other fields are. With
 * `--ssh-public-key KEY.pub` the grant certifies a key of the caller's own instead (KEY-cert.pub).
 */
export async function showCredentials(
  ctx: CliContext,
  id: string,
  options: { sshKey?: string; sshPublicKey?: string; force?: boolean } = {},
): Promise<void> {
  if (options.sshPublicKey !== undefined) {
    if (options.sshKey !== undefined) throw usageError('Give --ssh-key or --ssh-public-key, not both');
    return certifyOwnKey(ctx, id, options.sshPublicKey, options.force === true);
  }
  const result = await (await ctx.client()).get<{ grant_id: string; credentials: Record<string, string> }>(
    `${grantPath(id)}/credentials`,
  );
  const { private_key: privateKey, certificate } = result.credentials;
  if (options.sshKey !== undefined) {
    if (privateKey === undefined || certificate === undefined) {
      throw usageError(
        `grant ${id} has no SSH key and certificate: --ssh-key is for grants of ssh resources`,
      );
    }
    const keyFile = resolve(options.sshKey);
    const certificateFile = `${keyFile}-cert.pub`;
    if (!options.force && !(await replaceable(keyFile, certificateFile))) {
      throw usageError(
        `${keyFile} (or its -cert.pub) exists and is not a Portcullis key: choose another path, or --force to replace it`,
      );
    }
    await writeFileAtomically(keyFile, privateKey, 0o600);
    await writeFileAtomically(certificateFile, `${certificate}\n`, 0o644);
    const command = sshCommand(result.credentials, keyFile, certificateFile);
    const written = {
      grant_id: result.grant_id,
      key_file: keyFile,
      certificate_file: certificateFile,
      login: result.credentials.login,
      valid_before: result.credentials.valid_before,
      ssh_command: command,
    };
    ctx.output.result(written, () => {
      ctx.output.note(
        `Wrote ${keyFile} and ${certificateFile}, valid until ${result.credentials.valid_before}.`,
      );
      ctx.output.line(sanitizeText(command));
    });
    return;
  }
  ctx.output.result(result, () => {
    const connection = result.credentials.connection_string;
    if (connection !== undefined) {
      ctx.output.line(sanitizeText(connection));
      return;
    }
    // A key is no terminal line: written to a file with --ssh-key, or read whole with --json.
    const fields = Object.entries(result.credentials).filter(
      ([key]) => key !== 'private_key' && key !== 'certificate',
    );
    const width = Math.max(0, ...fields.map(([key]) => key.length));
    for (const [key, value] of fields)
      ctx.output.line(`${sanitizeText(key).padEnd(width)}  ${sanitizeText(value)}`);
    if (privateKey !== undefined) {
      ctx.output.note(`The SSH key and certificate: portcullis creds ${id} --ssh-key FILE (or --json).`);
    }
  });
}

/**
 * A key path may be written over only when nothing is there, or what is there is a key this
 * command wrote before (its certificate names a Portcullis grant): never someone's own key.
 */
async function replaceable(keyFile: string, certificateFile: string): Promise<boolean> {
  const [key, cert] = await Promise.all([readIfThere(keyFile), readIfThere(certificateFile)]);
  if (key === undefined && cert === undefined) return true;
  return cert !== undefined && isPortcullisCertificate(cert);
}

/** A certificate file this command wrote (its comment names a Portcullis grant). */
function isPortcullisCertificate(text: string): boolean {
  return /^ssh-ed25519-cert-v01@openssh\.com \S+ portcullis-[0-9a-f-]+\s*$/.test(text);
}

interface CertifiedKey {
  readonly grant_id: string;
  readonly certificate: string;
  readonly fingerprint: string;
  readonly login: string;
  readonly valid_before: string;
  readonly host?: string;
  readonly port?: string;
}

/**
 * `creds GRANT --ssh-public-key KEY.pub`: a certificate for the caller's own key, written beside it
 * as KEY-cert.pub (where ssh looks for it). The private key is never read.
 */
async function certifyOwnKey(
  ctx: CliContext,
  id: string,
  publicKeyFile: string,
  force: boolean,
): Promise<void> {
  const publicPath = resolve(publicKeyFile);
  if (!publicPath.endsWith('.pub'))
    throw usageError(`--ssh-public-key takes the public key file (KEY.pub), not ${publicPath}`);
  const publicKey = await readIfThere(publicPath);
  if (publicKey === undefined) throw usageError(`No such file: ${publicPath}`);
  const keyFile = publicPath.slice(0, -'.pub'.length);
  const certificateFile = `${keyFile}-cert.pub`;
  const existing = await readIfThere(certificateFile);
  if (!force && existing !== undefined && !isPortcullisCertificate(existing))
    throw usageError(`${certificateFile} exists and is not a Portcullis certificate: --force to replace it`);
  const certified = await (await ctx.client()).post<CertifiedKey>(`${grantPath(id)}/ssh-certificate`, {
    public_key: publicKey.trim(),
  });
  await writeFileAtomically(certificateFile, `${certified.certificate}\n`, 0o644);
  const command = sshCommand(
    { login: certified.login, host: certified.host ?? '', port: certified.port ?? '' },
    keyFile,
    certificateFile,
  );
  ctx.output.result({ ...certified, certificate_file: certificateFile, ssh_command: command }, () => {
    ctx.output.note(
      `Wrote ${certificateFile} for ${sanitizeText(certified.fingerprint)}, valid until ${sanitizeText(certified.valid_before)}.`,
    );
    ctx.output.line(sanitizeText(command));
  });
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The ssh command for the written files, built here from fields checked to be a login, a host name
 * or address and a port: never a command line taken from the server as it is.
 */
function sshCommand(credentials: Record<string, string>, keyFile: string, certificateFile: string): string {
  const login = loginName.test(credentials.login ?? '') ? credentials.login : 'LOGIN';
  const host = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/.test(credentials.host ?? '') ? credentials.host : 'HOST';
  const port =
    /^[0-9]{1,5}$/.test(credentials.port ?? '') && credentials.port !== '22' ? ` -p ${credentials.port}` : '';
  return `ssh -i ${shellQuote(keyFile)} -o CertificateFile=${shellQuote(certificateFile)}${port} ${login}@${host}`;
}

/** A path as one POSIX shell word. */
function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

interface IssuedToken {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_at: string;
  readonly jti: string;
}

/** `portcullis token GRANT`: a signed access token for a live grant, printed alone on stdout. */
export async function issueToken(ctx: CliContext, id: string): Promise<void> {
  const issued = await (await ctx.client()).post<IssuedToken>(`${grantPath(id)}/token`);
  ctx.output.result(issued, () => {
    ctx.output.line(sanitizeText(issued.access_token));
    if (ctx.output.interactive) ctx.output.note(`(expires ${relativeTime(issued.expires_at, ctx.io.now())})`);
  });
}
