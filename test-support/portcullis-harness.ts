/**
 * A whole Portcullis for end-to-end tests: the real server (composition root) listening on a free
 * port, the real demo OIDC provider, storage on SQLite or on a fresh PostgreSQL database, and a
 * `demo-db` PostgreSQL resource on a cluster the caller provides (e.g. the SCRAM test cluster).
 * `login(user)` runs the real browser login (OIDC code flow + the CLI loopback/PKCE exchange).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import type { Clock } from '../src/core/clock.js';
import {
  type DemoIdentityProvider,
  startDemoIdentityProvider,
} from '../src/identity/demo-identity-provider.js';
import { type RunningPortcullis, startPortcullis } from '../src/server/start.js';
import { freePort } from './free-port.js';
import { signInThroughBrowser } from './oidc-browser.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/** Creates `appdb` with group roles app_readonly (SELECT) and app_readwrite (SELECT, INSERT) on table items. */
export async function prepareTargetDatabase(adminUrl: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const name = `appdb_${randomBytes(4).toString('hex')}`;
  try {
    await admin.query(`create database ${name}`);
    await admin.query(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'app_readonly') then create role app_readonly nologin; end if;
        if not exists (select 1 from pg_roles where rolname = 'app_readwrite') then create role app_readwrite nologin; end if;
      end $$`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(`
      create table items (id serial primary key, name text not null);
      insert into items (name) values ('first'), ('second');
      grant usage on schema public to app_readonly, app_readwrite;
      grant select on items to app_readonly;
      grant select, insert on items to app_readwrite;
      grant usage on sequence items_id_seq to app_readwrite;`);
  } finally {
    await db.end();
  }
  return name;
}

const repoRoot = join(import.meta.dirname, '..');

/**
 * Starts `portcullis serve --config FILE` and waits until /healthz answers. It runs the TypeScript
 * source, not bin/portcullis.js: that prefers a compiled dist/ when one exists (e.g. left by
 * `npm install`), which would test whatever was last built instead of the code under test.
 */
export async function spawnServer(
  configPath: string,
  env: NodeJS.ProcessEnv,
  url: string,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), 'serve', '--config', configPath],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`portcullis serve exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`portcullis serve did not become healthy:\n${output}`);
}

export async function killChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** Drops a database made by {@link prepareTargetDatabase}, cutting whatever is still connected. */
export async function dropTargetDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', () => {});
  try {
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
  } catch {
    // The target cluster may already be gone (a test stopped it): nothing is left to drop then.
  } finally {
    await admin.end().catch(() => {});
  }
}

export interface HarnessOptions {
  readonly storage: 'sqlite' | 'postgres';
  /** Admin URL of the PostgreSQL that backs the `demo-db` resource; omit for a token-only setup. */
  readonly targetAdminUrl?: string;
  readonly policyFile?: string;
  /** Provision `demo-db` as this (less privileged) account instead of the cluster's superuser. */
  readonly targetResourceAdmin?: {
    readonly user: string;
    readonly password: string;
    readonly reassignOwnedTo: string;
  };
  /**
   * Turns the database gateway on (port 0, plaintext allowed on loopback); an object adds or
   * replaces `gateway` keys.
   */
  readonly gateway?: boolean | Record<string, unknown>;
  /** `connection_limit` of `demo-db` (default 3). */
  readonly targetConnectionLimit?: number;
  /** `demo-db` is reached only through the gateway (`postgres.gateway_only`). */
  readonly targetGatewayOnly?: boolean;
  /** More keys of the target's `postgres` section (e.g. `gateway_upstream_auth`). */
  readonly targetPostgresOverrides?: Record<string, unknown>;
  /** Extra or replaced top-level config keys. */
  readonly configOverrides?: Record<string, unknown>;
  /** More keys of the `tokens` section (e.g. `signing_algorithm`). */
  readonly tokenOverrides?: Record<string, unknown>;
  /**
   * `child` runs `portcullis serve` as a real child process (so tests can `kill -9` it);
   * default `in-process`.
   */
  readonly mode?: 'in-process' | 'child';
  /** Extra or replaced keys of the demo OIDC provider's entry (e.g. `deny`, `mapping_rules`). */
  readonly demoIdpOverrides?: Record<string, unknown>;
  /** More `identity_providers` entries after the demo OIDC one (e.g. SAML test IdPs). */
  readonly extraIdentityProviders?: readonly object[];
  /** The server's clock (in-process mode only), e.g. to age sessions without sleeping. */
  readonly clock?: Clock;
  /**
   * Host of the public URL (the server still listens on 127.0.0.1): `localhost` for a browser's
   * WebAuthn ceremonies, which refuse an IP address as the relying party id.
   */
  readonly publicHost?: 'localhost';
}

