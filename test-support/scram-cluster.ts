/**
 * A throw-away PostgreSQL cluster with scram-sha-256 authentication, for tests that must prove
 * password and `VALID UNTIL` behaviour (the machine's shared server trusts every local connection,
 * so there a wrong password still logs in).
 *
 * `startScramCluster()` runs `initdb` and `pg_ctl` of the installed server in a temporary directory,
 * listening only on 127.0.0.1 on a free port, with fsync off; `stop()` kills it and removes the
 * directory. PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` OS
 * user (override with PORTCULLIS_PG_OS_USER) through `runuser`. The binaries are looked up in
 * PORTCULLIS_PG_BIN, then `pg_config --bindir`, then PATH, then /usr/lib/postgresql/<version>/bin.
 *
 * @example
 * const cluster = await startScramCluster();
 * const client = new pg.Client({ connectionString: cluster.adminUrl });
 * // …
 * await cluster.stop();
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

export interface ScramCluster {
  /** Superuser `postgres` with its password, database `postgres`. */
  readonly adminUrl: string;
  readonly port: number;
  /** Stops the server (immediate mode) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
}

const superuser = 'postgres';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function fromDirectory(dir: string): Binaries | undefined {
  const initdb = join(dir, 'initdb');
  const pgCtl = join(dir, 'pg_ctl');
  return isExecutable(initdb) && isExecutable(pgCtl) ? { initdb, pgCtl } : undefined;
}

function pgConfigBindir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

function debianBindirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((version) => /^\d+(\.\d+)?$/.test(version))
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => join(root, version, 'bin'));
}

function findBinaries(): Binaries {
  const candidates = [
    process.env.PORTCULLIS_PG_BIN,
    pgConfigBindir(),
    ...(process.env.PATH ?? '').split(':'),
    ...debianBindirs(),
  ].filter((dir): dir is string => Boolean(dir));
  for (const dir of candidates) {
    const found = fromDirectory(dir);
    if (found) return found;
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, pg_ctl) were not found in PORTCULLIS_PG_BIN, pg_config --bindir, ' +
      'PATH or /usr/lib/postgresql/*/bin: install the PostgreSQL server package or set PORTCULLIS_PG_BIN',
  );
}

interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The OS user to run the server as when we are root (PostgreSQL refuses to run as root). */
function serverOsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.PORTCULLIS_PG_OS_USER ?? 'postgres';
  try {
    const id = (flag: string) =>
      Number(
        execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error(
      `Running as root: PostgreSQL must run as another OS user, but user "${name}" does not exist ` +
        '(create it or set PORTCULLIS_PG_OS_USER)',
    );
  }
}

function commandLine(
  osUser: OsUser | undefined,
  binary: string,
  args: readonly string[],
): [string, string[]] {
  return osUser ? ['runuser', ['-u', osUser.name, '--', binary, ...args]] : [binary, [...args]];
}

