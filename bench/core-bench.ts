/**
 * `npm run bench`: the quality bars of PRODUCT.md measured on this machine, each section printed
 * with the setup it used, then one JSON line with every figure (the last line of the output).
 *
 * 1. policy decision latency (bench/policy-bench.ts, 100 generated policies);
 * 2. approval → usable access for the `postgres` provisioner, through the HTTP API;
 * 3. expiry → revoked lag over at least 200 `postgres` grants ended by the real expiry loop;
 * 4. request + approve operations per second on SQLite and PostgreSQL storage, at the service and
 *    over HTTP, next to a bare INSERT + UPDATE baseline on the same database.
 *
 * Sizes and choices come from PORTCULLIS_BENCH_* variables (see docs/benchmarks.md). Everything it
 * creates (databases, the throw-away cluster, temporary directories, logins) is removed at the end,
 * also on Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import v8 from 'node:v8';
import type { Harness } from '../test-support/portcullis-harness.js';
import { startHarness } from '../test-support/portcullis-harness.js';
import { postgresReachable, sharedPostgresAdminUrl } from '../test-support/postgres.js';
import { type ApprovalLatencyFigures, runApprovalLatencyBench } from './approval-latency-bench.js';
import {
  createScratch,
  describeMachine,
  hostOf,
  type PostgresSettings,
  postgresSettings,
  startBenchTarget,
  type TargetKind,
} from './bench-environment.js';
import {
  printApproval,
  printExpiry,
  printPolicy,
  printSetup,
  printThroughput,
  type ThroughputRow,
} from './bench-report.js';
import {
  envChoice,
  envInteger,
  envIntegerList,
  heading,
  type LatencySummary,
  round,
} from './bench-support.js';
import { type ExpiryLagFigures, runExpiryLagBench } from './expiry-lag-bench.js';
import { type PolicyBenchFigures, runPolicyBench } from './policy-bench.js';
import {
  runHttpThroughput,
  runPostgresBaseline,
  runServiceThroughput,
  runSqliteBaseline,
} from './throughput-bench.js';

const allSections = ['policy', 'approval', 'expiry', 'throughput'] as const;
type Section = (typeof allSections)[number];

const settings = {
  sections: (process.env.PORTCULLIS_BENCH_SECTIONS ?? allSections.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '') as Section[],
  policyDecisions: envInteger('PORTCULLIS_BENCH_POLICY_DECISIONS', 10_000),
  target: envChoice<TargetKind>('PORTCULLIS_BENCH_TARGET', ['scram', 'shared'], 'scram'),
  latencyStorage: envChoice('PORTCULLIS_BENCH_STORAGE', ['postgres', 'sqlite'] as const, 'postgres'),
  approvalSamples: envInteger('PORTCULLIS_BENCH_APPROVAL_SAMPLES', 50),
  expiryGrants: envInteger('PORTCULLIS_BENCH_EXPIRY_GRANTS', 200),
  expirySpreadSeconds: envInteger('PORTCULLIS_BENCH_EXPIRY_SPREAD_S', 5),
  expiryLeadSeconds: envInteger('PORTCULLIS_BENCH_EXPIRY_LEAD_S', 0, 0),
  expiryHeldSessions: envInteger('PORTCULLIS_BENCH_EXPIRY_SESSIONS', 20, 0),
  serviceOps: envInteger('PORTCULLIS_BENCH_SERVICE_OPS', 2000),
  httpOps: envInteger('PORTCULLIS_BENCH_HTTP_OPS', 400),
  runSeconds: envInteger('PORTCULLIS_BENCH_RUN_SECONDS', 12),
  workers: envIntegerList('PORTCULLIS_BENCH_WORKERS', [1, 8]),
  throughputStorages: (process.env.PORTCULLIS_BENCH_THROUGHPUT_STORAGES ?? 'sqlite,postgres')
    .split(',')
    .map((s) => s.trim()) as ('sqlite' | 'postgres')[],
};
for (const section of settings.sections)
  if (!(allSections as readonly string[]).includes(section))
    throw new Error(`PORTCULLIS_BENCH_SECTIONS: unknown section ${JSON.stringify(section)}`);
for (const storage of settings.throughputStorages)
  if (storage !== 'sqlite' && storage !== 'postgres')
    throw new Error(`PORTCULLIS_BENCH_THROUGHPUT_STORAGES: unknown storage ${JSON.stringify(storage)}`);
/**
 * Node 20's V8 (11.3) aborts the process now and then ("Fatal error … unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when TurboFan code that inlined a JS→Wasm call — the
 * cedar-wasm call in CedarPolicyEngine.evaluate — is deoptimised lazily. Under the throughput load
 * most runs crashed; with JS→Wasm inlining off none did. Set before any policy code is optimised.
 * PORTCULLIS_BENCH_V8_WORKAROUND=0 runs without it (to reproduce the crash).
 */
