/** The state of every emergency account, for operators and the drill-overdue alerts. */
import { type Activation, awaitingReview as owesReview } from '../../break-glass/activation.js';
import { type AccountOverview, accountOverview } from '../break-glass-admin.js';
import type { BreakGlassContext } from './context.js';

export function overview(ctx: BreakGlassContext): Promise<AccountOverview[]> {
  return accountOverview(ctx.deps.store, ctx.deps.settings, ctx.deps.clock.now());
}

/** Every activation that ended and still waits for its review, oldest first. */
export async function awaitingReview(ctx: BreakGlassContext): Promise<Activation[]> {
  const owed: Activation[] = [];
  for (const account of ctx.deps.settings.accounts) {
    const stored = await ctx.deps.store.breakGlass.listActivations({ accountId: account.id, limit: 1000 });
    for (const { activation } of stored) if (owesReview(activation)) owed.push(activation);
  }
  return owed.sort((a, b) => a.initiatedAt - b.initiatedAt);
}
