/**
 * How an activation closes without a custodian's proof: its confirmation window lapses, or its
 * access ends (expiry, every grant over, provisioning failed, or the initiator's handle). Each is
 * a compare-and-swap on the activation with its audit event, then an alert.
 */
import type { Activation } from '../../break-glass/activation.js';
import * as bg from '../../break-glass/activation.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { StoredActivation } from '../break-glass-ports.js';
import { alert } from './audit-and-alerts.js';
import { type BreakGlassContext, loadActivation, maxCasAttempts } from './context.js';
import { custodianActor } from './identities.js';

/** Moves an attempt whose window passed to `expired` (audited, alerted); returns it, or null. */
export async function expireWindow(
  ctx: BreakGlassContext,
  stored: StoredActivation,
  now: number,
): Promise<Activation | null> {
  const lapsed = bg.expireIfWindowPassed(stored.activation, now);
  if (lapsed === stored.activation) return null;
  const won = await ctx.deps.store.transaction(async (tx) => {
    if (!(await tx.breakGlass.updateActivation(lapsed, stored.activation.version))) return false;
    await tx.audit.append(
      {
        type: 'break_glass.expired',
        actor: 'system',
        severity: 'high',
        resourceId: lapsed.scope.resourceId,
        reason: 'confirmation window passed before the quorum',
        data: { accountId: lapsed.accountId, activationId: lapsed.id, confirmers: lapsed.confirmerIds },
      },
      now,
    );
    return true;
  });
  if (won)
    alert(
      ctx,
      'expired',
      lapsed.accountId,
      lapsed,
      now,
      `Break-glass on ${lapsed.accountId} expired without quorum`,
    );
  return lapsed;
}

/** Ends an active activation (audited, alerted); returns it as it now stands. */
export async function endActivation(
  ctx: BreakGlassContext,
  activationId: string,
  actorId: string | null,
  reason: bg.EndReason,
  from: RequestOrigin | null,
  note?: string,
): Promise<Activation | undefined> {
  for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
    const current = await loadActivation(ctx, activationId);
    if (current.activation.state !== 'active') return current.activation;
    const now = ctx.deps.clock.now();
    const ended = bg.end(current.activation, actorId, reason, now);
    const won = await ctx.deps.store.transaction(async (tx) => {
      if (!(await tx.breakGlass.updateActivation(ended, current.activation.version))) return false;
      await tx.audit.append(
        {
          type: 'break_glass.ended',
          actor: actorId ? custodianActor(actorId) : 'system',
          severity: 'high',
          sourceIp: from?.sourceIp ?? null,
          userAgent: from?.userAgent ?? null,
          resourceId: ended.scope.resourceId,
          reason: note ?? reason,
          data: {
            accountId: ended.accountId,
            activationId,
            endReason: reason,
            endedAt: ended.endedAt,
            expiresAt: ended.expiresAt,
            drill: ended.drill,
          },
        },
        now,
      );
      return true;
    });
    if (!won) continue;
    alert(
      ctx,
      'ended',
      ended.accountId,
      ended,
      now,
      `Break-glass on ${ended.accountId} ENDED (${note ?? reason}); a review by a non-participant is now owed`,
    );
    return ended;
  }
  throw new PortcullisError('conflict', 'The activation kept changing; try again');
}
