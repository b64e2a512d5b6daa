/**
 * `portcullis ssh-guard`: run as root on an SSH host, ends live sessions whose Portcullis
 * certificate expired or was revoked, and keeps the host's revocation list current
 * (src/ssh-guard/, docs/provisioners.md#ending-live-sessions-portcullis-ssh-guard).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { parseDurationSeconds } from '../../config/duration.js';
import { ed25519KeysOfAuthorizedKeys } from '../../ssh/ssh-wire.js';
import { readProcessTable } from '../../ssh-guard/host-processes.js';
import { hostLoginCgroups, type LoginCgroups } from '../../ssh-guard/login-cgroups.js';
import { LoginRecords } from '../../ssh-guard/login-records.js';
import { revokedByList } from '../../ssh-guard/revocation-check.js';
import { RevocationListRefresher } from '../../ssh-guard/revocation-list-refresh.js';
import { SessionRecords } from '../../ssh-guard/session-records.js';
import { SessionReporter } from '../../ssh-guard/session-reporter.js';
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
  readonly loginRecords: string;
  readonly loginCgroups?: string;
  readonly connectionsOnly?: boolean;
  readonly reportTokenFile?: string;
  readonly hostName?: string;
  readonly pamConfig: string;
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
  const reportToken = options.reportTokenFile ? readReportToken(options.reportTokenFile) : undefined;
  const hostName = options.hostName ?? hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(hostName))
    throw usageError(`Not a host name: ${hostName} (pass --host-name)`);
  if (!options.connectionsOnly && resolve(options.loginRecords) === resolve(options.records))
    throw usageError(
      '--login-records must be a directory of its own: root writes it, --record-user must not',
    );
  if (options.connectionsOnly && options.loginCgroups !== undefined)
    throw usageError('--login-cgroups needs login records: it cannot go with --connections-only');
  checkSshdConfiguration(options);
  const pam = options.connectionsOnly ? undefined : checkPamStack(options.pamConfig, options.loginCgroups);
  const cgroups = pam && loginCgroups(options.loginCgroups);
  const directories: [string, string, { uid: number; gid: number }][] = [
    ['--records', options.records, recordUserIds(options.recordUser)],
  ];
  if (!options.connectionsOnly)
    directories.push(['--login-records', options.loginRecords, { uid: 0, gid: 0 }]);
  for (const [option, directory, owner] of directories) prepareRecordsDirectory(option, directory, owner);

  const log = pino({ base: { component: 'ssh-guard', resource: options.resource } }, ctx.io.stdout);
  const reporter = reportToken
    ? new SessionReporter({
        url: `${server}/ssh/${options.resource}/session-events`,
        token: reportToken,
        host: hostName,
        fetch: ctx.io.fetch as typeof fetch,
        now: ctx.io.now,
        log,
      })
    : undefined;
  const guard = new SshSessionGuard({
    records: new SessionRecords(options.records),
    logins: options.connectionsOnly ? undefined : new LoginRecords(options.loginRecords),
    authorities,
    processes: () => readProcessTable(),
    revoked: (certificates) => revokedByList(options.revokedKeys, certificates),
    signal: (pid, signal) => process.kill(pid, signal),
    now: ctx.io.now,
    log,
    report: reporter ? (event) => reporter.add(event) : undefined,
    bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    cgroups,
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
    {
      records: options.records,
      login_records: options.connectionsOnly ? null : options.loginRecords,
      login_cgroups: options.loginCgroups ?? (pam?.logind ? 'logind' : null),
      reports: reporter ? { host: hostName } : null,
      revoked_keys: options.revokedKeys,
      authorities: authorities.length,
    },
    'ssh-guard: started',
  );
  if (pam?.logind && options.loginCgroups)
    log.warn(
      {},
      "ssh-guard: pam_systemd runs in sshd's session stack: logind moves each login into its own scope, so --login-cgroups is not needed and its groups stay empty",
    );
  if (pam && !options.loginCgroups && !(pam.logind && cgroups))
    log.warn(
      {},
      'ssh-guard: logins have no control group of their own (neither --login-cgroups nor pam_systemd with cgroup v2); a process that forks and exits in a tight loop can outlive its grant',
    );
  if (options.connectionsOnly)
    log.warn(
      {},
      'ssh-guard: following connections only; what a login leaves running after its connection closes (nohup, setsid, tmux) outlives its grant',
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
    // A records directory removed under the guard (a cleaned /run) is made anew: until then sshd
    // refuses certificate logins, and the guard goes on ending what it knows.
    for (const [option, directory, owner] of directories) {
      if (existsSync(directory)) continue;
      try {
        prepareRecordsDirectory(option, directory, owner);
        log.warn({ directory }, 'ssh-guard: a records directory was missing; made it anew');
      } catch (error) {
        log.error(
          { directory, err: { message: (error as Error).message } },
          'ssh-guard: cannot make a records directory',
        );
      }
    }
    try {
      await guard.check();
    } catch (error) {
      log.error({ err: { message: (error as Error).message } }, 'ssh-guard: a check failed; retrying');
    }
    reporter?.sendInBackground();
    await Promise.race([sleep(checkIntervalMs), stop.received]);
  }
  stop.dispose();
  await reporter?.drain();
  log.info({ unsent_reports: reporter?.queued ?? 0 }, 'ssh-guard: stopped');
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
  if (!options.connectionsOnly && settings.get('usepam') !== 'yes')
    problems.push(
      'UsePAM must be yes, with contrib/ssh/portcullis-ssh-login as a session hook (or pass --connections-only)',
    );
  if (!options.connectionsOnly && settings.get('exposeauthinfo') !== 'yes')
    problems.push('ExposeAuthInfo must be yes: the session hook records the certificate that logged in');
  if (problems.length > 0)
    throw usageError(`sshd (${options.sshdConfig}) is not set up for ssh-guard: ${problems.join('; ')}`);
}

/** The bearer secret of session reports: root's alone, a random secret. */
function readReportToken(file: string): string {
  let token: string;
  try {
    const mode = lstatSync(file).mode;
    if ((mode & 0o077) !== 0)
      throw usageError(`--report-token-file ${file} must be readable by its owner only (chmod 600)`);
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw usageError(`Cannot read --report-token-file ${file}: ${(error as Error).message}`);
  }
  if (token.length < 32 || /\s/.test(token))
    throw usageError(`--report-token-file ${file} must hold one secret of at least 32 characters`);
  return token;
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
 * sshd's PAM session stack must run the hook right after pam_loginuid (the login's audit session
 * exists by then) and before pam_env, which can read the user's own ~/.pam_environment: pam_exec
 * hands the hook the PAM environment, and a PATH or LD_PRELOAD of the user's would run as root.
 * Only the file itself is read: what its includes add is not checked.
 */