const v8Workaround = process.env.PORTCULLIS_BENCH_V8_WORKAROUND !== '0';
if (v8Workaround) v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');

// Creating a postgres grant takes 10–50 ms here (4 at a time); leave room so deadlines fall after creation.
const expiryLeadSeconds = settings.expiryLeadSeconds || Math.ceil(5 + settings.expiryGrants * 0.06);

// ---------------------------------------------------------------- cleanup, also on Ctrl-C

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> = Promise.resolve();
/**
 * Runs the cleanups registered after the first `keep`, newest first. Calls queue behind each other,
 * so Ctrl-C exits only after a cleanup the main flow already started has finished too.
 */
function cleanUp(keep = 0): Promise<void> {
  cleaning = cleaning.then(async () => {
    while (cleanups.length > keep) {
      const cleanup = cleanups.pop() as () => Promise<void>;
      await cleanup().catch((error) => console.error(`cleanup failed: ${(error as Error).message}`));
    }
  });
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up…`);
    void cleanUp().finally(() => process.exit(130));
  });
}

function latencyJson(summary: LatencySummary) {
  return {
    count: summary.count,
    p50_ms: round(summary.p50),
    p99_ms: round(summary.p99),
    max_ms: round(summary.max),
  };
}

/** The file system SQLite writes to (`findmnt`, Linux), since fsync cost depends on it. */
function sqliteFilesystem(): string {
  try {
    const type = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', tmpdir()], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return `${tmpdir()} on ${type}`;
  } catch {
    return tmpdir();
  }
}

async function signIn(h: Harness): Promise<{ requester: string; approver: string }> {
  return { requester: await h.login('alice'), approver: await h.login('bob') };
}

// ---------------------------------------------------------------- the run

const startedAt = new Date();
const machine = describeMachine();
const postgresUp = await postgresReachable();
const storagePostgres: PostgresSettings | null = postgresUp
  ? await postgresSettings(sharedPostgresAdminUrl)
  : null;
const summary: Record<string, unknown> = {
  bench: 'portcullis-core',
  date: startedAt.toISOString(),
  setup: {
    node: machine.node,
    v8_flags: v8Workaround ? ['--no-turbo-inline-js-wasm-calls'] : [],
    platform: machine.platform,
    cpus: machine.cpus,
    cpu_model: machine.cpuModel,
    memory_gib: machine.memoryGiB,
    load_average_at_start: machine.loadAverage,
    postgres_storage: storagePostgres && {
      version: storagePostgres.version,
      host: hostOf(sharedPostgresAdminUrl),
      fsync: storagePostgres.fsync,
      synchronous_commit: storagePostgres.synchronousCommit,
    },
    sqlite_storage: sqliteFilesystem(),
  },
};

heading(`Portcullis core benchmark — ${startedAt.toISOString()}`);
printSetup(machine, storagePostgres, hostOf(sharedPostgresAdminUrl), sqliteFilesystem());
console.log(
  v8Workaround
    ? '  V8 flags                       --no-turbo-inline-js-wasm-calls (works around a V8 abort; see docs/benchmarks.md)'
    : '  V8 flags                       none (PORTCULLIS_BENCH_V8_WORKAROUND=0: the process may abort under load)',
);
const needsPostgres =
  settings.sections.some((s) => s === 'approval' || s === 'expiry') ||
  (settings.sections.includes('throughput') && settings.throughputStorages.includes('postgres'));
if (needsPostgres && !postgresUp)
  throw new Error(
    `PostgreSQL at ${hostOf(sharedPostgresAdminUrl)} is unreachable: start it, set PORTCULLIS_TEST_PG_URL, ` +
      'or limit PORTCULLIS_BENCH_SECTIONS / PORTCULLIS_BENCH_THROUGHPUT_STORAGES',
  );

const scratch = createScratch();
cleanups.push(async () => scratch.remove());

try {
  if (settings.sections.includes('policy')) {
    heading('1. Policy decision latency (in process, CedarPolicyEngine)');
    const figures: PolicyBenchFigures = runPolicyBench({ decisions: settings.policyDecisions });
    printPolicy(figures);
    const cpu = figures as Partial<{ cpuP50Micros: number; cpuP99Micros: number }>;
    summary.policy = {
      policies: figures.policies,
      decisions: figures.decisions,
      p50_us: round(figures.p50Micros),
      p99_us: round(figures.p99Micros),
      mean_us: round(figures.meanMicros),
      cpu_p50_us: cpu.cpuP50Micros === undefined ? null : round(cpu.cpuP50Micros),
      cpu_p99_us: cpu.cpuP99Micros === undefined ? null : round(cpu.cpuP99Micros),
    };
  }

  if (settings.sections.includes('approval') || settings.sections.includes('expiry')) {
    const keep = cleanups.length;
    const target = await startBenchTarget(settings.target);
    let targetDatabase: string | null = null;
    cleanups.push(() => target.cleanup(targetDatabase));
    const targetSettings = await postgresSettings(target.adminUrl);
    const h = await startHarness({
      storage: settings.latencyStorage,
      targetAdminUrl: target.adminUrl,
      policyFile: scratch.policyFile,
    });
    targetDatabase = h.targetDatabase;
    cleanups.push(() => h.close());
    const setup = {
      storage: settings.latencyStorage,
      target: target.kind,
      target_postgres: targetSettings.version,
      target_fsync: targetSettings.fsync,
    };
    const setupLine =
      `  storage ${settings.latencyStorage}; target: ${target.description}, PostgreSQL ${targetSettings.version}, ` +
      `fsync ${targetSettings.fsync}; demo-db resource, connection_limit 3, provisioner pool 2`;

    if (settings.sections.includes('approval')) {
      heading('2. Approval → usable access (postgres provisioner, HTTP API, real session tokens)');
      console.log(setupLine);
      console.log(
        `  ${settings.approvalSamples} samples, one at a time, after 3 uncounted warm-up ones; ` +
          'each grant is released after its sample',
      );
      const tokens = await signIn(h);
      const figures: ApprovalLatencyFigures = await runApprovalLatencyBench({
        harness: h,
        requesterToken: tokens.requester,
        approverToken: tokens.approver,
        samples: settings.approvalSamples,
        warmup: 3, // first connections and JIT; not counted
      });
      printApproval(figures);
      summary.approval = {
        ...setup,
        samples: figures.samples,
        approve_to_usable: latencyJson(figures.approveToUsable),
        approve_call: latencyJson(figures.approveCall),
        credentials_call: latencyJson(figures.credentialsCall),
        connect_select: latencyJson(figures.connectAndSelect),
        release_call: latencyJson(figures.releaseCall),
      };
    }

    if (settings.sections.includes('expiry')) {
      heading('3. Expiry → revoked lag (postgres grants, the real expiry loop, 1 s safety poll)');
      console.log(setupLine);
      const figures: ExpiryLagFigures = await runExpiryLagBench({
        portcullis: h.portcullis,
        targetAdminUrl: target.adminUrl,
        grants: settings.expiryGrants,
        spreadSeconds: settings.expirySpreadSeconds,
        leadSeconds: expiryLeadSeconds,
        creators: 4,
        heldSessions: settings.expiryHeldSessions,
        graceSeconds: 60,
      });
      printExpiry(figures);
      summary.expiry = {
        ...setup,
        grants: figures.grants,
        spread_s: figures.spreadSeconds,
        lead_s: figures.leadSeconds,
        creation_s: round(figures.creationSeconds),
        expired_during_creation: figures.expiredDuringCreation,
        revoked_lag: latencyJson(figures.revokedLag),
        expired_lag: latencyJson(figures.expiredLag),
        late_over_1s: figures.lateOverOneSecond,
        not_revoked: figures.notRevoked,
        logins_left: figures.loginsLeft,
        held_sessions: figures.heldSessions,
        held_sessions_still_open: figures.heldSessionsStillOpen,
      };
    }
    await cleanUp(keep);
  }

  if (settings.sections.includes('throughput')) {
    heading('4. Request + approve throughput (token resource, one approval)');
    console.log(
      `  service: up to ${settings.serviceOps} ops per run; http: up to ${settings.httpOps} ops per run (client in ` +
        `the same process); baseline: bare INSERT + UPDATE of a request row on the same database, up to ` +
        `${settings.serviceOps} ops; each run stops starting ops after ${settings.runSeconds} s; ` +
        `workers ${settings.workers.join(', ')}`,
    );
    const rows: ThroughputRow[] = [];
    for (const storage of settings.throughputStorages) {
      const keep = cleanups.length;
      const h = await startHarness({ storage, policyFile: scratch.policyFile });
      cleanups.push(() => h.close());
      const tokens = await signIn(h);
      for (const workers of settings.workers) {
        const serviceOptions = {
          workers,
          operations: settings.serviceOps,
          maxSeconds: settings.runSeconds,
          warmup: Math.min(100, settings.serviceOps),
        };
        const httpOptions = {
          workers,
          operations: settings.httpOps,
          maxSeconds: settings.runSeconds,
          warmup: Math.min(50, settings.httpOps),
        };
        rows.push({
          storage,
          path: 'baseline',
          figures: await (storage === 'postgres'
            ? runPostgresBaseline(h.storageUrl, serviceOptions)
            : runSqliteBaseline(h.storageUrl.replace(/^sqlite:/, ''), serviceOptions)),
        });
        rows.push({
          storage,
          path: 'service',
          figures: await runServiceThroughput(h.portcullis, serviceOptions),
        });
        rows.push({ storage, path: 'http', figures: await runHttpThroughput(h, tokens, httpOptions) });
      }
      await cleanUp(keep);
    }
    printThroughput(rows);
    summary.throughput = rows.map(({ storage, path, figures }) => ({
      storage,
      path,
      workers: figures.workers,
      operations: figures.operations,
      ops_per_s: round(figures.opsPerSecond),
      op_p50_ms: round(figures.latency.p50),
      op_p99_ms: round(figures.latency.p99),
    }));
    const ops = (storage: string, path: string, workers: number) =>
      rows.find((r) => r.storage === storage && r.path === path && r.figures.workers === workers)?.figures
        .opsPerSecond ?? Number.NaN;
    summary.throughput_ratios = Object.fromEntries(
      settings.workers.map((w) => [
        `workers_${w}`,
        {
          postgres_over_sqlite_service: round(ops('postgres', 'service', w) / ops('sqlite', 'service', w), 3),
          http_over_service_sqlite: round(ops('sqlite', 'http', w) / ops('sqlite', 'service', w), 3),
          http_over_service_postgres: round(ops('postgres', 'http', w) / ops('postgres', 'service', w), 3),
          service_over_baseline_sqlite: round(ops('sqlite', 'service', w) / ops('sqlite', 'baseline', w), 3),
          service_over_baseline_postgres: round(
            ops('postgres', 'service', w) / ops('postgres', 'baseline', w),
            3,
          ),
        },
      ]),
    );
  }
} finally {
  await cleanUp();
}

summary.duration_s = round((Date.now() - startedAt.getTime()) / 1000);
summary.load_average_at_end = describeMachine().loadAverage;
heading(`done in ${summary.duration_s} s; load average (1 min) now ${summary.load_average_at_end}`);
console.log(
  JSON.stringify(summary, (_key, value) =>
    typeof value === 'number' && !Number.isFinite(value) ? null : value,
  ),
);