export interface ApiResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly contentType: string;
}

export interface Harness {
  readonly url: string;
  readonly dir: string;
  readonly configPath: string;
  readonly env: Record<string, string>;
  /** The in-process server (mode `in-process` only). */
  readonly portcullis: RunningPortcullis;
  /** The child process (mode `child` only). */
  readonly child: ChildProcess | null;
  /** Sends SIGKILL to the child process and waits for it to die. */
  kill(): Promise<void>;
  readonly idp: DemoIdentityProvider;
  readonly storageUrl: string;
  readonly targetDatabase: string | null;
  /** Signs a demo user in through the real OIDC flow; returns a Portcullis session token. */
  login(username: string): Promise<string>;
  api(
    token: string | null,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResponse>;
  /** Stops the server only (storage and IdP stay), e.g. to restart it. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-'));
  const port = await freePort();
  const url = `http://${options.publicHost ?? '127.0.0.1'}:${port}`;
  const idp = await startDemoIdentityProvider({
    port: 0,
    redirectUris: [`${url}/auth/oidc/demo/callback`],
    apiAudience: 'urn:portcullis:api',
  });
  let database: TestDatabase | null = null;
  let storageUrl = `sqlite:${join(dir, 'portcullis.db')}`;
  if (options.storage === 'postgres') {
    database = await createTestDatabase('pc_e2e');
    storageUrl = database.url;
  }
  const targetDatabase = options.targetAdminUrl ? await prepareTargetDatabase(options.targetAdminUrl) : null;
  writeFileSync(join(dir, 'kek'), randomBytes(32).toString('base64url'), { mode: 0o600 });

  const resources: object[] = [
    {
      id: 'demo-api',
      kind: 'token',
      sensitivity: 'low',
      owners: ['sre'],
      roles: [{ name: 'reader', grants: ['orders:read'] }, { name: 'operator' }],
    },
  ];
  if (options.targetAdminUrl && targetDatabase) {
    resources.push({
      id: 'demo-db',
      kind: 'postgres',
      sensitivity: 'high',
      owners: ['dba'],
      postgres: {
        admin_url: { env: 'E2E_TARGET_ADMIN_URL' },
        database: targetDatabase,
        connection_limit: options.targetConnectionLimit ?? 3,
        ...(options.targetGatewayOnly ? { gateway_only: true } : {}),
        ...(options.targetResourceAdmin
          ? { reassign_owned_to: options.targetResourceAdmin.reassignOwnedTo }
          : {}),
        ...options.targetPostgresOverrides,
      },
      roles: [
        { name: 'readonly', grants: ['app_readonly'] },
        { name: 'readwrite', grants: ['app_readwrite'] },
      ],
    });
  }
  const config = {
    server: { host: '127.0.0.1', port, public_url: url },
    storage: { url: { env: 'E2E_STORAGE_URL' } },
    time_zone: 'Europe/Berlin',
    identity_providers: [
      {
        id: 'demo',
        type: 'oidc',
        display_name: 'Demo',
        issuer: idp.issuer,
        client_id: idp.clientId,
        client_secret: { env: 'E2E_CLIENT_SECRET' },
        scopes: ['openid', 'profile', 'email', 'groups'],
        api_audiences: ['urn:portcullis:api'],
        ...options.demoIdpOverrides,
      },
      ...(options.extraIdentityProviders ?? []),
    ],
    resources,
    policies: { files: [options.policyFile ?? join(import.meta.dirname, 'policies', 'e2e.cedar')] },
    admins: ['admins'],
    tokens: { key_encryption_key: { file: join(dir, 'kek') }, ...options.tokenOverrides },
    ...(options.gateway
      ? {
          gateway: {
            port: 0,
            allow_plaintext_on_loopback: true,
            ...(typeof options.gateway === 'object' ? options.gateway : {}),
          },
        }
      : {}),
    ...options.configOverrides,
  };
  const configPath = join(dir, 'portcullis.yaml');
  writeFileSync(configPath, stringify(config));
  const env: Record<string, string> = {
    E2E_STORAGE_URL: storageUrl,
    E2E_CLIENT_SECRET: idp.clientSecret,
    ...(options.targetAdminUrl && targetDatabase
      ? {
          E2E_TARGET_ADMIN_URL: (() => {
            const u = new URL(options.targetAdminUrl);
            u.pathname = `/${targetDatabase}`;
            if (options.targetResourceAdmin) {
              u.username = options.targetResourceAdmin.user;
              u.password = options.targetResourceAdmin.password;
            }
            return u.toString();
          })(),
        }
      : {}),
  };
  const mode = options.mode ?? 'in-process';
  let child: ChildProcess | null = null;
  let portcullis: RunningPortcullis | null = null;
  const start = async () => {
    if (mode === 'in-process') {
      portcullis = await startPortcullis({
        configPath,
        env: { ...process.env, ...env },
        logLevel: 'silent',
        ...(options.clock ? { clock: options.clock } : {}),
      });
      return;
    }
    child = await spawnServer(configPath, { ...process.env, ...env, PORTCULLIS_LOG_LEVEL: 'warn' }, url);
  };
  const stop = async () => {
    if (portcullis) await portcullis.close();
    portcullis = null;
    if (child) await killChild(child, 'SIGTERM');
    child = null;
  };
  /** Everything but the server: the IdP, the PostgreSQL database, the directory. */
  const removeAll = async () => {
    await idp.stop().catch(() => {});
    await database?.drop().catch(() => {});
    if (options.targetAdminUrl && targetDatabase)
      await dropTargetDatabase(options.targetAdminUrl, targetDatabase);
    rmSync(dir, { recursive: true, force: true });
  };
  /** Starts the server; if it does not come up, nothing is left behind. */
  const startOrRemoveAll = async () => {
    try {
      await start();
    } catch (error) {
      await removeAll();
      throw error;
    }
  };
  await startOrRemoveAll();

  const api: Harness['api'] = async (token, method, path, body, headers = {}) => {
    const response = await fetch(`${url}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      parsed = { text };
    }
    return { status: response.status, body: parsed, contentType: response.headers.get('content-type') ?? '' };
  };

  const login = async (username: string): Promise<string> => {
    const user = idp.users.find((u) => u.username === username);
    if (!user) throw new Error(`no demo user ${username}`);
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const loopback = 'http://127.0.0.1:1/callback';
    const start = await fetch(
      `${url}/auth/oidc/demo/login?redirect_uri=${encodeURIComponent(loopback)}&code_challenge=${challenge}&code_challenge_method=S256&state=s1`,
      { redirect: 'manual' },
    );
    const authorizationUrl = start.headers.get('location');
    if (start.status !== 302 || !authorizationUrl) throw new Error(`login start answered ${start.status}`);
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const callback = await signInThroughBrowser(new URL(authorizationUrl), {
      username,
      password: user.password,
    });
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie } });
    const cliRedirect = finished.headers.get('location');
    if (finished.status !== 302 || !cliRedirect)
      throw new Error(`callback answered ${finished.status}: ${await finished.text()}`);
    const code = new URL(cliRedirect).searchParams.get('code');
    const exchanged = await api(null, 'POST', '/api/v1/auth/cli/token', {
      code,
      code_verifier: verifier,
      redirect_uri: loopback,
    });
    if (exchanged.status !== 200) throw new Error(`code exchange answered ${exchanged.status}`);
    return exchanged.body.session_token as string;
  };

  return {
    url,
    dir,
    configPath,
    env,
    get portcullis() {
      if (!portcullis) throw new Error('the server runs as a child process (or is stopped)');
      return portcullis;
    },
    get child() {
      return child;
    },
    async kill() {
      if (child) await killChild(child, 'SIGKILL');
      child = null;
    },
    idp,
    storageUrl,
    targetDatabase,
    login,
    api,
    async restart() {
      await stop();
      await startOrRemoveAll();
    },
    async close() {
      await stop().catch(() => {});
      await removeAll();
    },
  };
}
