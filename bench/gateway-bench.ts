/**
 * `npm run bench:gateway`: pgbench through the Portcullis database gateway, directly to PostgreSQL
 * and through PgBouncer, in the same run with the same client counts, and the ratios
 * gateway/direct and gateway/PgBouncer. Not a test: nothing here fails on a figure. See the
 * "Gateway" section of docs/benchmarks.md for what it sets up and how to read it.
 *
 * Cases: `pgbench -S` (select-only) and the default TPC-B-like read/write script, each at 1, 8 and
 * 64 clients, `-M simple`, a fixed time each. A warm-up first; then rounds in which the targets of
 * one case run back to back in a rotating order (so drift and noise from the shared machine hit all
 * of them alike); the median of the rounds is reported. The read/write tables are vacuumed and the
 * history truncated (as the superuser) before every read/write run, as pgbench itself would.
 *
 * Environment (all optional):
 *   GATEWAY_BENCH_SECONDS           seconds per run (default 5)
 *   GATEWAY_BENCH_WARMUP_SECONDS    seconds of warm-up per script and target, at 8 clients (default 3; 0 = none)
 *   GATEWAY_BENCH_ROUNDS            rounds; the median is reported (default 3)
 *   GATEWAY_BENCH_CLIENTS           client counts (default 1,8,64)
 *   GATEWAY_BENCH_THREADS           pgbench -j (default: min(clients, CPU cores))
 *   GATEWAY_BENCH_SCRIPTS           select,tpcb (default both)
 *   GATEWAY_BENCH_TARGETS           gateway,direct,pgbouncer,pipe (default; `pipe` is a plain Node byte pipe,
 *                                   the floor of a Node proxy); diagnostic extra: `gateway-norec` (a second
 *                                   gateway whose statement records are dropped: the relay's cost without
 *                                   the recording's)
 *   GATEWAY_BENCH_SCALE             pgbench -i -s (default 10)
 *   GATEWAY_BENCH_PROTOCOL          pgbench -M (default simple)
 *   GATEWAY_BENCH_TARGET_PG         scram (throw-away SCRAM cluster, default; falls back to the shared server) | shared
 *   GATEWAY_BENCH_STORAGE           Portcullis storage: sqlite (default) | postgres (the shared server)
 *   GATEWAY_BENCH_RECORD_PARAMETERS gateway.record_parameters (default false)
 *   GATEWAY_BENCH_CLIENT_TLS        1: pgbench reaches the gateway and PgBouncer over TLS (sslmode=require); direct and pipe stay plaintext
 *   GATEWAY_BENCH_PGBOUNCER_POOL_MODE  session (default) | transaction
 *   GATEWAY_BENCH_PROFILE_SECONDS   after the table, CPU-profile the gateway under pgbench -S for this long (default 0 = off)
 *   GATEWAY_BENCH_PROFILE_CLIENTS   pgbench clients while profiling (default 8)
 *   GATEWAY_BENCH_PROFILE_OUT       also write that profile here (.cpuprofile, for Chrome DevTools)
 *   PGBOUNCER_BIN, PGBENCH_BIN      the binaries (default: found on PATH, /usr/sbin)
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { PostgresGateway } from '../src/gateway/index.js';
import {
  type BenchScript,
  type CpuProbe,
  type CpuReading,
  killRunningPgbench,
  type PgbenchFigures,
  pgbenchArgs,
  runPgbench,
  startCpuProbe,
} from './gateway-bench-pgbench.js';
import {
  findPgbouncer,
  pgbouncerInstallHint,
  type RunningPgbouncer,
  startPgbouncer,
} from './gateway-bench-pgbouncer.js';
import { type RunningPipe, startBytePipe } from './gateway-bench-pipe.js';
import { type ProfileSummary, profileWhile } from './gateway-bench-profile.js';
import { resetTpcb, setUpWorld } from './gateway-bench-setup.js';
import { startUnrecordedGateway } from './gateway-bench-unrecorded.js';

type TargetName = 'gateway' | 'direct' | 'pgbouncer' | 'pipe' | 'gateway-norec';

const allTargets: readonly TargetName[] = ['gateway', 'direct', 'pgbouncer', 'pipe', 'gateway-norec'];
const allScripts: readonly BenchScript[] = ['select', 'tpcb'];

export interface GatewayBenchConfig {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly clients: readonly number[];
  readonly threads: number | undefined;
  readonly scripts: readonly BenchScript[];
  readonly targets: readonly TargetName[];
  readonly scale: number;
  readonly protocol: string;
  readonly targetPg: 'scram' | 'shared';
  readonly storage: 'sqlite' | 'postgres';
  readonly recordParameters: boolean;
  readonly clientTls: boolean;
  readonly poolMode: string;
  readonly profileSeconds: number;
  readonly profileClients: number;
  readonly profileOut: string | undefined;
}

function integer(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be an integer ≥ ${min}, not ${raw}`);
  return value;
}

function oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw))
    throw new Error(`${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

function listOf<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const item of items)
    if (!(allowed as readonly string[]).includes(item))
      throw new Error(`${name}: ${item} is not one of ${allowed.join(', ')}`);
  return items as T[];
}

export function configFromEnv(): GatewayBenchConfig {
  const clientsRaw = process.env.GATEWAY_BENCH_CLIENTS;
  const clients = clientsRaw
    ? clientsRaw.split(',').map((item) => {
        const value = Number(item.trim());
        if (!Number.isInteger(value) || value < 1)
          throw new Error(`GATEWAY_BENCH_CLIENTS: ${item} is not a count`);
        return value;
      })
    : [1, 8, 64];
  const threadsRaw = process.env.GATEWAY_BENCH_THREADS;
  return {
    seconds: integer('GATEWAY_BENCH_SECONDS', 5, 1),
    warmupSeconds: integer('GATEWAY_BENCH_WARMUP_SECONDS', 3, 0),
    rounds: integer('GATEWAY_BENCH_ROUNDS', 3, 1),
    clients,
    threads: threadsRaw ? integer('GATEWAY_BENCH_THREADS', 1, 1) : undefined,
    scripts: listOf('GATEWAY_BENCH_SCRIPTS', allScripts, allScripts),
    targets: listOf('GATEWAY_BENCH_TARGETS', allTargets, ['gateway', 'direct', 'pgbouncer', 'pipe']),
    scale: integer('GATEWAY_BENCH_SCALE', 10, 1),
    protocol: oneOf('GATEWAY_BENCH_PROTOCOL', ['simple', 'extended', 'prepared'], 'simple'),
    targetPg: oneOf('GATEWAY_BENCH_TARGET_PG', ['scram', 'shared'], 'scram'),
    storage: oneOf('GATEWAY_BENCH_STORAGE', ['sqlite', 'postgres'], 'sqlite'),
    clientTls: ['true', '1'].includes(
      oneOf('GATEWAY_BENCH_CLIENT_TLS', ['true', 'false', '1', '0'], 'false'),
    ),
    recordParameters: ['true', '1'].includes(
      oneOf('GATEWAY_BENCH_RECORD_PARAMETERS', ['true', 'false', '1', '0'], 'false'),
    ),
    poolMode: oneOf('GATEWAY_BENCH_PGBOUNCER_POOL_MODE', ['session', 'transaction'], 'session'),
    profileSeconds: integer('GATEWAY_BENCH_PROFILE_SECONDS', 0, 0),
    profileClients: integer('GATEWAY_BENCH_PROFILE_CLIENTS', 8, 1),
    profileOut: process.env.GATEWAY_BENCH_PROFILE_OUT || undefined,
  };
}

function findPgbench(): string | undefined {
  const candidates = [
    process.env.PGBENCH_BIN,
    ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'pgbench')),
    '/usr/bin/pgbench',
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

// ------------------------------------------------------------------ figures

interface Sample extends PgbenchFigures {
  readonly cpu: CpuReading | undefined;
  /** Time to write the gateway's queued statement records after the run. */
  readonly flushMs: number | undefined;
}

