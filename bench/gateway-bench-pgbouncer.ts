/**
 * PgBouncer for the gateway benchmark: the Debian package's binary, started in the foreground from
 * a generated ini in a temporary directory, listening on a free loopback port and pointing at the
 * target server. Clients log in with SCRAM-SHA-256 against a userlist holding the grant's login (so
 * PgBouncer can log in upstream with SCRAM as that login too). PgBouncer refuses to run as root, so
 * as root it runs as the `postgres` OS user (PORTCULLIS_PG_OS_USER overrides, as for the clusters).
 * Nothing is downloaded: a missing binary is reported with the command that installs it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test-support/free-port.js';

export const pgbouncerInstallHint =
  'PgBouncer is not installed: install the Debian package with `sudo apt-get install -y pgbouncer` ' +
  '(or set PGBOUNCER_BIN to its binary), or leave it out with GATEWAY_BENCH_TARGETS=gateway,direct';

/** The pgbouncer binary: PGBOUNCER_BIN, PATH, then the Debian location; undefined when missing. */
export function findPgbouncer(): string | undefined {
  const candidates = [
    process.env.PGBOUNCER_BIN,
    ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'pgbouncer')),
    '/usr/sbin/pgbouncer',
    '/usr/bin/pgbouncer',
  ].filter((path): path is string => Boolean(path));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

export function pgbouncerVersion(binary: string): string {
  return execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '?';
}

export interface PgbouncerOptions {
  readonly binary: string;
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  /** Database name on the server; also the name clients use at PgBouncer. */
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** `session` (one server connection per client, as the gateway) or `transaction`. */
  readonly poolMode: string;
  /** Server connections per user/database pair: at least the largest client count. */
  readonly poolSize: number;
  /** PEM certificate and key: clients must use TLS (client_tls_sslmode = require). */
  readonly clientTls?: { readonly cert: string; readonly key: string };
}

export interface RunningPgbouncer {
  readonly port: number;
  readonly pid: number;
  /** The run as: `pgbouncer` as user X, pool mode, auth. */
  readonly description: string;
  stop(): Promise<void>;
}

interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function osUserWhenRoot(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.PORTCULLIS_PG_OS_USER ?? 'postgres';
  const id = (flag: string) =>
    Number(
      execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
  try {
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error(`running as root: PgBouncer must run as another OS user, but "${name}" does not exist`);
  }
}

/** A value of the userlist file: double quotes doubled. */
function quoted(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

async function waitForPort(port: number, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  let log = '(no log)';
  try {
    log = readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');
  } catch {
    // keep the placeholder
  }
  throw new Error(`PgBouncer did not listen on port ${port} (exit code ${child.exitCode}):\n${log}`);
}

export async function startPgbouncer(options: PgbouncerOptions): Promise<RunningPgbouncer> {
  const osUser = osUserWhenRoot();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-pgbouncer-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const port = await freePort();
    const iniFile = join(dir, 'pgbouncer.ini');
    const userlist = join(dir, 'userlist.txt');
    const logFile = join(dir, 'pgbouncer.log');
    const certFile = join(dir, 'client-tls.crt');
    const keyFile = join(dir, 'client-tls.key');
    const tlsLines = options.clientTls
      ? [
          'client_tls_sslmode = require',
          `client_tls_cert_file = ${certFile}`,
          `client_tls_key_file = ${keyFile}`,
        ]
      : [];
    const ini = [
      '[databases]',
      `${options.database} = host=${options.upstreamHost} port=${options.upstreamPort} dbname=${options.database}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${userlist}`,
      `pool_mode = ${options.poolMode}`,
      'max_client_conn = 2000',
      `default_pool_size = ${options.poolSize}`,
      // Server connections left idle by one case are closed before long, so they do not pile up.
      'server_idle_timeout = 10',
      `logfile = ${logFile}`,
      'log_connections = 0',
      'log_disconnections = 0',
      'ignore_startup_parameters = extra_float_digits',
      ...tlsLines,
      '',
    ].join('\n');
    writeFileSync(iniFile, ini, { mode: 0o600 });
    writeFileSync(userlist, `${quoted(options.user)} ${quoted(options.password)}\n`, { mode: 0o600 });
    writeFileSync(logFile, '', { mode: 0o600 });
    const owned = [dir, iniFile, userlist, logFile];
    if (options.clientTls) {
      writeFileSync(certFile, options.clientTls.cert, { mode: 0o600 });
      writeFileSync(keyFile, options.clientTls.key, { mode: 0o600 });
      owned.push(certFile, keyFile);
    }
    if (osUser) for (const path of owned) chownSync(path, osUser.uid, osUser.gid);

    // uid/gid: libuv drops the supplementary groups too; the pid is PgBouncer's own (for its CPU time).
    const child = spawn(options.binary, [iniFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(osUser ? { uid: osUser.uid, gid: osUser.gid } : {}),
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', () => {});
    try {
      await waitForPort(port, child, logFile);
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n${stderr.trim()}`);
    }
    const pid = child.pid ?? 0;
    // A benchmark that exits without stop() (a second Ctrl-C) must not leave PgBouncer running.
    const onExit = () => {
      child.kill('SIGKILL');
      remove();
    };
    process.once('exit', onExit);
    return {
      port,
      pid,
      description:
        `${pgbouncerVersion(options.binary)} as OS user ${osUser?.name ?? 'current'}, ` +
        `pool_mode=${options.poolMode}, default_pool_size=${options.poolSize}, auth_type=scram-sha-256 (userlist), ` +
        `${options.clientTls ? 'clients over TLS (client_tls_sslmode=require), ' : ''}to the server as the same login`,
      async stop() {
        process.removeListener('exit', onExit);
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM'); // PgBouncer 1.18: immediate shutdown
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        remove();
      },
    };
  } catch (error) {
    remove();
    throw error;
  }
}