function run(
  osUser: OsUser | undefined,
  cwd: string,
  binary: string,
  args: readonly string[],
): Promise<void> {
  const [command, commandArgs] = commandLine(osUser, binary, args);
  return new Promise((resolve, reject) => {
    // stdout is ignored: pg_ctl leaves it open in the server it starts, which would keep a pipe from closing.
    const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', (error) =>
      reject(new Error(`cannot run ${command}: ${error.message}`, { cause: error })),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${binary} ${args[0] ?? ''} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

async function waitUntilAcceptingLogins(adminUrl: string, deadlineMs: number): Promise<void> {
  let lastError: unknown;
  while (Date.now() < deadlineMs) {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(`PostgreSQL did not accept logins in time: ${String(lastError)}`);
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface ScramClusterOptions {
  /** `max_connections` of the server (default 60). */
  readonly maxConnections?: number;
  /** Serve TLS too (`ssl = on`) with this certificate and key (PEM files; copied into the cluster). */
  readonly ssl?: { readonly certFile: string; readonly keyFile: string };
  /**
   * How every role but the superuser authenticates over TCP (default `scram-sha-256`): `password`
   * asks for the password in cleartext, `trust` for none.
   */
  readonly otherRolesAuth?: 'scram-sha-256' | 'password' | 'trust';
}

/** Starts a scram-sha-256 cluster on 127.0.0.1 (one per test file is plenty; startup takes about a second). */
export async function startScramCluster(options: ScramClusterOptions = {}): Promise<ScramCluster> {
  const binaries = findBinaries();
  const osUser = serverOsUser();
  const root = await mkdtemp(join(tmpdir(), 'portcullis-pg-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  const password = randomBytes(24).toString('base64url');
  const pgCtl = (...args: string[]) => run(osUser, root, binaries.pgCtl, args);

  let stopped = false;
  let started = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    if (started) {
      const [command, args] = commandLine(osUser, binaries.pgCtl, ['stop', '-D', dataDir, '-m', 'immediate']);
      spawnSync(command, args, { cwd: '/', stdio: 'ignore' });
    }
  };
  // A test process that dies without calling stop() must not leave a server running.
  const onExit = () => {
    stopNow();
    spawnSync('rm', ['-rf', root], { stdio: 'ignore' });
  };
  process.once('exit', onExit);

  try {
    const passwordFile = join(root, 'superuser-password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (osUser) {
      await chown(root, osUser.uid, osUser.gid);
      await chown(passwordFile, osUser.uid, osUser.gid);
    }
    await chmod(root, 0o700);

    await run(osUser, root, binaries.initdb, [
      '-D',
      dataDir,
      '--auth=scram-sha-256',
      `--username=${superuser}`,
      `--pwfile=${passwordFile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await rm(passwordFile, { force: true });
    if (options.otherRolesAuth && options.otherRolesAuth !== 'scram-sha-256') {
      // pg_hba takes the first matching line: these go before initdb's.
      const hbaFile = join(dataDir, 'pg_hba.conf');
      const initial = await readFile(hbaFile, 'utf8');
      await writeFile(
        hbaFile,
        [
          `host all ${superuser} 127.0.0.1/32 scram-sha-256`,
          `host all all 127.0.0.1/32 ${options.otherRolesAuth}`,
          initial,
        ].join('\n'),
      );
    }
    const sslSettings: string[] = [];
    if (options.ssl) {
      // The server reads them as its OS user, and refuses a key others can read.
      const certFile = join(root, 'server.crt');
      const keyFile = join(root, 'server.key');
      await writeFile(certFile, await readFile(options.ssl.certFile));
      await writeFile(keyFile, await readFile(options.ssl.keyFile), { mode: 0o600 });
      if (osUser) {
        await chown(certFile, osUser.uid, osUser.gid);
        await chown(keyFile, osUser.uid, osUser.gid);
      }
      const quoted = (path: string) => `'${path.replaceAll("'", "''")}'`;
      sslSettings.push(
        'ssl = on',
        `ssl_cert_file = ${quoted(certFile)}`,
        `ssl_key_file = ${quoted(keyFile)}`,
      );
    }
    await appendFile(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        '# portcullis test cluster',
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${root.replaceAll("'", "''")}'`,
        "password_encryption = 'scram-sha-256'",
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        `max_connections = ${options.maxConnections ?? 60}`,
        ...sslSettings,
        '',
      ].join('\n'),
    );

    // Another process may take the free port between our probe and the server's bind: retry.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await pgCtl('start', '-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', `-p ${port}`);
        started = true;
        break;
      } catch (error) {
        if (attempt >= 3) {
          throw new Error(`${(error as Error).message}\nserver log:\n${await tail(logFile)}`, {
            cause: error,
          });
        }
      }
    }

    const adminUrl = `postgres://${superuser}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    await waitUntilAcceptingLogins(adminUrl, Date.now() + 15_000);

    return {
      adminUrl,
      port,
      async stop() {
        if (stopped) return;
        process.removeListener('exit', onExit);
        stopped = true;
        await pgCtl('stop', '-D', dataDir, '-m', 'immediate', '-w').catch(() => {});
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    process.removeListener('exit', onExit);
    onExit();
    throw error;
  }
}

/**
 * Starts a cluster for a test file, or explains why its tests are skipped. Follows
 * postgresSkipReason: when CI=true a cluster that cannot start is a failure, not a skip.
 */
export async function startScramClusterOrSkip(
  options: ScramClusterOptions = {},
): Promise<
  | { readonly cluster: ScramCluster; readonly skip?: undefined }
  | { readonly cluster?: undefined; readonly skip: string }
> {
  try {
    return { cluster: await startScramCluster(options) };
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    return {
      skip: `cannot start a scram-sha-256 PostgreSQL cluster (set CI=true to make this a failure): ${(error as Error).message}`,
    };
  }
}