function median(values: readonly number[]): number {
  const sorted = [...values].filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The samples of one case and target, one per round (index = round − 1). */
type Samples = ReadonlyMap<string, readonly Sample[]>;

const keyOf = (script: BenchScript, clients: number, target: TargetName) => `${script}/${clients}/${target}`;

interface CaseSummary {
  readonly tps: number;
  readonly latencyMs: number;
  readonly tpsRounds: readonly number[];
  /** Proxy CPU per transaction (µs), median over the rounds. */
  readonly cpuMicrosPerTx: number;
  /** Proxy CPU as a share of one core. */
  readonly cpuCores: number;
  readonly eventLoopUtilization: number;
  readonly flushMs: number;
}

function summariseCase(samples: readonly Sample[], seconds: number): CaseSummary {
  const cpu = samples.filter((sample) => sample.cpu !== undefined);
  return {
    tps: median(samples.map((sample) => sample.tps)),
    latencyMs: median(samples.map((sample) => sample.latencyMs)),
    tpsRounds: samples.map((sample) => sample.tps),
    cpuMicrosPerTx: median(cpu.map((sample) => ((sample.cpu?.cpuSeconds ?? 0) * 1e6) / sample.transactions)),
    cpuCores: median(cpu.map((sample) => (sample.cpu?.cpuSeconds ?? 0) / seconds)),
    eventLoopUtilization: median(
      cpu.flatMap((sample) =>
        sample.cpu?.eventLoopUtilization === undefined ? [] : [sample.cpu.eventLoopUtilization],
      ),
    ),
    flushMs: Math.max(0, ...samples.map((sample) => sample.flushMs ?? 0)),
  };
}

/**
 * TPS of `a` over TPS of `b`: the median of the per-round ratios. The targets of a case run back to
 * back in each round, so pairing them by round cancels most of the drift between rounds.
 */
function pairedRatio(
  samples: Samples,
  script: BenchScript,
  clients: number,
  a: TargetName,
  b: TargetName,
): number {
  const as = samples.get(keyOf(script, clients, a)) ?? [];
  const bs = samples.get(keyOf(script, clients, b)) ?? [];
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i]?.tps ?? Number.NaN;
    const y = bs[i]?.tps ?? Number.NaN;
    if (y > 0) ratios.push(x / y);
  }
  return median(ratios);
}

