/** Boot-time repair of emergency access requests that a crash left approved but not provisioned. */
import type { AccessRequest } from '../../core/access-request.js';
import { cancel as cancelRequest } from '../../core/access-request.js';
import type { AuditEventInput } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { BreakGlassContext } from './context.js';
import { emergencyPrincipal } from './identities.js';

/**
 * Run at boot **before** `AccessService.recover()`, which provisions requests a crash left
 * `approved`: an emergency request must never outlive its activation's hard expiry. Requests of
 * activations that are over are cancelled; the others get only the seconds still left.
 */
export async function prepareRecovery(ctx: BreakGlassContext): Promise<number> {
  let changed = 0;
  const now = ctx.deps.clock.now();
  for (const stored of await ctx.deps.store.breakGlass.listActivations({ limit: 1000 })) {
    const a = stored.activation;
    const requestIds = [...stored.requestIds];
    for (const [index, requestId] of stored.requestIds.entries()) {
      const request = await ctx.deps.store.requests.get(requestId);
      if (request?.state !== 'approved') continue;
      const left = a.state === 'active' && a.expiresAt !== null ? Math.floor((a.expiresAt - now) / 1000) : 0;
      // A request's duration is fixed once made: the stale one is cancelled and, if time is
      // left, replaced by one for the seconds still left.
      const cancelled = cancelRequest(request, emergencyPrincipal(a), now);
      const replacement: AccessRequest | null =
        left >= 1
          ? {
              ...request,
              id: ctx.deps.newId(),
              durationSeconds: left,
              route: { ...request.route, maxDurationSeconds: left },
              createdAt: now,
              updatedAt: now,
              version: 1,
            }
          : null;
      if (replacement) requestIds[index] = replacement.id;
      await ctx.deps.store.transaction(async (tx) => {
        if (!(await tx.requests.update(cancelled, request.version))) return;
        const events: AuditEventInput[] = [
          {
            type: 'request.cancelled',
            actor: 'system',
            severity: 'high',
            requestId,
            resourceId: request.resourceId,
            reason: 'break-glass recovery: not provisioned before a restart',
            data: { activationId: a.id },
          },
        ];
        if (replacement) {
          await tx.requests.insert(replacement);
          events.push({
            type: 'request.created',
            actor: 'system',
            severity: 'high',
            requestId: replacement.id,
            resourceId: replacement.resourceId,
            reason: replacement.reason,
            policyIds: [replacement.route.policyId],
            data: { activationId: a.id, durationSeconds: left, replaces: requestId },
          });
        }
        await tx.audit.appendAll(events.map((event) => ({ event, at: now })));
        changed++;
      });
    }
    if (requestIds.some((id, i) => id !== stored.requestIds[i])) {
      const bumped = { ...a, version: a.version + 1 };
      if (!(await ctx.deps.store.breakGlass.updateActivation(bumped, a.version, requestIds)))
        throw new PortcullisError('conflict', `Activation ${a.id} changed during recovery; restart again`);
    }
  }
  return changed;
}
