/**
 * Small helpers shared by the benchmark sections: configuration from the environment, latency
 * summaries, plain-text tables and a pool of concurrent workers.
 */

/** A whole number from the environment, or the default when unset or empty. */
export function envInteger(name: string, fallback: number, minimum = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < minimum)
    throw new Error(`${name} must be a whole number of at least ${minimum}, not ${JSON.stringify(raw)}`);
  return value;
}

/** A comma-separated list of whole numbers from the environment, e.g. `1,8`. */
export function envIntegerList(name: string, fallback: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...fallback];
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value < 1))
    throw new Error(
      `${name} must be a comma-separated list of whole numbers ≥ 1, not ${JSON.stringify(raw)}`,
    );
  return values;
}

/** One of a fixed set of words from the environment. */
export function envChoice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!(choices as readonly string[]).includes(raw))
    throw new Error(`${name} must be one of ${choices.join(', ')}, not ${JSON.stringify(raw)}`);
  return raw as T;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.reduce((sum, value) => sum + value, 0) / (sorted.length || 1),
  };
}

/** Rounds for the JSON summary: enough digits to compare runs, no float noise. */
export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`;
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '–';
}

/** Left-aligned first column, right-aligned numbers, two spaces between columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return ['  ' + line(header), '  ' + rule, ...rows.map((row) => '  ' + line(row))].join('\n');
}

export function heading(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 76 - title.length))}`);
}

/**
 * Runs up to `total` jobs on `workers` concurrent loops (each job starts when its loop is free).
 * With `deadlineMs` (a `performance.now()` instant), no job starts after it, so a slow machine
 * cannot stretch a run. Returns the wall-clock time of the batch and how many jobs ran. The first
 * error stops the batch.
 */
export async function runConcurrently(
  workers: number,
  total: number,
  job: (index: number, worker: number) => Promise<void>,
  deadlineMs = Number.POSITIVE_INFINITY,
): Promise<{ elapsedMs: number; completed: number }> {
  let next = 0;
  let completed = 0;
  let failed = false;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(workers, total) }, async (_, worker) => {
      while (!failed && next < total && performance.now() < deadlineMs) {
        const index = next++;
        try {
          await job(index, worker);
          completed++;
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    }),
  );
  return { elapsedMs: performance.now() - started, completed };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
