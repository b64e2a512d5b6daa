/**
 * What the benchmark runs on and against: a description of the machine and the PostgreSQL
 * servers, the policy file it loads, and the PostgreSQL target the `postgres` provisioner works on.
 * Nothing here prints a URL with a password in it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loginRolePrefix } from '../src/provisioners/postgres-login-role.js';
import { sharedPostgresAdminUrl } from '../test-support/postgres.js';
import { startScramCluster } from '../test-support/scram-cluster.js';

/**
 * One approval from `sre` for both resources the benchmark uses: the token resource (throughput,
 * so provisioning costs nothing) and the PostgreSQL resource (approval latency, expiry lag).
 * Requesters are in `engineering` (demo user alice), approvers in `sre` (demo user bob).
 */
const benchPolicies = `
@id("bench-db-readonly")
@approvals("1")
@approver_groups("sre")
@max_duration("2h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-db/readonly"
);

@id("bench-api-operator")
@approvals("1")
@approver_groups("sre")
@max_duration("2h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/operator"
);

@id("bench-sre-approves")
permit (
  principal in Portcullis::Group::"sre",
  action == Portcullis::Action::"approve",
  resource
);
`;

export interface BenchScratch {
  readonly policyFile: string;
  remove(): void;
}

/** A temporary directory holding the benchmark's policy file. */
export function createScratch(): BenchScratch {
  const directory = mkdtempSync(join(os.tmpdir(), 'portcullis-bench-'));
  const policyFile = join(directory, 'bench.cedar');
  writeFileSync(policyFile, benchPolicies);
  return { policyFile, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

/** `host:port` of a connection URL: safe to print (no user, no password). */
export function hostOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '5432'}`;
}

export interface PostgresSettings {
  readonly version: string;
  readonly fsync: string;
  readonly synchronousCommit: string;
  readonly maxConnections: number;
}

export async function postgresSettings(adminUrl: string): Promise<PostgresSettings> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const { rows } = await client.query<{
      version: string;
      fsync: string;
      synchronous_commit: string;
      max_connections: string;
    }>(
      `select current_setting('server_version') as version, current_setting('fsync') as fsync,
              current_setting('synchronous_commit') as synchronous_commit,
              current_setting('max_connections') as max_connections`,
    );
    const row = rows[0];
    if (!row) throw new Error('PostgreSQL returned no settings');
    return {
      version: row.version,
      fsync: row.fsync,
      synchronousCommit: row.synchronous_commit,
      maxConnections: Number(row.max_connections),
    };
  } finally {
    await client.end();
  }
}

export interface MachineDescription {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  /** 1-minute load average when the run started: how busy the machine already was. */
  readonly loadAverage: number;
}

export function describeMachine(): MachineDescription {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

export type TargetKind = 'scram' | 'shared';

export interface BenchTarget {
  readonly kind: TargetKind;
  readonly adminUrl: string;
  /** For the printout: where and how clients authenticate. */
  readonly description: string;
  /** Removes what the benchmark made on the target (the database; the whole cluster for `scram`). */
  cleanup(targetDatabase: string | null): Promise<void>;
}

/**
 * `scram`: a throw-away scram-sha-256 cluster (the realistic authentication path: a client proves
 * the generated password; fsync is off there, as in the tests). `shared`: the machine's server at
 * PORTCULLIS_TEST_PG_URL / 127.0.0.1:5432, trust authentication (no password check), fsync as
 * configured.
 */
export async function startBenchTarget(kind: TargetKind): Promise<BenchTarget> {
  if (kind === 'scram') {
    const cluster = await startScramCluster();
    return {
      kind,
      adminUrl: cluster.adminUrl,
      description: `throw-away scram-sha-256 cluster at 127.0.0.1:${cluster.port} (initdb from the installed server)`,
      cleanup: () => cluster.stop(),
    };
  }
  return {
    kind,
    adminUrl: sharedPostgresAdminUrl,
    description: `shared server at ${hostOf(sharedPostgresAdminUrl)} (its own auth rules; trust on this machine)`,
    async cleanup(targetDatabase) {
      if (targetDatabase === null) return;
      const admin = new pg.Client({ connectionString: sharedPostgresAdminUrl });
      await admin.connect();
      try {
        // Logins are cluster-wide: after an interrupted run, drop those Portcullis made for this
        // run's own database (they hold CONNECT on it), and nothing else.
        const { rows } = await admin.query<{ rolname: string }>(
          `select r.rolname from pg_database d cross join lateral aclexplode(d.datacl) acl
             join pg_roles r on r.oid = acl.grantee
            where d.datname = $1 and starts_with(r.rolname, $2)`,
          [targetDatabase, loginRolePrefix],
        );
        await admin.query(`drop database if exists ${targetDatabase} with (force)`);
        for (const { rolname } of rows)
          await admin.query(`drop role if exists ${pg.escapeIdentifier(rolname)}`);
      } finally {
        await admin.end();
      }
    },
  };
}
