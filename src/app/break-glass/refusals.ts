/**
 * Refusals: every one is audited and alerted before it is thrown, except that a flood from one
 * source is summarised (see `src/break-glass/refusal-log-throttle.ts`); the refusal itself never changes.
 */
import type { Activation } from '../../break-glass/activation.js';
import { decideRefusalLog } from '../../break-glass/refusal-log-throttle.js';
import type { ConfiguredEmergencyAccount } from '../../config/break-glass-config.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { alert, audit } from './audit-and-alerts.js';
import { type BreakGlassContext, configuredAccount } from './context.js';
import { custodianActor } from './identities.js';

/**
 * Whether a refusal's evidence is written one by one, summarised, or left to the marker already
 * written (see refusal-log-throttle.ts). Returns the extra audit data, or null to write nothing.
 */
export function refusalEvidence(
  ctx: BreakGlassContext,
  from: RequestOrigin,
  now: number,
): Record<string, unknown> | null {
  const decided = decideRefusalLog(ctx.memory.refusalLog, from.sourceIp ?? 'unknown', now);
  ctx.memory.refusalLog = decided.state;
  const { verdict } = decided;
  if (verdict.write === 'nothing') return null;
  if (verdict.write === 'suppressing')
    return { suppressing: true, suppressingUntil: new Date(verdict.until).toISOString() };
  return verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {};
}

/** Audits and alerts a refusal (summarised when one source floods), then throws it. */
export async function refuse(
  ctx: BreakGlassContext,
  error: PortcullisError,
  accountId: string,
  custodianId: string | null,
  step: string,
  from: RequestOrigin,
  activation: Activation | null = null,
): Promise<never> {
  const now = ctx.deps.clock.now();
  const evidence = refusalEvidence(ctx, from, now);
  if (evidence === null) throw error;
  await audit(
    ctx,
    {
      type: 'break_glass.refused',
      actor: custodianId ? custodianActor(custodianId) : 'anonymous',
      reason: evidence.suppressing
        ? `${error.message}; further refusals from this source are summarised until ${evidence.suppressingUntil}`
        : error.message,
      data: { accountId, activationId: activation?.id ?? null, step, code: error.code, ...evidence },
    },
    from,
    now,
  );
  alert(
    ctx,
    'refused',
    accountId,
    activation,
    now,
    `Break-glass ${step} REFUSED on ${accountId}${custodianId ? ` for ${custodianId}` : ''}: ${error.code}`,
  );
  throw error;
}

/** The configured account, or an audited refusal (`unknown_emergency_account`) when there is none. */
export async function accountOrRefuse(
  ctx: BreakGlassContext,
  accountId: string,
  custodianId: string | null,
  step: string,
  from: RequestOrigin,
): Promise<ConfiguredEmergencyAccount> {
  try {
    return configuredAccount(ctx, accountId);
  } catch (error) {
    if (error instanceof PortcullisError) return refuse(ctx, error, accountId, custodianId, step, from);
    throw error;
  }
}
