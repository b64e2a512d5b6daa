/**
 * The two ways break-glass makes itself seen: a high-severity audit event (in its own transaction)
 * and an alert to the custodians' channels, which goes out after the commit and never blocks.
 */
import type { Activation } from '../../break-glass/activation.js';
import type { BreakGlassAlertKind } from '../../break-glass/ports.js';
import type { AuditEventInput, RequestOrigin } from '../../core/audit-event.js';
import type { BreakGlassContext } from './context.js';

/** Appends one high-severity break-glass event, with where the call came from. */
export async function audit(
  ctx: BreakGlassContext,
  event: Omit<AuditEventInput, 'severity'>,
  from: RequestOrigin | null,
  at: number,
): Promise<void> {
  await ctx.deps.store.transaction((tx) =>
    tx.audit.append(
      { ...event, severity: 'high', sourceIp: from?.sourceIp ?? null, userAgent: from?.userAgent ?? null },
      at,
    ),
  );
}

/**
 * Dispatches an alert about `activation` (or the account alone, naming `custodians` when given);
 * never waits for delivery.
 */
export function alert(
  ctx: BreakGlassContext,
  kind: BreakGlassAlertKind,
  accountId: string,
  activation: Activation | null,
  at: number,
  summary: string,
  custodians: readonly string[] = activation ? [activation.initiatorId, ...activation.confirmerIds] : [],
): void {
  ctx.deps.alerts.dispatch({
    id: ctx.deps.newId(),
    kind,
    accountId,
    activationId: activation?.id ?? null,
    drill: activation?.drill ?? false,
    custodians: [...custodians],
    reason: activation?.reason ?? null,
    incident: activation?.incident ?? null,
    at,
    summary,
  });
}
