/**
 * `portcullis ssh-guard`: run as root on an SSH host, ends live sessions whose Portcullis
 * certificate expired or was revoked, and keeps the host's revocation list current
 * (src/ssh-guard/, docs/provisioners.md#ending-live-sessions-portcullis-ssh-guard).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { parseDurationSeconds } from '../../config/duration.js';
import { ed25519KeysOfAuthorizedKeys } from '../../ssh/ssh-wire.js';
import { readProcessTable } from '../../ssh-guard/host-processes.js';
import { revokedByList } from '../../ssh-guard/revocation-check.js';
import { RevocationListRefresher } from '../../ssh-guard/revocation-list-refresh.js';
import { SessionRecords } from '../../ssh-guard/session-records.js';
import { SshSessionGuard } from '../../ssh-guard/ssh-session-guard.js';
import { isLoopbackUrl } from '../../text/loopback-address.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { nextStopSignal } from '../signals.js';

export interface SshGuardOptions {
  readonly resource: string;
  readonly caKeys: string;
  readonly revokedKeys: string;
  readonly records: string;
  readonly recordUser: string;
  readonly refresh: string;
  readonly sshdConfig: string;
}

/** How often sessions are checked against their deadlines: well inside the one second promised. */
const checkIntervalMs = 250;
const resourcePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export async function runSshGuard(ctx: CliContext, options: SshGuardOptions): Promise<void> {
  if (!resourcePattern.test(options.resource)) throw usageError(`Not a resource id: ${options.resource}`);
  const refreshSeconds = parseDurationSeconds(options.refresh);
  if (refreshSeconds === null)
    throw usageError(`--refresh must be a duration such as 5s, not ${options.refresh}`);
  const server = revocationServer(ctx);
  if (process.getuid?.() !== 0)
    throw new CliError(
      'forbidden',
      'ssh-guard must run as root: it ends sshd processes and the processes of other accounts',
      exitCodes.forbidden,
    );
  const authorities = readAuthorities(options.caKeys);
  checkSshdConfiguration(options);
  prepareRecordsDirectory(options.records, options.recordUser);

  const log = pino({ base: { component: 'ssh-guard', resource: options.resource } }, ctx.io.stdout);
  const guard = new SshSessionGuard({
    records: new SessionRecords(options.records),
    authorities,
    processes: () => readProcessTable(),
    revoked: (certificates) => revokedByList(options.revokedKeys, certificates),
    signal: (pid, signal) => process.kill(pid, signal),
    now: ctx.io.now,
    log,
  });
  const refresher = new RevocationListRefresher({
    url: `${server}/ssh/${options.resource}/revoked.krl`,
    file: options.revokedKeys,
    fetch: ctx.io.fetch as typeof fetch,
  });

  const stop = nextStopSignal();
  let stopped = false;
  void stop.received.then(() => (stopped = true));
  log.info(
    { records: options.records, revoked_keys: options.revokedKeys, authorities: authorities.length },
    'ssh-guard: started',
  );
  let nextRefresh = 0;
  let failedRefreshes = 0;
  while (!stopped) {
    if (ctx.io.now() >= nextRefresh) {
      nextRefresh = ctx.io.now() + refreshSeconds * 1000;
      try {
        if ((await refresher.refresh()) === 'changed') {
          guard.revocationListChanged();
          log.info({}, 'ssh-guard: installed a new revocation list');
        }
        failedRefreshes = 0;
      } catch (error) {
        failedRefreshes += 1;
        // Deadlines are still enforced from the certificates; only early revocation waits.
        log.warn(
          { err: { message: (error as Error).message }, failed_in_a_row: failedRefreshes },
          'ssh-guard: could not refresh the revocation list; the installed one is kept',
        );
      }
    }
    try {
      await guard.check();
    } catch (error) {
      log.error({ err: { message: (error as Error).message } }, 'ssh-guard: a check failed; retrying');
    }
    await Promise.race([sleep(checkIntervalMs), stop.received]);
  }
  stop.dispose();
  log.info({}, 'ssh-guard: stopped');
}

/**
 * The server the list comes from. A revocation list that an attacker on the path could replace
 * with an empty one would undo every early revocation, so plain http is for loopback only.
 */
