/**
 * A CPU profile of this process (where the in-process gateway runs) while a function runs, through
 * the inspector's sampling profiler, summarised by self time: the hottest functions, and the same
 * time grouped by where the code lives (the gateway, the audit log, the store, Node's net/stream
 * internals, the garbage collector, idle). Optionally written as a `.cpuprofile` for Chrome DevTools.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** [name, self ms], hottest first. */
  readonly functions: readonly (readonly [string, number])[];
  readonly areas: readonly (readonly [string, number])[];
}

/** Where a function lives, coarsely. */
function areaOf(url: string, functionName: string): string {
  if (functionName === '(idle)') return 'idle (waiting for I/O)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url.includes('/src/gateway/protocol/')) return 'gateway codec (src/gateway/protocol)';
  if (url.includes('/src/gateway/')) return 'gateway relay & recording (src/gateway)';
  if (url.includes('/src/audit/')) return 'audit chain (src/audit)';
  if (url.includes('/src/storage/')) return 'store (src/storage)';
  if (url.includes('/node_modules/kysely/')) return 'kysely';
  if (url.includes('/node_modules/better-sqlite3/')) return 'better-sqlite3';
  if (url.includes('/node_modules/pg')) return 'node-postgres (pg)';
  if (url.includes('/node_modules/')) return 'other node_modules';
  if (url.startsWith('node:internal/stream') || url.includes('internal/streams')) return 'node streams';
  if (
    url.startsWith('node:net') ||
    url.includes('internal/net') ||
    url.startsWith('node:internal/stream_base')
  )
    return 'node net';
  if (url.startsWith('node:')) return `node (${url.replace(/^node:(internal\/)?/, '')})`;
  if (url === '') return `native (${functionName || 'anonymous'})`;
  return 'other';
}

function shortUrl(url: string): string {
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  return url.replace(/^file:\/\//, '');
}

export function summarise(profile: Profile, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // The delta before sample i is the time since the previous one: charge it to sample i's node.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, deltas[i] ?? 0));
  }
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = url
      ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`
      : functionName || '(native)';
    functions.set(name, (functions.get(name) ?? 0) + us);
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    total += us;
  }
  const sorted = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).map(([name, us]) => [name, us / 1000] as const);
  return { totalMs: total / 1000, functions: sorted(functions).slice(0, top), areas: sorted(areas) };
}

/** Profiles this process while `during` runs. */
export async function profileWhile<T>(
  during: () => Promise<T>,
  options: { readonly intervalUs?: number; readonly outFile?: string; readonly top?: number } = {},
): Promise<{ readonly result: T; readonly summary: ProfileSummary }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: options.intervalUs ?? 200 });
    await session.post('Profiler.start');
    let outcome: { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };
    try {
      outcome = { ok: true, value: await during() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const stopped = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    if (options.outFile) writeFileSync(options.outFile, JSON.stringify(stopped.profile));
    if (!outcome.ok) throw outcome.error;
    const summary = summarise(stopped.profile, options.top ?? 20);
    return { result: outcome.value, summary };
  } finally {
    session.disconnect();
  }
}
