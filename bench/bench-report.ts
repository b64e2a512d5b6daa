/**
 * Prints each benchmark section as a small table next to its quality bar (PRODUCT.md). The bars
 * are shown for orientation only: nothing here fails a run, because the machine is shared and noisy.
 */

import type { ApprovalLatencyFigures } from './approval-latency-bench.js';
import type { MachineDescription, PostgresSettings } from './bench-environment.js';
import { formatMs, formatRatio, type LatencySummary, table } from './bench-support.js';
import type { ExpiryLagFigures } from './expiry-lag-bench.js';
import type { PolicyBenchFigures } from './policy-bench.js';
import type { ThroughputFigures } from './throughput-bench.js';

export function printSetup(
  machine: MachineDescription,
  storagePostgres: PostgresSettings | null,
  storageHost: string,
  sqliteFilesystem: string,
): void {
  const lines: [string, string][] = [
    ['node', `${machine.node} (${machine.platform})`],
    ['cpus', `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB memory`],
    ['load average (1 min) at start', String(machine.loadAverage)],
    [
      'PostgreSQL storage',
      storagePostgres
        ? `${storagePostgres.version} at ${storageHost}, fsync ${storagePostgres.fsync}, ` +
          `synchronous_commit ${storagePostgres.synchronousCommit}, max_connections ${storagePostgres.maxConnections}`
        : `unreachable at ${storageHost}`,
    ],
    ['SQLite storage', `a file in the temp directory (${sqliteFilesystem}), WAL, synchronous FULL`],
  ];
  const width = Math.max(...lines.map(([name]) => name.length));
  for (const [name, value] of lines) console.log(`  ${name.padEnd(width)}  ${value}`);
}

/** `within` / `OVER` against a bar, for the eye. */
export function verdict(value: number, bar: number): string {
  if (!Number.isFinite(value)) return '–';
  return value < bar ? 'within' : 'OVER';
}

function latencyRow(name: string, summary: LatencySummary, bar?: number): string[] {
  return [
    name,
    formatMs(summary.p50),
    formatMs(summary.p99),
    formatMs(summary.max),
    bar === undefined ? '' : `< ${formatMs(bar)}: ${verdict(summary.p99, bar)}`,
  ];
}

export function printPolicy(figures: PolicyBenchFigures): void {
  const cpu = figures as Partial<{ cpuP50Micros: number; cpuP99Micros: number }>;
  const micros = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(0)} µs`);
  console.log(
    `  ${figures.decisions} decisions over ${figures.policies} policies ` +
      `(${figures.slices} preparsed slices, at most ${figures.largestSlice} policies per decision)`,
  );
  console.log(
    table(
      ['', 'p50', 'p99', 'mean', 'bar: p99 < 1000 µs'],
      [
        [
          'wall clock',
          micros(figures.p50Micros),
          micros(figures.p99Micros),
          micros(figures.meanMicros),
          verdict(figures.p99Micros, 1000),
        ],
        [
          'CPU time',
          micros(cpu.cpuP50Micros),
          micros(cpu.cpuP99Micros),
          '',
          verdict(cpu.cpuP99Micros ?? Number.NaN, 1000),
        ],
      ],
    ),
  );
}

export function printApproval(figures: ApprovalLatencyFigures): void {
  console.log(
    table(
      ['step (over HTTP)', 'p50', 'p99', 'max', 'bar'],
      [
        latencyRow('approve sent → select 1 answered', figures.approveToUsable, 1000),
        latencyRow('  approve call (incl. provisioning)', figures.approveCall),
        latencyRow('  GET credentials', figures.credentialsCall),
        latencyRow('  connect + select 1 as the new login', figures.connectAndSelect),
        latencyRow('release call (login dropped)', figures.releaseCall),
      ],
    ),
  );
}

export function printExpiry(figures: ExpiryLagFigures): void {
  console.log(
    `  ${figures.grants} postgres grants, deadlines spread over ${figures.spreadSeconds} s starting ` +
      `${figures.leadSeconds} s after creation began; creation took ${figures.creationSeconds.toFixed(1)} s` +
      (figures.expiredDuringCreation > 0
        ? ` (${figures.expiredDuringCreation} deadlines passed while grants were still being created)`
        : ''),
  );
  console.log(
    table(
      ['lag after expires_at', 'p50', 'p99', 'max', 'bar'],
      [
        latencyRow('revoked_at (login gone in the target)', figures.revokedLag, 1000),
        latencyRow('marked expired by the loop (revocation starts)', figures.expiredLag),
      ],
    ),
  );
  const notRevoked = Object.entries(figures.notRevoked)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  console.log(
    `  late by more than 1 s: ${figures.lateOverOneSecond} of ${figures.grants}` +
      (notRevoked ? ` (not revoked when the wait ended: ${notRevoked})` : '') +
      `\n  logins still in the target: ${figures.loginsLeft}; held sessions still open: ` +
      `${figures.heldSessionsStillOpen} of ${figures.heldSessions}`,
  );
}

export interface ThroughputRow {
  readonly storage: 'sqlite' | 'postgres';
  readonly path: 'service' | 'http' | 'baseline';
  readonly figures: ThroughputFigures;
}

export function printThroughput(rows: readonly ThroughputRow[]): void {
  const find = (storage: string, path: string, workers: number) =>
    rows.find((r) => r.storage === storage && r.path === path && r.figures.workers === workers)?.figures;
  console.log(
    table(
      ['storage / path', 'workers', 'ops', 'ops/s', 'op p50', 'op p99', 'vs baseline', 'http/service'],
      rows.map(({ storage, path, figures }) => {
        const baseline = find(storage, 'baseline', figures.workers);
        const service = find(storage, 'service', figures.workers);
        return [
          `${storage} / ${path}`,
          String(figures.workers),
          String(figures.operations),
          figures.opsPerSecond.toFixed(0),
          formatMs(figures.latency.p50),
          formatMs(figures.latency.p99),
          path === 'baseline' || !baseline ? '' : formatRatio(figures.opsPerSecond / baseline.opsPerSecond),
          path === 'http' && service ? formatRatio(figures.opsPerSecond / service.opsPerSecond) : '',
        ];
      }),
    ),
  );
  const workerCounts = [...new Set(rows.map((r) => r.figures.workers))].sort((a, b) => a - b);
  const ratios = workerCounts.flatMap((workers) => {
    const line = (path: string) => {
      const sqlite = find('sqlite', path, workers);
      const postgres = find('postgres', path, workers);
      return sqlite && postgres
        ? `${path} ${formatRatio(postgres.opsPerSecond / sqlite.opsPerSecond)}`
        : null;
    };
    const parts = ['service', 'http', 'baseline'].map(line).filter((p): p is string => p !== null);
    return parts.length > 0 ? [`  PostgreSQL/SQLite at ${workers} worker(s): ${parts.join(', ')}`] : [];
  });
  if (ratios.length > 0) console.log(ratios.join('\n'));
  console.log(
    '  one op = one request + its approval, ending with an active grant: 2 API calls, 2 transactions ' +
      '(the token role activates with its approval), 4 hash-chained audit events',
  );
}