function revocationServer(ctx: CliContext): string {
  const server = ctx.explicitServer;
  if (server === undefined) throw usageError('Which server? Pass --server URL or set PORTCULLIS_SERVER');
  const url = new URL(server);
  if (url.protocol !== 'https:' && !isLoopbackUrl(url))
    throw usageError(
      `ssh-guard fetches the revocation list over https only (or http on loopback), not ${server}`,
    );
  return server.replace(/\/$/, '');
}

/**
 * sshd must record every certificate login through the principals command and read the files this
 * guard keeps; a configuration where it does not would leave sessions the guard never sees. Read
 * with `sshd -T` (the effective settings, defaults and includes resolved; `Match` blocks are not).
 */
function checkSshdConfiguration(options: SshGuardOptions): void {
  const sshd = existsSync('/usr/sbin/sshd') ? '/usr/sbin/sshd' : 'sshd';
  const result = spawnSync(sshd, ['-T', '-f', options.sshdConfig], { encoding: 'utf8', timeout: 15_000 });
  if (result.status !== 0)
    throw usageError(
      `Cannot read sshd's settings (sshd -T -f ${options.sshdConfig}): ${(result.stderr || String(result.error ?? '')).trim()}`,
    );
  const settings = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) settings.set(line.slice(0, space).toLowerCase(), line.slice(space + 1).trim());
  }
  const problems: string[] = [];
  if ((settings.get('authorizedprincipalscommand') ?? 'none') === 'none')
    problems.push('AuthorizedPrincipalsCommand must be contrib/ssh/portcullis-ssh-session');
  if ((settings.get('authorizedprincipalsfile') ?? 'none') !== 'none')
    problems.push('AuthorizedPrincipalsFile must not be set: sshd would not run the principals command');
  if (settings.get('revokedkeys') !== resolve(options.revokedKeys))
    problems.push(`RevokedKeys must be --revoked-keys ${resolve(options.revokedKeys)}`);
  const trusted = (settings.get('trustedusercakeys') ?? 'none').split(/\s+/);
  if (!trusted.includes(resolve(options.caKeys)))
    problems.push(`TrustedUserCAKeys must be --ca-keys ${resolve(options.caKeys)}`);
  if (problems.length > 0)
    throw usageError(`sshd (${options.sshdConfig}) is not set up for ssh-guard: ${problems.join('; ')}`);
}

function readAuthorities(file: string): Buffer[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw usageError(`Cannot read --ca-keys ${file}: ${(error as Error).message}`);
  }
  let parsed: ReturnType<typeof ed25519KeysOfAuthorizedKeys>;
  try {
    parsed = ed25519KeysOfAuthorizedKeys(text);
  } catch (error) {
    throw usageError(`--ca-keys ${file}: ${(error as Error).message}`);
  }
  if (parsed.keys.length === 0)
    throw usageError(`--ca-keys ${file} holds no ssh-ed25519 key (the file sshd's TrustedUserCAKeys names)`);
  return parsed.keys;
}

/**
 * The directory sshd's AuthorizedPrincipalsCommand writes records into: owned by that command's
 * account and by nobody else, mode 0700, inside a root-owned parent.
 */
function prepareRecordsDirectory(directory: string, user: string): void {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw usageError(`Not an account name: ${user}`);
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  } catch {
    throw usageError(`No such account: ${user} (--record-user, sshd's AuthorizedPrincipalsCommandUser)`);
  }
  if (uid === 0)
    throw usageError('--record-user must not be root: the principals command needs no privilege');
  mkdirSync(dirname(directory), { recursive: true, mode: 0o755 });
  const parent = lstatSync(dirname(directory));
  // Whoever could write the parent could swap the records directory for one of their own.
  if (!parent.isDirectory() || parent.uid !== 0 || (parent.mode & 0o022) !== 0)
    throw usageError(`${dirname(directory)} must be a directory owned by root and writable by root only`);
  mkdirSync(directory, { mode: 0o700, recursive: true });
  if (!lstatSync(directory).isDirectory()) throw usageError(`--records ${directory} is not a directory`);
  chownSync(directory, uid, gid);
  chmodSync(directory, 0o700);
}
