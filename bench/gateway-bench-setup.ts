/**
 * The world the gateway benchmark runs in: a target PostgreSQL (a throw-away scram-sha-256
 * cluster, or the machine's shared server), a Portcullis in this process with its database gateway
 * on loopback and a `demo-db` resource on a fresh database initialised by `pgbench -i`, and a live
 * `demo-db/readwrite` grant for alice (approved by bob) with an access token and its login's
 * credentials. Everything is removed again by `close()` (also when given early through `onClose`).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { type Harness, startHarness } from '../test-support/portcullis-harness.js';
import { sharedPostgresAdminUrl } from '../test-support/postgres.js';
import { startScramCluster } from '../test-support/scram-cluster.js';
import {
  createSelfSignedCertificate,
  type SelfSignedCertificate,
} from '../test-support/self-signed-certificate.js';

const run = promisify(execFile);

/** alice (engineering) may ask for demo-db/readwrite; one approval from sre (bob). */
const benchPolicies = `
@id("gateway-bench-readwrite")
@approvals("1")
@approver_groups("sre")
@max_duration("8h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-db/readwrite"
);

@id("gateway-bench-approvers")
permit (
  principal in Portcullis::Group::"sre",
  action == Portcullis::Action::"approve",
  resource
);
`;

export interface SetupOptions {
  /** `scram` (a throw-away cluster, falling back to the shared server) or `shared`. */
  readonly targetKind: 'scram' | 'shared';
  readonly storage: 'sqlite' | 'postgres';
  readonly scale: number;
  /** Largest client count: sizes max_connections and the login's connection limit. */
  readonly maxClients: number;
  readonly recordParameters: boolean;
  /** Clients reach the gateway over TLS only (a throw-away self-signed certificate). */
  readonly clientTls: boolean;
  readonly pgbench: string;
  readonly log: (line: string) => void;
  /**
   * Called with the world's `close` before anything is created, so an interrupted setup can be
   * cleaned up too (it removes whatever exists by then).
   */
  readonly onClose?: (close: () => Promise<void>) => void;
}

