/**
 * A real OpenSSH server for tests (Debian's openssh-server; .ci/run installs it), in a temporary
 * directory on a free loopback port, trusting one user certificate authority and nothing else:
 * no authorized_keys, no passwords. Its revocation list is a file the test writes (as a host's
 * cron job would, from Portcullis). It needs root, as sshd does; without sshd or root the caller
 * skips, and with CI=true that is a failure instead (see {@link sshdSkipReason}).
 *
 * - `startSshd({ trustedCaKey, emptyKrl, sessionRecords? })` → `{ port, revokedKeysFile, log(), close() }`;
 *   with `sessionRecords`, sshd runs contrib/ssh/portcullis-ssh-session as its
 *   AuthorizedPrincipalsCommand (for `portcullis ssh-guard`), from a root-owned copy as sshd demands.
 * - `sshCommand(server, key, cert, login, command)` → the exit code and output of a real `ssh`;
 *   `startSshSession(…)` the same, still running.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

const sshdPath = '/usr/sbin/sshd';

export function sshdSkipReason(): string | undefined {
  let reason: string | undefined;
  if (!existsSync(sshdPath)) reason = `no ${sshdPath} (apt-get install openssh-server)`;
  else if (process.getuid?.() !== 0) reason = 'sshd needs root';
  if (reason && process.env.CI === 'true') throw new Error(reason);
  return reason;
}

export interface TestSshd {
  readonly port: number;
  /** Its sshd_config. */
  readonly configFile: string;
  /** sshd's RevokedKeys: write a key revocation list here. */
  readonly revokedKeysFile: string;
  /** The PAM stack this sshd reads as /etc/pam.d/sshd (with `loginRecords` only). */
  readonly pamConfig: string | undefined;
  /** What sshd logged so far. */
  log(): string;
  close(): Promise<void>;
}

const principalsCommand = join(import.meta.dirname, '..', 'contrib', 'ssh', 'portcullis-ssh-session');
const loginHook = join(import.meta.dirname, '..', 'contrib', 'ssh', 'portcullis-ssh-login');

