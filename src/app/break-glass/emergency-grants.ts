/**
 * The access an activation grants, through the normal machinery: one approved access request per
 * role, activated by `AccessService.activate` with the usual provisioners, and revoked the usual way.
 */
import type { Activation } from '../../break-glass/activation.js';
import { type AccessRequest, unstartedLifecycle } from '../../core/access-request.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { endActivation } from './activation-closing.js';
import { alert, audit } from './audit-and-alerts.js';
import type { BreakGlassContext } from './context.js';
import { custodianActor, emergencyPrincipal, emergencyPrincipalId } from './identities.js';

/** One approved access request per role, tagged with the activation, never outliving it. */
export function emergencyRequests(
  ctx: BreakGlassContext,
  activation: Activation,
  now: number,
): AccessRequest[] {
  const expiresAt = activation.expiresAt ?? now;
  const durationSeconds = Math.max(1, Math.floor((expiresAt - now) / 1000));
  return activation.scope.roles.map((role) => ({
    id: ctx.deps.newId(),
    requesterId: emergencyPrincipalId(activation),
    resourceId: activation.scope.resourceId,
    role,
    durationSeconds,
    reason: `[break-glass ${activation.id}] ${activation.reason}`,
    ticket: activation.incident,
    state: 'approved' as const,
    route: {
      requiredApprovals: activation.quorum - 1,
      approverGroups: [],
      maxDurationSeconds: durationSeconds,
      autoApprove: false,
      policyId: `break-glass:${activation.accountId}`,
    },
    reviews: activation.confirmerIds.map((c) => ({
      reviewerId: custodianActor(c),
      verdict: 'approve' as const,
      reason: 'break-glass confirmation',
      at: now,
    })),
    ...unstartedLifecycle(now),
  }));
}

/**
 * Provisions every request of the activation through the normal path. If any fails, the ones
 * that succeeded are taken back and the activation ends: emergency access is all or nothing.
 */
export async function provision(
  ctx: BreakGlassContext,
  activation: Activation,
  requestIds: readonly string[],
): Promise<Activation> {
  const failures: unknown[] = [];
  for (const requestId of requestIds) {
    try {
      await ctx.deps.access.activate(requestId);
    } catch (error) {
      failures.push(error);
    }
  }
  if (activation.expiresAt !== null) ctx.deps.onActivated?.(activation.expiresAt);
  if (failures.length === 0) return activation;
  const now = ctx.deps.clock.now();
  // A target's own error text is not repeated here: `activate` recorded it (grant.failed audit
  // event, server log) under a reference and failed with a notice naming that reference, which is
  // what the initiator and the alert channels see.
  const message = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
  const references = failures.flatMap((f) =>
    f instanceof PortcullisError && typeof f.details.reference === 'string' ? [f.details.reference] : [],
  );
  await audit(
    ctx,
    {
      type: 'break_glass.provisioning_failed',
      actor: 'system',
      resourceId: activation.scope.resourceId,
      reason: message,
      data: {
        accountId: activation.accountId,
        activationId: activation.id,
        ...(references.length > 0 ? { references } : {}),
      },
    },
    null,
    now,
  );
  await releaseGrants(ctx, activation, requestIds, 'provisioning failed', null);
  const ended = await endActivation(ctx, activation.id, null, 'revoked', null, 'provisioning failed');
  alert(
    ctx,
    'refused',
    activation.accountId,
    ended ?? activation,
    now,
    `Break-glass on ${activation.accountId} could not be provisioned: ${message}`,
  );
  throw new PortcullisError(
    'provisioning_failed',
    `The emergency access could not be provisioned: ${message}`,
    references.length > 0 ? { references } : {},
  );
}

/** Revokes the grants still active among `requestIds`, as the activation's emergency principal. */
export async function releaseGrants(
  ctx: BreakGlassContext,
  activation: Activation,
  requestIds: readonly string[],
  reason: string,
  from: RequestOrigin | null,
): Promise<void> {
  const principal = emergencyPrincipal(activation);
  const origin = from ?? { sourceIp: null, userAgent: null, channel: 'system' };
  for (const requestId of requestIds) {
    const request = await ctx.deps.store.requests.get(requestId);
    const grantId = await ctx.deps.access.grantIdOf(requestId);
    if (!request || !grantId || request.state !== 'active') continue;
    await ctx.deps.access.revoke(principal, grantId, reason, origin);
  }
}
