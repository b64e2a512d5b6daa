/**
 * Runs `pgbench` for the gateway benchmark and reads its summary: transactions, TPS (without the
 * initial connection time) and average latency. A run that reports failed or aborted clients is an
 * error, not a figure. Meanwhile the CPU time of the proxy under test is measured (this process for
 * the gateway and the in-process byte pipe, /proc/<pid>/stat for PgBouncer).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export type BenchScript = 'select' | 'tpcb';

export interface PgbenchRun {
  readonly script: BenchScript;
  readonly clients: number;
  readonly threads: number;
  readonly seconds: number;
  /** `-M`: simple, extended or prepared. */
  readonly protocol: string;
  /** libpq variables: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, … */
  readonly env: Readonly<Record<string, string>>;
}

export interface PgbenchFigures {
  readonly transactions: number;
  readonly tps: number;
  readonly latencyMs: number;
}

/** Children still running, so Ctrl-C can end them. */
const running = new Set<ChildProcess>();

export function killRunningPgbench(): void {
  for (const child of running) child.kill('SIGKILL');
}

export function pgbenchArgs(run: PgbenchRun): string[] {
  return [
    '-n', // no vacuum: the grant's login does not own the tables (the bench vacuums as the superuser)
    ...(run.script === 'select' ? ['-S'] : []),
    '-M',
    run.protocol,
    '-c',
    String(run.clients),
    '-j',
    String(run.threads),
    '-T',
    String(run.seconds),
  ];
}

/** Parses pgbench's summary (PostgreSQL 13–17 wording). */
export function parsePgbench(output: string): PgbenchFigures {
  const number = (pattern: RegExp, what: string): number => {
    const match = pattern.exec(output);
    if (!match?.[1]) throw new Error(`pgbench printed no ${what}:\n${output}`);
    return Number(match[1]);
  };
  const failed = /number of failed transactions: (\d+)/.exec(output);
  if (failed?.[1] && Number(failed[1]) > 0)
    throw new Error(`pgbench reported failed transactions:\n${output}`);
  return {
    transactions: number(/number of transactions actually processed: (\d+)/, 'transaction count'),
    tps: number(
      /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/,
      'tps',
    ),
    latencyMs: number(/latency average = ([\d.]+) ms/, 'average latency'),
  };
}

export async function runPgbench(binary: string, run: PgbenchRun): Promise<PgbenchFigures> {
  const args = pgbenchArgs(run);
  const child = spawn(binary, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...run.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(() => running.delete(child));
  if (code !== 0) {
    throw new Error(`pgbench ${args.join(' ')} exited with ${code}:\n${stderr.trim()}\n${stdout.trim()}`);
  }
  return parsePgbench(stdout);
}

/** CPU seconds (user + system) of a process, from /proc; undefined when it cannot be read. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces), numbered from 3 = state.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Where the proxy under test burns its CPU. */
export type CpuProbe = { readonly kind: 'self' } | { readonly kind: 'pid'; readonly pid: number } | null;

export interface CpuReading {
  /** CPU seconds the proxy used during the run. */
  readonly cpuSeconds: number;
  /** Event-loop utilisation of this process during the run (gateway and pipe only). */
  readonly eventLoopUtilization: number | undefined;
}

/** Starts measuring; the returned function ends the measurement. */
export function startCpuProbe(probe: CpuProbe): () => CpuReading | undefined {
  if (probe === null) return () => undefined;
  if (probe.kind === 'self') {
    const cpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization();
    return () => {
      const used = process.cpuUsage(cpu);
      return {
        cpuSeconds: (used.user + used.system) / 1e6,
        eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      };
    };
  }
  const before = processCpuSeconds(probe.pid);
  return () => {
    const after = processCpuSeconds(probe.pid);
    if (before === undefined || after === undefined) return undefined;
    return { cpuSeconds: after - before, eventLoopUtilization: undefined };
  };
}