function checkPamStack(file: string, loginCgroups: string | undefined): { readonly logind: boolean } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw usageError(`Cannot read --pam-config ${file}: ${(error as Error).message}`);
  }
  const lines = pamLines(text);
  const loginuid = lines.findIndex((line) => /^session\s.*\bpam_loginuid\.so\b/.test(line));
  const hook = lines.findIndex(
    (line) =>
      /^session\s+(required|requisite)\s+pam_exec\.so\s/.test(line) &&
      /\stype=open_session(\s|$)/.test(line) &&
      /\s\S*\/portcullis-ssh-login(\s|$)/.test(line),
  );
  const readsUserEnvironment = (line: string) => /\bpam_env\.so\b.*\buser_readenv=1\b/.test(line);
  const problems: string[] = [];
  // The hook's arguments after its path: the login records directory, then its cgroup directory.
  const words = lines[hook]?.split(/\s+/) ?? [];
  const hookCgroups = words[words.findIndex((word) => word.endsWith('/portcullis-ssh-login')) + 2];
  const same = (a: string | undefined, b: string | undefined) =>
    a === undefined || b === undefined ? a === b : resolve(a) === resolve(b);
  if (hook >= 0 && !same(hookCgroups, loginCgroups))
    problems.push(
      loginCgroups === undefined
        ? `the hook puts logins in control groups under ${hookCgroups}: pass that directory as --login-cgroups`
        : `the hook must be given --login-cgroups as its second argument (…/portcullis-ssh-login <login records> ${loginCgroups})`,
    );
  if (hook < 0)
    problems.push(
      'no "session required pam_exec.so type=open_session …/portcullis-ssh-login" line (required or requisite)',
    );
  else {
    if (loginuid < 0 || loginuid > hook) problems.push('pam_loginuid.so must come before the hook');
    if (
      lines
        .slice(loginuid < 0 ? 0 : loginuid, hook)
        .some((line) => /^(@include|session\s+\S+\s+(include|substack))\b|\bpam_env\.so\b/.test(line))
    )
      problems.push('the hook must come right after pam_loginuid.so: before pam_env.so and any include');
    // sshd runs the auth stack (pam_setcred) before it opens the session, wherever its lines stand.
    const before = lines.filter((line, index) => index < hook || !line.startsWith('session'));
    if (before.some(readsUserEnvironment))
      problems.push(
        "no pam_env.so with user_readenv=1 may run before the hook (any auth line, or a session line above it): it reads the user's ~/.pam_environment",
      );
  }
  if (problems.length > 0)
    throw usageError(
      `sshd's PAM stack (${file}) is not set up for ssh-guard: ${[...new Set(problems)].join('; ')}`,
    );
  // pam_systemd is optional in Debian's stack and does nothing where systemd is not running.
  return { logind: runsPamSystemd(file, lines) && existsSync('/run/systemd/system') };
}