// ------------------------------------------------------------------ printing

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
    .map((row) => `  ${row}`)
    .join('\n');
}

const fixed = (value: number | undefined, digits: number) =>
  value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : '–';

const scriptTitle: Record<BenchScript, string> = {
  select: 'pgbench -S (select-only)',
  tpcb: 'pgbench (TPC-B-like read/write)',
};

const targetTitle: Record<TargetName, string> = {
  direct: 'direct',
  pgbouncer: 'pgbouncer',
  gateway: 'gateway',
  pipe: 'node pipe',
  'gateway-norec': 'gw no-rec',
};

const shortTitle: Record<TargetName, string> = {
  direct: 'direct',
  pgbouncer: 'pgb',
  gateway: 'gw',
  pipe: 'pipe',
  'gateway-norec': 'no-rec',
};

/** Display order: references first, the gateway last. */
const displayOrder: readonly TargetName[] = ['direct', 'pgbouncer', 'pipe', 'gateway-norec', 'gateway'];

/** The ratio columns the targets allow: gateway/direct, gateway/PgBouncer, then the references. */
function ratioColumns(targets: readonly TargetName[]): [TargetName, TargetName][] {
  const has = (t: TargetName) => targets.includes(t);
  const columns: [TargetName, TargetName][] = [];
  if (has('gateway') && has('direct')) columns.push(['gateway', 'direct']);
  if (has('gateway') && has('pgbouncer')) columns.push(['gateway', 'pgbouncer']);
  if (has('pgbouncer') && has('direct')) columns.push(['pgbouncer', 'direct']);
  // The ceiling of a Node proxy here: a gateway can hardly beat a bare Node pipe.
  if (has('pipe') && has('pgbouncer')) columns.push(['pipe', 'pgbouncer']);
  if (has('gateway') && has('pipe')) columns.push(['gateway', 'pipe']);
  if (has('gateway-norec') && has('pgbouncer')) columns.push(['gateway-norec', 'pgbouncer']);
  return columns;
}