export interface BenchWorld {
  /** Which PostgreSQL the runs hit, for the setup print (no password). */
  readonly targetDescription: string;
  /** How logins authenticate at the target: `SCRAM-SHA-256` or `trust` (the shared server). */
  readonly targetAuth: string;
  readonly serverVersion: string;
  readonly targetHost: string;
  readonly targetPort: number;
  readonly database: string;
  readonly harness: Harness;
  readonly gatewayPort: number;
  readonly principalId: string;
  readonly resourceId: string;
  readonly grantId: string;
  readonly token: string;
  readonly login: string;
  readonly loginPassword: string;
  /** The gateway's certificate when clients must use TLS (PgBouncer is given the same). */
  readonly clientTls: SelfSignedCertificate | undefined;
  /** Superuser connection to the benchmark database (vacuum between read/write cases). */
  readonly admin: pg.Client;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** libpq variables for a URL (the password through the environment, not the command line). */
export function libpqEnv(url: string): Record<string, string> {
  const parsed = new URL(url);
  return {
    PGHOST: parsed.hostname,
    PGPORT: parsed.port || '5432',
    PGUSER: decodeURIComponent(parsed.username),
    PGDATABASE: parsed.pathname.slice(1),
    PGSSLMODE: 'disable',
    ...(parsed.password ? { PGPASSWORD: decodeURIComponent(parsed.password) } : {}),
  };
}

async function expectStatus(
  answer: Promise<{ status: number; body: Record<string, unknown> }>,
  status: number,
  what: string,
): Promise<Record<string, unknown>> {
  const { status: got, body } = await answer;
  if (got !== status) throw new Error(`${what} answered ${got}: ${JSON.stringify(body)}`);
  return body;
}

export async function setUpWorld(options: SetupOptions): Promise<BenchWorld> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    cleanups.length = 0;
  };
  options.onClose?.(close);
  try {
    // Every case leaves its connections closed, but PgBouncer keeps idle server connections a while.
    const maxConnections = options.maxClients * 3 + 40;
    let adminUrl = sharedPostgresAdminUrl;
    let shared = true;
    let targetDescription = `the machine's shared server at ${new URL(sharedPostgresAdminUrl).host} (trust auth)`;
    if (options.targetKind === 'scram') {
      try {
        const cluster = await startScramCluster({ maxConnections });
        cleanups.push(() => cluster.stop());
        adminUrl = cluster.adminUrl;
        shared = false;
        targetDescription =
          `throw-away scram-sha-256 cluster (test-support/scram-cluster.ts) at 127.0.0.1:${cluster.port}, ` +
          `fsync off, synchronous_commit off, max_connections ${maxConnections}`;
      } catch (error) {
        options.log(`  the scram-sha-256 cluster did not start (${(error as Error).message.split('\n')[0]})`);
        options.log(`  falling back to ${targetDescription}`);
      }
    }

    const policyDir = mkdtempSync(join(tmpdir(), 'portcullis-gateway-bench-'));
    cleanups.push(() => rmSync(policyDir, { recursive: true, force: true }));
    const policyFile = join(policyDir, 'bench.cedar');
    writeFileSync(policyFile, benchPolicies);
    const clientTls = options.clientTls ? createSelfSignedCertificate(policyDir) : undefined;

    const harness = await startHarness({
      storage: options.storage,
      targetAdminUrl: adminUrl,
      policyFile,
      gateway: {
        record_parameters: options.recordParameters,
        ...(clientTls && {
          allow_plaintext_on_loopback: false,
          tls: { cert: clientTls.certFile, key: { file: clientTls.keyFile } },
        }),
      },
      targetConnectionLimit: options.maxClients * 3 + 10,
    });
    const database = harness.targetDatabase ?? '';
    // Runs after the harness is closed (cleanups run in reverse): a shared server keeps nothing of ours.
    let login: string | undefined;
    if (shared) cleanups.push(() => dropFromSharedServer(adminUrl, database, login));
    cleanups.push(() => harness.close());
    const gatewayPort = harness.portcullis.gateway?.port;
    if (!gatewayPort) throw new Error('the harness started without the gateway');

    options.log(`  pgbench -i -s ${options.scale} into ${database} …`);
    const databaseUrl = withDatabase(adminUrl, database);
    await run(options.pgbench, ['-i', '-q', '-s', String(options.scale)], {
      env: { PATH: process.env.PATH ?? '', ...libpqEnv(databaseUrl) },
    });
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    cleanups.push(() => admin.end());
    // Exactly what the TPC-B-like and select-only scripts need, for the group role readwrite maps to.
    await admin.query(`
      grant select, update on pgbench_accounts, pgbench_branches, pgbench_tellers to app_readwrite;
      grant select, insert on pgbench_history to app_readwrite;`);
    const { rows } = await admin.query<{ server_version: string }>('show server_version');
    const serverVersion = rows[0]?.server_version ?? '?';
    const limit = await admin.query<{ max_connections: string }>('show max_connections');
    const serverMax = Number(limit.rows[0]?.max_connections ?? 0);
    if (serverMax < options.maxClients * 2 + 10) {
      options.log(
        `  warning: the server allows ${serverMax} connections; ${options.maxClients} clients through ` +
          'PgBouncer and then the gateway may need about twice that (PgBouncer keeps idle ones for 10 s)',
      );
    }

    const alice = await harness.login('alice');
    const bob = await harness.login('bob');
    const created = await expectStatus(
      harness.api(alice, 'POST', '/api/v1/requests', {
        resource: 'demo-db',
        role: 'readwrite',
        duration: 4 * 3600,
        reason: 'gateway benchmark',
      }),
      201,
      'request',
    );
    const approved = await expectStatus(
      harness.api(bob, 'POST', `/api/v1/requests/${String(created.id)}/approve`, {}),
      200,
      'approve',
    );
    const grantId = String(approved.grant_id);
    const issued = await expectStatus(
      harness.api(alice, 'POST', `/api/v1/grants/${grantId}/token`),
      200,
      'token',
    );
    const shown = await expectStatus(
      harness.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`),
      200,
      'credentials',
    );
    const credentials = shown.credentials as Record<string, string>;
    login = credentials.username;
    const target = new URL(adminUrl);
    return {
      targetDescription,
      targetAuth: shared ? 'trust: the password is not checked' : 'SCRAM-SHA-256',
      serverVersion,
      targetHost: target.hostname,
      targetPort: Number(target.port || '5432'),
      database,
      harness,
      gatewayPort,
      principalId: 'demo:alice',
      resourceId: 'demo-db',
      grantId,
      token: String(issued.access_token),
      login: login ?? '',
      loginPassword: credentials.password ?? '',
      clientTls,
      admin,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** What pgbench's default script does before a run, as the superuser (the grant's login may not). */
export async function resetTpcb(admin: pg.Client): Promise<void> {
  await admin.query('vacuum pgbench_branches');
  await admin.query('vacuum pgbench_tellers');
  await admin.query('truncate pgbench_history');
}

/** Drops the benchmark's database and the grant's login (shared server only). */
async function dropFromSharedServer(
  adminUrl: string,
  database: string,
  login: string | undefined,
): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${database}" with (force)`);
    if (login) await admin.query(`drop role if exists "${login.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}