/** A PAM configuration's lines, comments and blank lines left out. */
function pamLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

/**
 * Whether sshd's session stack runs pam_systemd (logind gives each login a scope of its own, named
 * after its audit session): in the file or in a file it includes (Debian's common-session).
 */
function runsPamSystemd(file: string, lines: readonly string[]): boolean {
  const pamSystemd = (line: string) => /^session\s.*\bpam_systemd\.so\b/.test(line);
  if (lines.some(pamSystemd)) return true;
  return lines.some((line) => {
    const included = /^(?:@include\s+|session\s+\S+\s+(?:include|substack)\s+)([\w.-]+)$/.exec(line)?.[1];
    if (!included) return false;
    try {
      return pamLines(readFileSync(join(dirname(file), included), 'utf8')).some(pamSystemd);
    } catch {
      return false;
    }
  });
}

/**
 * The host's control groups for ending logins whole. With --login-cgroups (the hook's directory)
 * they are required: the directory is made, and must be on cgroup v2 with `cgroup.kill`.
 */
function loginCgroups(directory: string | undefined): LoginCgroups | undefined {
  if (directory === undefined) return hostLoginCgroups();
  if (!directory.startsWith('/')) throw usageError(`--login-cgroups must be an absolute path: ${directory}`);
  try {
    mkdirSync(directory, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw usageError(`Cannot make --login-cgroups ${directory}: ${(error as Error).message}`);
  }
  const cgroups = hostLoginCgroups({ hookDirectory: directory });
  if (!cgroups || !existsSync(`${directory}/cgroup.kill`))
    throw usageError(
      `--login-cgroups ${directory} must be a directory on the cgroup v2 file system, on Linux 5.14 or later (cgroup.kill)`,
    );
  // Groups must be made and removed there (not so where cgroups are mounted read-only, as with
  // systemd's ProtectControlGroups=yes): the hook makes one per login, the guard removes them.
  const probe = join(directory, `portcullis-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
  } catch (error) {
    throw usageError(
      `Cannot make control groups in --login-cgroups ${directory}: ${(error as Error).message}`,
    );
  }
  return cgroups;
}

/** The uid and gid of --record-user: an account of its own, never root. */
function recordUserIds(user: string): { uid: number; gid: number } {
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
  return { uid, gid };
}

/**
 * A directory records are written into: owned by their writer's account and by nobody else, mode
 * 0700, inside a root-owned parent. sshd's AuthorizedPrincipalsCommand writes session records as
 * --record-user; its PAM session hook writes login records as root.
 */
function prepareRecordsDirectory(
  option: string,
  directory: string,
  owner: { readonly uid: number; readonly gid: number },
): void {
  mkdirSync(dirname(directory), { recursive: true, mode: 0o755 });
  const parent = lstatSync(dirname(directory));
  // Whoever could write the parent could swap the records directory for one of their own.
  if (!parent.isDirectory() || parent.uid !== 0 || (parent.mode & 0o022) !== 0)
    throw usageError(`${dirname(directory)} must be a directory owned by root and writable by root only`);
  mkdirSync(directory, { mode: 0o700, recursive: true });
  if (!lstatSync(directory).isDirectory()) throw usageError(`${option} ${directory} is not a directory`);
  chownSync(directory, owner.uid, owner.gid);
  chmodSync(directory, 0o700);
}
