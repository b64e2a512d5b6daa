/**
 * `portcullis dev` / `npm start`: Portcullis on SQLite with a built-in demo OpenID Connect provider,
 * demo users, demo policies and demo resources — and a real PostgreSQL resource when a local
 * server is reachable. Everything lives in `.portcullis/demo/` (mode 0700). Demo only: the users
 * and passwords are public.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startDemoIdentityProvider } from '../identity/demo-identity-provider.js';
import { GuardedClient } from '../postgres/guarded-client.js';
import { type RunningPortcullis, startPortcullis } from './start.js';

export interface DemoOptions {
  readonly port?: number;
  readonly idpPort?: number;
  readonly dataDir?: string;
  /** PostgreSQL for the demo-db resource; default the local server. Set to null to skip it. */
  readonly postgresAdminUrl?: string | null;
  readonly log?: (line: string) => void;
}

export interface RunningDemo {
  readonly url: string;
  readonly idpIssuer: string;
  readonly postgres: boolean;
  readonly portcullis: RunningPortcullis;
  close(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const demoPolicyDir = join(repoRoot, 'examples', 'demo', 'policies');
export const demoUsers = [
  { username: 'alice', password: 'alice-demo-password', groups: ['engineering'], role: 'requester' },
  { username: 'bob', password: 'bob-demo-password', groups: ['sre'], role: 'approver' },
  { username: 'carol', password: 'carol-demo-password', groups: ['dba'], role: 'approver, owner of demo-db' },
  { username: 'dave', password: 'dave-demo-password', groups: ['admins'], role: 'admin' },
] as const;

function secretFile(path: string, make: () => string): string {
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600 });
  chmodSync(path, 0o600);
  return readFileSync(path, 'utf8').trim();
}

