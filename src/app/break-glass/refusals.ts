/**
 * Refusals: every one is audited and alerted before it is thrown. Refusals that cost an attacker
 * nothing are summarised when one source floods (see `src/break-glass/refusal-log-throttle.ts`),
 * with separate budgets: refusals naming no configured account share one budget per source, and
 * each configured account has its own per source, so a flood of made-up accounts cannot use up the
 * real account's evidence. Failed authentications and lockouts against a configured account (the
 * evidence of guessing) are never summarised. The refusal itself never changes.
 */
import type { Activation } from '../../break-glass/activation.js';
import { findAccount } from '../../break-glass/activation.js';
import { decideRefusalLog } from '../../break-glass/refusal-log-throttle.js';
import { guessingSource } from '../../break-glass/source-address.js';
import type { ConfiguredEmergencyAccount } from '../../config/break-glass-config.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { alert, audit } from './audit-and-alerts.js';
import { type BreakGlassContext, configuredAccount } from './context.js';
import { custodianActor } from './identities.js';

/**
 * How a refusal's evidence is written: `guess` (a failed authentication or a lockout) always, one
 * by one, when it names a configured account; anything else under its throttle budget.
 */
export type RefusalKind = 'guess' | 'other';

function isConfigured(ctx: BreakGlassContext, accountId: string): boolean {
  try {
    findAccount(ctx.deps.settings.accounts, accountId);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a refusal's evidence is written one by one, summarised, or left to the marker already
 * written (see refusal-log-throttle.ts). Returns the extra audit data, or null to write nothing.
 */
export function refusalEvidence(
  ctx: BreakGlassContext,
  from: RequestOrigin,
  now: number,
  accountId: string,
  kind: RefusalKind,
): Record<string, unknown> | null {
  const configured = isConfigured(ctx, accountId);
  // INVARIANT: guesses and lockouts against a configured account are always written and alerted.
  if (configured && kind === 'guess') return {};
  const source = guessingSource(from.sourceIp);
  // Separate budgets: made-up accounts share one per source; each configured account has its own.
  const budget = configured ? `${source}\0account:${accountId}` : `${source}\0unconfigured`;
  const decided = decideRefusalLog(ctx.memory.refusalLog, budget, now);
  ctx.memory.refusalLog = decided.state;
  const { verdict } = decided;
  if (verdict.write === 'nothing') return null;
  if (verdict.write === 'suppressing')
    return { suppressing: true, suppressingUntil: new Date(verdict.until).toISOString() };
  return verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {};
}

/**
 * Audits and alerts a refusal, then throws it. `kind` `guess` (a wrong factor or share) is never
 * summarised against a configured account; other refusals are when one source floods.
 */
export async function refuse(
  ctx: BreakGlassContext,
  error: PortcullisError,
  accountId: string,
  custodianId: string | null,
  step: string,
  from: RequestOrigin,
  activation: Activation | null = null,
  kind: RefusalKind = 'other',
): Promise<never> {
  const now = ctx.deps.clock.now();
  const evidence = refusalEvidence(ctx, from, now, accountId, kind);
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