function printScript(config: GatewayBenchConfig, script: BenchScript, samples: Samples): void {
  const targets = displayOrder.filter((t) => config.targets.includes(t));
  const summary = (clients: number, target: TargetName) => {
    const list = samples.get(keyOf(script, clients, target));
    return list ? summariseCase(list, config.seconds) : undefined;
  };
  const ratios = ratioColumns(targets);
  const header = [
    'clients',
    ...targets.flatMap((t) => [`${targetTitle[t]} tps`, 'ms']),
    ...ratios.map(([a, b]) => `${shortTitle[a]}/${shortTitle[b]}`),
  ];
  const rows = config.clients.map((clients) => [
    String(clients),
    ...targets.flatMap((t) => [fixed(summary(clients, t)?.tps, 0), fixed(summary(clients, t)?.latencyMs, 3)]),
    ...ratios.map(([a, b]) => fixed(pairedRatio(samples, script, clients, a, b), 2)),
  ]);
  console.log(
    `\n${scriptTitle[script]}, -M ${config.protocol}, ${config.seconds} s per run, median of ${config.rounds} round(s)`,
  );
  console.log(table(header, rows));

  const detailRows = config.clients.flatMap((clients) =>
    targets.map((target) => {
      const s = summary(clients, target);
      const inProcess = target === 'gateway' || target === 'gateway-norec' || target === 'pipe';
      return [
        String(clients),
        targetTitle[target],
        target === 'direct' ? '' : fixed(s?.cpuMicrosPerTx, 1),
        target === 'direct' ? '' : fixed(s?.cpuCores, 2),
        inProcess ? fixed(s?.eventLoopUtilization, 2) : '',
        target.startsWith('gateway') ? fixed(s?.flushMs, 0) : '',
        (s?.tpsRounds ?? []).map((tps) => tps.toFixed(0)).join(' / '),
      ];
    }),
  );
  console.log(
    table(['clients', 'target', 'CPU µs/tx', 'cores', 'loop util', 'flush ms', 'tps per round'], detailRows),
  );
}

