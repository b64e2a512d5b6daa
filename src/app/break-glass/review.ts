/**
 * The review every ended activation owes: recorded by someone who signs in normally (SSO), is an
 * admin or a break-glass reviewer, and took no part in the activation.
 */
import type { Activation } from '../../break-glass/activation.js';
import * as bg from '../../break-glass/activation.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import { alert, audit } from './audit-and-alerts.js';
import { type BreakGlassContext, loadActivation, maxCasAttempts } from './context.js';

/** Whether `principal` may record reviews: an admin or a member of `break_glass.reviewer_groups`. */
export function mayReview(ctx: BreakGlassContext, principal: Principal): boolean {
  const groups = [...ctx.deps.adminGroups, ...ctx.deps.settings.reviewerGroups];
  return principal.groups.some((g) => groups.includes(g));
}

/**
 * Records the review of an ended activation. The reviewer signs in normally (SSO) and must not
 * be a participant: a custodian whose configured `principal` is the reviewer counts as that
 * custodian, so the pure rule refuses them.
 */
export async function review(
  ctx: BreakGlassContext,
  activationId: string,
  reviewer: Principal,
  notes: string,
  from: RequestOrigin,
): Promise<Activation> {
  const found = await ctx.deps.store.breakGlass.getActivation(activationId);
  if (!found || !mayReview(ctx, reviewer)) {
    const error = found
      ? new PortcullisError('forbidden', 'Only admins or break-glass reviewers may record a review')
      : new PortcullisError('not_found', `No activation ${activationId}`);
    await auditRefusedReview(
      ctx,
      error,
      reviewer,
      found?.activation.accountId ?? null,
      activationId,
      from,
      ctx.deps.clock.now(),
    );
    throw error;
  }
  const account = ctx.deps.settings.accounts.find((a) => a.id === found.activation.accountId);
  const asCustodian =
    Object.entries(account?.custodianPrincipals ?? {}).find(
      ([, principal]) => principal === reviewer.id,
    )?.[0] ?? reviewer.id;
  for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
    const current = await loadActivation(ctx, activationId);
    const now = ctx.deps.clock.now();
    let reviewed: Activation;
    try {
      reviewed = bg.recordReview(current.activation, asCustodian, notes, now);
      // Stored under the reviewer's real identity, not the custodian id it was checked as.
      reviewed = {
        ...reviewed,
        review: { reviewerId: reviewer.id, notes: reviewed.review?.notes ?? notes, at: now },
      };
    } catch (error) {
      if (error instanceof PortcullisError) {
        await auditRefusedReview(ctx, error, reviewer, current.activation.accountId, activationId, from, now);
      }
      throw error;
    }
    const won = await ctx.deps.store.transaction(async (tx) => {
      if (!(await tx.breakGlass.updateActivation(reviewed, current.activation.version))) return false;
      await tx.audit.append(
        {
          type: 'break_glass.reviewed',
          actor: reviewer.id,
          severity: 'high',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          resourceId: reviewed.scope.resourceId,
          reason: reviewed.review?.notes ?? notes,
          data: { accountId: reviewed.accountId, activationId },
        },
        now,
      );
      return true;
    });
    if (!won) continue;
    alert(
      ctx,
      'reviewed',
      reviewed.accountId,
      reviewed,
      now,
      `Break-glass on ${reviewed.accountId} reviewed by ${reviewer.id}`,
    );
    return reviewed;
  }
  throw new PortcullisError('conflict', 'The activation kept changing; try again');
}

async function auditRefusedReview(
  ctx: BreakGlassContext,
  error: PortcullisError,
  reviewer: Principal,
  accountId: string | null,
  activationId: string,
  from: RequestOrigin,
  at: number,
): Promise<void> {
  await audit(
    ctx,
    {
      type: 'break_glass.refused',
      actor: reviewer.id,
      reason: error.message,
      data: { accountId, activationId, step: 'review', code: error.code },
    },
    from,
    at,
  );
}
