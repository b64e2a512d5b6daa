/** Reminders that an account's drill is overdue, so an unpractised procedure does not go unnoticed. */
import { alert } from './audit-and-alerts.js';
import type { BreakGlassContext } from './context.js';
import { overview } from './overview.js';

/** At most hourly: a `drill_overdue` alert per overdue account, repeated daily (per replica). */
export async function alertOverdueDrills(ctx: BreakGlassContext, now: number): Promise<void> {
  if (now - ctx.memory.overdueCheckedAt < 3600_000) return;
  ctx.memory.overdueCheckedAt = now;
  for (const a of await overview(ctx)) {
    const last = ctx.memory.overdueAlertedAt.get(a.accountId) ?? Number.NEGATIVE_INFINITY;
    if (!a.drillOverdue || now - last < 86_400_000) continue;
    ctx.memory.overdueAlertedAt.set(a.accountId, now);
    alert(
      ctx,
      'drill_overdue',
      a.accountId,
      null,
      now,
      `Break-glass drill OVERDUE on ${a.accountId} (last passed: ${a.lastPassedDrillAt ? new Date(a.lastPassedDrillAt).toISOString() : 'never'})`,
    );
  }
}