/** Creates the demo database and its two group roles on a reachable PostgreSQL; false if none. */
async function prepareDemoDatabase(adminUrl: string): Promise<string | null> {
  const admin = new GuardedClient({
    connectionString: adminUrl,
    urlSource: 'the demo admin URL',
    connectionTimeoutMillis: 2000,
  });
  try {
    await admin.connect();
  } catch {
    return null;
  }
  try {
    const exists = await admin.query("select 1 from pg_database where datname = 'portcullis_demo'");
    if (exists.rowCount === 0) await admin.query('create database portcullis_demo');
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = '/portcullis_demo';
  const demo = new GuardedClient({ connectionString: url.toString(), urlSource: 'the demo admin URL' });
  await demo.connect();
  try {
    await demo.query(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'pc_demo_readonly') then create role pc_demo_readonly nologin; end if;
        if not exists (select 1 from pg_roles where rolname = 'pc_demo_readwrite') then create role pc_demo_readwrite nologin; end if;
      end $$;
      create table if not exists orders (id serial primary key, item text not null, placed_at timestamptz not null default now());
      insert into orders (item) select 'demo order ' || g from generate_series(1, 3) g where not exists (select 1 from orders);
      grant usage on schema public to pc_demo_readonly, pc_demo_readwrite;
      grant select on orders to pc_demo_readonly;
      grant select, insert, update, delete on orders to pc_demo_readwrite;
      grant usage on sequence orders_id_seq to pc_demo_readwrite;
    `);
  } finally {
    await demo.end();
  }
  return url.toString();
}

export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const port = options.port ?? 8080;
  const idpPort = options.idpPort ?? port + 1;
  const dataDir = resolve(options.dataDir ?? '.portcullis/demo');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const publicUrl = `http://127.0.0.1:${port}`;

  secretFile(join(dataDir, 'key-encryption-key'), () => randomBytes(32).toString('base64url'));
  // The certificate authority demo SSH hosts would trust (made once, kept with the demo's data).
  secretFile(join(dataDir, 'ssh-ca.pem'), () =>
    generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  );
  const idp = await startDemoIdentityProvider({
    port: idpPort,
    redirectUris: [`${publicUrl}/auth/oidc/demo/callback`],
    apiAudience: 'urn:portcullis:api',
  });

  const pgAdminUrl =
    options.postgresAdminUrl === null
      ? null
      : await prepareDemoDatabase(options.postgresAdminUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres');

  const resources: object[] = [
    {
      id: 'demo-api',
      kind: 'token',
      description: 'A demo HTTP service that accepts Portcullis access tokens',
      sensitivity: 'low',
      owners: ['sre'],
      roles: [
        { name: 'reader', description: 'Read-only API scopes', grants: ['orders:read'] },
        { name: 'operator', description: 'Operate the service', grants: ['orders:read', 'orders:write'] },
      ],
    },
    {
      id: 'demo-hosts',
      kind: 'ssh',
      description: 'Demo SSH hosts: they trust Portcullis as their user certificate authority',
      sensitivity: 'high',
      owners: ['sre'],
      ssh: { ca_key: { file: join(dataDir, 'ssh-ca.pem') }, host: '127.0.0.1', extensions: ['permit-pty'] },
      roles: [{ name: 'ops', description: 'Log in as ops for a while', grants: ['ops'] }],
    },
  ];
  if (pgAdminUrl) {
    resources.push({
      id: 'demo-db',
      kind: 'postgres',
      description: 'The demo PostgreSQL database (table orders)',
      sensitivity: 'high',
      owners: ['dba'],
      postgres: {
        admin_url: { env: 'PORTCULLIS_DEMO_PG_ADMIN_URL' },
        database: 'portcullis_demo',
        connection_limit: 3,
      },
      roles: [
        { name: 'readonly', description: 'SELECT on orders', grants: ['pc_demo_readonly'] },
        { name: 'readwrite', description: 'Read and write orders', grants: ['pc_demo_readwrite'] },
      ],
    });
  }
  const config = {
    server: { host: '127.0.0.1', port, public_url: publicUrl },
    storage: { url: `sqlite:${join(dataDir, 'portcullis.db')}` },
    time_zone: 'UTC',
    identity_providers: [
      {
        id: 'demo',
        type: 'oidc',
        display_name: 'Demo identity provider (built in)',
        issuer: idp.issuer,
        client_id: idp.clientId,
        client_secret: { env: 'PORTCULLIS_DEMO_CLIENT_SECRET' },
        scopes: ['openid', 'profile', 'email', 'groups'],
        api_audiences: ['urn:portcullis:api'],
      },
    ],
    resources,
    policies: { files: [join(demoPolicyDir, 'access.cedar')] },
    admins: ['admins'],
    tokens: { key_encryption_key: { file: join(dataDir, 'key-encryption-key') } },
    // The database gateway next to the API; plaintext tokens only from this machine (demo only).
    gateway: { host: '127.0.0.1', port: port + 2, allow_plaintext_on_loopback: true },
  };
  const configPath = join(dataDir, 'portcullis.yaml');
  writeFileSync(
    configPath,
    `# Generated by \`portcullis dev\`; edit freely, it is rewritten at the next start.\n${stringify(config)}`,
    {
      mode: 0o600,
    },
  );

  let portcullis: RunningPortcullis;
  try {
    portcullis = await startPortcullis({
      configPath,
      env: {
        ...process.env,
        PORTCULLIS_DEMO_CLIENT_SECRET: idp.clientSecret,
        ...(pgAdminUrl ? { PORTCULLIS_DEMO_PG_ADMIN_URL: pgAdminUrl } : {}),
      },
      quiet: true,
      // The banner says what matters; request logs would bury it. PORTCULLIS_LOG_LEVEL=info shows them.
      logLevel: process.env.PORTCULLIS_LOG_LEVEL ?? 'warn',
    });
  } catch (error) {
    await idp.stop();
    throw error;
  }

  const users = demoUsers.map(
    (u) =>
      `    ${u.username.padEnd(6)} ${u.password.padEnd(22)} groups: ${u.groups.join(',').padEnd(12)} (${u.role})`,
  );
  log(
    [
      '',
      `Portcullis demo is running at ${publicUrl}  (SQLite: ${join(dataDir, 'portcullis.db')})`,
      `Demo identity provider: ${idp.issuer}`,
      pgAdminUrl
        ? 'PostgreSQL found on 127.0.0.1:5432: resource demo-db (roles readonly, readwrite) is real.'
        : 'No PostgreSQL on 127.0.0.1:5432: only the token resource demo-api is offered.',
      `SSH resource demo-hosts (role ops): a host trusts ${publicUrl}/ssh/demo-hosts/ca.pub (sshd TrustedUserCAKeys).`,
      '',
      'Demo users (demo only; passwords are public):',
      ...users,
      '',
      `In a browser: ${publicUrl}/console  (sign in as alice to ask, as bob to approve)`,
      '',
      'In another terminal (see README "Five-minute tour"):',
      `  export PORTCULLIS_SERVER=${publicUrl}`,
      '  echo alice-demo-password | npx portcullis login --profile alice --username alice --password-stdin',
      '  echo bob-demo-password   | npx portcullis login --profile bob --username bob --password-stdin',
      pgAdminUrl
        ? '  npx portcullis request demo-db readonly --for 2m --reason "look at orders" --profile alice'
        : '  npx portcullis request demo-api reader --for 2m --reason "try it" --profile alice',
      '  npx portcullis requests --reviewable --profile bob',
      '  npx portcullis approve <REQUEST-ID> --profile bob',
      '  npx portcullis grants --profile alice',
      pgAdminUrl
        ? '  psql "$(npx portcullis creds <GRANT-ID> --profile alice)" -c "select * from orders"'
        : '  npx portcullis token <GRANT-ID> --profile alice',
      ...(pgAdminUrl
        ? [
            `  # or through the database gateway on 127.0.0.1:${port + 2}, every statement recorded:`,
            `  PGPASSWORD="$(npx portcullis token <GRANT-ID> --profile alice)" psql "host=127.0.0.1 port=${port + 2} user=<GRANT-ID> dbname=demo-db" -c "select * from orders"`,
          ]
        : []),
      '  … and two minutes later the access is gone on its own.',
      '',
    ].join('\n'),
  );

  return {
    url: publicUrl,
    idpIssuer: idp.issuer,
    postgres: pgAdminUrl !== null,
    portcullis,
    async close() {
      await portcullis.close();
      await idp.stop();
    },
  };
}