function printProfile(summary: ProfileSummary, clients: number, seconds: number, tps: number): void {
  console.log(
    `\nCPU profile of this process (Portcullis + gateway) under pgbench -S -c ${clients}, ${seconds} s, ${tps.toFixed(0)} tps; self time:`,
  );
  const share = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(1)} %`;
  const areas = summary.areas.filter(([, ms]) => ms / summary.totalMs >= 0.002);
  console.log(
    table(
      ['area', 'ms', 'share'],
      areas.map(([name, ms]) => [name, ms.toFixed(0), share(ms)]),
    ),
  );
  console.log(
    table(
      ['function', 'ms', 'share'],
      summary.functions.map(([name, ms]) => [name, ms.toFixed(0), share(ms)]),
    ),
  );
}

// ------------------------------------------------------------------ main

interface Endpoints {
  readonly env: (target: TargetName) => Record<string, string>;
  readonly probe: (target: TargetName) => CpuProbe;
}

export async function main(): Promise<void> {
  const config = configFromEnv();
  const pgbench = findPgbench();
  if (!pgbench) {
    console.error(
      'pgbench is not installed: `sudo apt-get install -y postgresql-client` (or set PGBENCH_BIN)',
    );
    process.exitCode = 1;
    return;
  }
  const pgbouncerBinary = config.targets.includes('pgbouncer') ? findPgbouncer() : undefined;
  if (config.targets.includes('pgbouncer') && !pgbouncerBinary) {
    console.error(pgbouncerInstallHint);
    process.exitCode = 1;
    return;
  }
  const cores = os.availableParallelism();
  const threadsFor = (clients: number) => Math.min(clients, config.threads ?? cores);
  const runs = config.rounds * config.scripts.length * config.clients.length * config.targets.length;
  const estimate =
    runs * config.seconds + config.scripts.length * config.targets.length * config.warmupSeconds + 30;
  console.log(
    `Gateway benchmark: ${runs} runs of ${config.seconds} s plus warm-up, about ${Math.ceil(estimate / 60)} min` +
      (config.profileSeconds > 0 ? ` and a ${config.profileSeconds} s profile` : ''),
  );

  let closeWorld: (() => Promise<void>) | undefined;
  let bouncer: RunningPgbouncer | undefined;
  let pipe: RunningPipe | undefined;
  let unrecorded: PostgresGateway | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => {
    cleaning ??= (async () => {
      killRunningPgbench();
      await bouncer?.stop().catch((error) => console.error(`stopping PgBouncer: ${String(error)}`));
      await pipe?.close().catch(() => {});
      await unrecorded?.close().catch(() => {});
      await closeWorld?.().catch((error) => console.error(`cleaning up: ${String(error)}`));
    })();
    return cleaning;
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130); // second Ctrl-C: the cluster's exit hook still stops the server
    interrupted = true;
    console.error(`\n${signal}: cleaning up (PgBouncer, Portcullis, the PostgreSQL cluster, temp files) …`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    console.log('\nSetting up');
    const maxClients = Math.max(...config.clients, 8);
    const w = await setUpWorld({
      targetKind: config.targetPg,
      storage: config.storage,
      scale: config.scale,
      maxClients,
      recordParameters: config.recordParameters,
      clientTls: config.clientTls,
      pgbench,
      log: (line) => console.log(line),
      onClose: (close) => {
        closeWorld = close;
      },
    });
    if (pgbouncerBinary) {
      bouncer = await startPgbouncer({
        binary: pgbouncerBinary,
        upstreamHost: w.targetHost,
        upstreamPort: w.targetPort,
        database: w.database,
        user: w.login,
        password: w.loginPassword,
        poolMode: config.poolMode,
        poolSize: maxClients + 10,
        ...(w.clientTls && { clientTls: { cert: w.clientTls.cert, key: w.clientTls.key } }),
      });
    }
    if (config.targets.includes('pipe')) pipe = await startBytePipe(w.targetHost, w.targetPort);
    const gateway = w.harness.portcullis.gateway;
    if (!gateway) throw new Error('no gateway');
    if (config.targets.includes('gateway-norec'))
      unrecorded = await startUnrecordedGateway(w.harness.portcullis);
    const gatewayOf = (target: TargetName) => (target === 'gateway-norec' ? unrecorded : gateway);

    const base = { PGHOST: '127.0.0.1', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
    const overTls = config.clientTls ? { PGSSLMODE: 'require' } : {};
    const asLogin = { PGUSER: w.login, PGPASSWORD: w.loginPassword, PGDATABASE: w.database };
    const endpoints: Endpoints = {
      env: (target) => {
        switch (target) {
          case 'gateway':
          case 'gateway-norec':
            return {
              ...base,
              ...overTls,
              PGPORT: String(gatewayOf(target)?.port ?? 0),
              PGUSER: w.principalId,
              PGDATABASE: w.resourceId,
              PGPASSWORD: w.token,
            };
          case 'direct':
            return { ...base, ...asLogin, PGHOST: w.targetHost, PGPORT: String(w.targetPort) };
          case 'pgbouncer':
            return { ...base, ...overTls, ...asLogin, PGPORT: String(bouncer?.port ?? 0) };
          case 'pipe':
            return { ...base, ...asLogin, PGPORT: String(pipe?.port ?? 0) };
        }
      },
      probe: (target) =>
        target === 'direct'
          ? null
          : target === 'pgbouncer'
            ? { kind: 'pid', pid: bouncer?.pid ?? 0 }
            : { kind: 'self' },
    };

    const pgbenchVersion = execFileSync(pgbench, ['--version'], { encoding: 'utf8' }).trim();
    const setup: [string, string][] = [
      ['node', `${process.version} (${os.platform()} ${os.arch()})`],
      [
        'cpu',
        `${cores} cores (${os.cpus()[0]?.model ?? '?'}), load average at start ${os.loadavg()[0]?.toFixed(2)}`,
      ],
      ['PostgreSQL', `${w.serverVersion}: ${w.targetDescription}`],
      ['database', `${w.database}, pgbench -i -s ${config.scale} (${config.scale * 100_000} accounts)`],
      [
        'pgbench',
        `${pgbenchVersion}; -M ${config.protocol}, -T ${config.seconds}, -j min(clients, ${config.threads ?? cores}), -n`,
      ],
      [
        'runs',
        `clients ${config.clients.join(', ')}; ${config.rounds} round(s), median; warm-up ${config.warmupSeconds} s per script and target at 8 clients; targets in rotating order`,
      ],
      ['direct', `to ${w.targetHost}:${w.targetPort} as the grant's own login ${w.login} (${w.targetAuth})`],
      ['pgbouncer', bouncer ? `127.0.0.1:${bouncer.port}, ${bouncer.description}` : 'not run'],
      [
        'gateway',
        `Portcullis in this process, 127.0.0.1:${w.gatewayPort} ${config.clientTls ? 'clients over TLS (sslmode=require)' : 'plaintext on loopback'}, user=${w.principalId} ` +
          `dbname=${w.resourceId} password=<access token of grant ${w.grantId}>; upstream as ${w.login} (${w.targetAuth}); ` +
          `storage ${config.storage} (audit records), record_parameters ${config.recordParameters}`,
      ],
    ];
    if (config.clientTls)
      setup.push([
        'client TLS',
        'gateway and PgBouncer: sslmode=require, the same self-signed P-256 certificate; direct and node pipe stay plaintext',
      ]);
    if (pipe)
      setup.push([
        'node pipe',
        `127.0.0.1:${pipe.port}: net.Socket.pipe both ways, in this process (reference: the floor of a Node proxy)`,
      ]);
    if (unrecorded)
      setup.push([
        'gw no-rec',
        `127.0.0.1:${unrecorded.port}: a second gateway of the same Portcullis whose statement records are dropped (diagnostic)`,
      ]);
    console.log('\nSetup');
    const width = Math.max(...setup.map(([name]) => name.length));
    for (const [name, value] of setup) console.log(`  ${name.padEnd(width)}  ${value}`);

    const runOne = async (
      script: BenchScript,
      clients: number,
      target: TargetName,
      seconds: number,
    ): Promise<Sample> => {
      if (script === 'tpcb') await resetTpcb(w.admin);
      const stop = startCpuProbe(endpoints.probe(target));
      const figures = await runPgbench(pgbench, {
        script,
        clients,
        threads: threadsFor(clients),
        seconds,
        protocol: config.protocol,
        env: endpoints.env(target),
      });
      const cpu = stop();
      let flushMs: number | undefined;
      const probed = target === 'gateway' || target === 'gateway-norec' ? gatewayOf(target) : undefined;
      if (probed) {
        // What the run queued is written before the next case, so no target pays for another's records.
        const started = performance.now();
        await probed.flushRecords();
        flushMs = performance.now() - started;
      }
      return { ...figures, cpu, flushMs };
    };

    if (config.warmupSeconds > 0) {
      console.log(`\nWarm-up (${config.warmupSeconds} s per script and target, 8 clients)`);
      for (const script of config.scripts)
        for (const target of config.targets) {
          const sample = await runOne(script, 8, target, config.warmupSeconds);
          console.log(`  ${script.padEnd(6)} ${targetTitle[target].padEnd(9)} ${sample.tps.toFixed(0)} tps`);
        }
    }

    const samples = new Map<string, Sample[]>();
    let caseIndex = 0;
    for (let round = 1; round <= config.rounds; round++) {
      console.log(`\nRound ${round}/${config.rounds}`);
      for (const script of config.scripts)
        for (const clients of config.clients) {
          const shift = caseIndex++ % config.targets.length;
          const order = [...config.targets.slice(shift), ...config.targets.slice(0, shift)];
          const line: string[] = [];
          for (const target of order) {
            const sample = await runOne(script, clients, target, config.seconds);
            const key = keyOf(script, clients, target);
            samples.set(key, [...(samples.get(key) ?? []), sample]);
            line.push(`${targetTitle[target]} ${sample.tps.toFixed(0)}`);
          }
          console.log(`  ${script.padEnd(6)} c=${String(clients).padEnd(3)} ${line.join(', ')} tps`);
        }
    }

    console.log('\nResults');
    console.log(
      `  command: pgbench ${pgbenchArgs({ script: 'select', clients: 0, threads: 0, seconds: config.seconds, protocol: config.protocol, env: {} }).join(' ').replace('-c 0 -j 0', '-c N -j min(N, cores)')} (without -S: read/write)`,
    );
    console.log(
      '  tps: without the initial connection time; ms: average latency; both the median of the rounds.\n' +
        '  gw/direct = gateway tps / direct tps, gw/pgb = gateway tps / PgBouncer tps (goal: ≥ 1.00), pgb/direct:\n' +
        '  each the median of the per-round ratios (the targets of a case run back to back in every round).',
    );
    for (const script of config.scripts) printScript(config, script, samples);
    console.log(
      '\n  CPU µs/tx: CPU time of the proxy per transaction (gateway, gw no-rec, node pipe: this whole process,\n' +
        '  Portcullis included; PgBouncer: its process); cores: that CPU time per second of run; loop util:\n' +
        "  event-loop utilisation of this process; flush ms: writing a gateway run's still-queued records (longest).",
    );

    if (config.profileSeconds > 0 && config.targets.includes('gateway')) {
      const profiled = await profileWhile(
        () =>
          runPgbench(pgbench, {
            script: 'select',
            clients: config.profileClients,
            threads: threadsFor(config.profileClients),
            seconds: config.profileSeconds,
            protocol: config.protocol,
            env: endpoints.env('gateway'),
          }),
        { outFile: config.profileOut, top: 25 },
      );
      await gateway.flushRecords();
      printProfile(profiled.summary, config.profileClients, config.profileSeconds, profiled.result.tps);
      if (config.profileOut) console.log(`  profile written to ${config.profileOut}`);
    }
  } finally {
    await cleanUp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
