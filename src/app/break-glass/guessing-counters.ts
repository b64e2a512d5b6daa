/**
 * The stored guessing counters (see `src/break-glass/guessing.ts`): one row per key, read as a
 * whole and written back with a compare-and-swap on its version.
 */
import { emptyGuessingState, type GuessingState } from '../../break-glass/guessing.js';
import { PortcullisError } from '../../core/errors.js';
import type { Transaction } from '../ports.js';
import { type BreakGlassContext, maxCasAttempts } from './context.js';

export async function readGuessing(
  ctx: BreakGlassContext,
  tx: Pick<Transaction, 'breakGlass'>,
  key: string,
  now: number,
) {
  const row = await tx.breakGlass.getGuessing(key);
  const state = row ? (JSON.parse(row.state) as GuessingState) : emptyGuessingState(ctx.policy, now);
  return { state, version: row?.version ?? null };
}

/** Applies `change` to the counters under `key`, retrying when another writer got there first. */
export async function updateGuessing(
  ctx: BreakGlassContext,
  key: string,
  change: (state: GuessingState) => GuessingState,
  now: number,
) {
  for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
    const { state, version } = await readGuessing(ctx, ctx.deps.store, key, now);
    if (await ctx.deps.store.breakGlass.putGuessing(key, JSON.stringify(change(state)), version)) return;
  }
  throw new PortcullisError('conflict', 'Guessing counters kept changing; try again');
}
