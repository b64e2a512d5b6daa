/** The state of every emergency account, for operators and the drill-overdue alerts. */
import { type AccountOverview, accountOverview } from '../break-glass-admin.js';
import type { BreakGlassContext } from './context.js';

export function overview(ctx: BreakGlassContext): Promise<AccountOverview[]> {
  return accountOverview(ctx.deps.store, ctx.deps.settings, ctx.deps.clock.now());
}
