/** The periodic pass, run from the expiry loop on every replica. */
import { isAccessLive } from '../../core/access-request.js';
import { endActivation, expireWindow } from './activation-closing.js';
import type { BreakGlassContext } from './context.js';
import { alertOverdueDrills } from './drill-overdue-alerts.js';

/**
 * Closes confirmation windows that passed and ends activations whose access is over (hard expiry,
 * or every grant already ended). Run from the expiry loop on every replica; CAS makes it safe.
 */
export async function tick(ctx: BreakGlassContext): Promise<void> {
  const now = ctx.deps.clock.now();
  const waiting = await ctx.deps.store.breakGlass.listActivations({
    states: ['initiated', 'awaiting_quorum'],
    limit: 1000,
  });
  for (const stored of waiting) await expireWindow(ctx, stored, now);
  const active = await ctx.deps.store.breakGlass.listActivations({ states: ['active'], limit: 1000 });
  for (const stored of active) {
    const a = stored.activation;
    if (a.expiresAt !== null && now >= a.expiresAt) {
      await endActivation(ctx, a.id, null, 'expired', null);
      continue;
    }
    const requests = await Promise.all(stored.requestIds.map((id) => ctx.deps.store.requests.get(id)));
    const anyLive = requests.some((r) => r && (r.state === 'approved' || isAccessLive(r, now)));
    if (requests.length > 0 && !anyLive)
      await endActivation(ctx, a.id, null, 'revoked', null, 'every grant ended');
  }
  await alertOverdueDrills(ctx, now);
}