export async function startSshd(options: {
  readonly trustedCaKey: string;
  /** Where TrustedUserCAKeys points (default: a file of its own holding `trustedCaKey`). */
  readonly trustedCaKeysFile?: string;
  readonly emptyKrl: Buffer;
  /** Record sessions for ssh-guard into this directory, as this account. */
  readonly sessionRecords?: { readonly directory: string; readonly user: string };
  /**
   * Open each login's session through PAM (Debian's sshd stack, with pam_loginuid) and record its
   * audit session into this directory with contrib/ssh/portcullis-ssh-login, as ssh-guard's
   * production setup does. That stack is bind-mounted over /etc/pam.d/sshd in a mount namespace of
   * this sshd's own, so the machine's own sshd and its PAM files stay as they are.
   */
  readonly loginRecords?: string;
  /** With `loginRecords`: the hook's cgroup v2 directory, so that each login gets a group of its own. */
  readonly loginCgroups?: string;
  /** More sshd_config lines (before the records commands). */
  readonly extraConfig?: readonly string[];
}): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sshd-'));
  // sshd runs an AuthorizedPrincipalsCommand only from a path no one but root can write, all the
  // way up: not from /tmp (world-writable) or a checkout.
  const commandDir =
    options.sessionRecords || options.loginRecords ? mkdtempSync('/run/portcullis-sshd-') : undefined;
  if (commandDir) chmodSync(commandDir, 0o755);
  const commandLines: string[] = [];
  if (options.sessionRecords && commandDir) {
    copyFileSync(principalsCommand, join(commandDir, 'portcullis-ssh-session'));
    chmodSync(join(commandDir, 'portcullis-ssh-session'), 0o755);
    commandLines.push(
      `AuthorizedPrincipalsCommand ${join(commandDir, 'portcullis-ssh-session')} %u %k ${options.sessionRecords.directory}`,
      `AuthorizedPrincipalsCommandUser ${options.sessionRecords.user}`,
    );
  }
  let pamStack: string | undefined;
  if (options.loginRecords && commandDir) {
    const hook = join(commandDir, 'portcullis-ssh-login');
    copyFileSync(loginHook, hook);
    chmodSync(hook, 0o755);
    pamStack = join(commandDir, 'pam-sshd');
    // Right after pam_loginuid, before pam_env: where the docs put it, and `ssh-guard` checks.
    const hookLine = `session required pam_exec.so type=open_session ${hook} ${options.loginRecords}${options.loginCgroups ? ` ${options.loginCgroups}` : ''}`;
    const stack = readFileSync('/etc/pam.d/sshd', 'utf8').replace(
      /^(session\s+required\s+pam_loginuid\.so.*)$/m,
      `$1\n${hookLine}`,
    );
    if (!stack.includes(hookLine)) throw new Error('/etc/pam.d/sshd has no pam_loginuid.so line to follow');
    writeFileSync(pamStack, stack);
  }
  const port = await freePort();
  const hostKey = join(dir, 'host_key');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  writeFileSync(join(dir, 'ca.pub'), options.trustedCaKey);
  const revokedKeysFile = join(dir, 'revoked.krl');
  writeFileSync(revokedKeysFile, options.emptyKrl);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'AuthorizedKeysFile none',
      `TrustedUserCAKeys ${options.trustedCaKeysFile ?? join(dir, 'ca.pub')}`,
      `RevokedKeys ${revokedKeysFile}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `UsePAM ${pamStack ? 'yes' : 'no'}`,
      ...(pamStack ? ['ExposeAuthInfo yes'] : []),
      'StrictModes no',
      'LogLevel VERBOSE',
      ...(options.extraConfig ?? []),
      ...commandLines,
      '',
    ].join('\n'),
  );
  // Privilege separation needs this directory; a container may not have it.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  let output = '';
  const sshdArguments = [sshdPath, '-D', '-e', '-f', config];
  // unshare and sh exec in place: the child's pid stays the listener's.
  const [command, ...args] = pamStack
    ? [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$0" /etc/pam.d/sshd && exec "$@"',
        pamStack,
        ...sshdArguments,
      ]
    : sshdArguments;
  const child: ChildProcess = spawn(command as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    `sshd on port ${port} (${output.trim() || 'no output'})`,
    () =>
      new Promise<true | undefined>((resolve) => {
        const socket = createConnection({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(undefined));
      }),
    10_000,
  );
  return {
    port,
    configFile: config,
    revokedKeysFile,
    pamConfig: pamStack,
    log: () => output,
    async close() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      if (commandDir) rmSync(commandDir, { recursive: true, force: true });
    },
  };
}

/** A private key file and its certificate. */
export interface SshKeyFiles {
  readonly key: string;
  readonly cert: string;
}

/** With several key files, ssh offers them in order. */
function sshArguments(
  server: TestSshd,
  files: SshKeyFiles | readonly SshKeyFiles[],
  login: string,
  command: string,
): string[] {
  const identities = (Array.isArray(files) ? files : [files]) as readonly SshKeyFiles[];
  return [
    '-F',
    '/dev/null',
    ...identities.flatMap((f) => ['-i', f.key, '-o', `CertificateFile=${f.cert}`]),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-p',
    String(server.port),
    `${login}@127.0.0.1`,
    command,
  ];
}

/** Runs `command` over a real `ssh` with a key and its certificate; never asks anything. */
export function sshCommand(
  server: TestSshd,
  files: SshKeyFiles | readonly SshKeyFiles[],
  login: string,
  command: string,
): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('ssh', sshArguments(server, files, login, command), {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A real `ssh` session still running: its output so far and, once it ends, its exit code. */
export interface RunningSsh {
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; at: number }>;
  kill(): void;
}

export function startSshSession(
  server: TestSshd,
  files: SshKeyFiles | readonly SshKeyFiles[],
  login: string,
  command: string,
): RunningSsh {
  const child = spawn('ssh', sshArguments(server, files, login, command), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('close', (code) => resolve({ code, at: Date.now() })),
  );
  return { stdout: () => stdout, stderr: () => stderr, exited, kill: () => child.kill('SIGKILL') };
}
