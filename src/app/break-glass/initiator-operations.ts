/**
 * What the initiator does with their handle (status, credentials, ending the access early) and
 * cancelling an attempt, by that handle or by any custodian's proof.
 */
import type { Activation } from '../../break-glass/activation.js';
import * as bg from '../../break-glass/activation.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { StoredActivation } from '../break-glass-ports.js';
import { endActivation } from './activation-closing.js';
import { alert, audit } from './audit-and-alerts.js';
import { type BreakGlassContext, loadActivation, maxCasAttempts } from './context.js';
import { authenticate } from './custodian-auth.js';
import { releaseGrants } from './emergency-grants.js';
import { custodianActor, emergencyPrincipal } from './identities.js';
import { activationByHandle } from './initiator-handle.js';
import { tick } from './periodic-pass.js';
import { accountOrRefuse, refuse } from './refusals.js';
import type { CustodianProof, EmergencyGrantAccess } from './types.js';

/** The activation as it stands after a periodic pass (by handle). */
export async function status(
  ctx: BreakGlassContext,
  activationId: string,
  handle: string,
  from: RequestOrigin,
): Promise<StoredActivation> {
  await activationByHandle(ctx, activationId, handle, 'status', from);
  await tick(ctx);
  return loadActivation(ctx, activationId);
}

/**
 * The access credentials, for the initiator only (by handle): the person who will use the access
 * is the one who declared the reason and the incident; confirmers approve, they do not receive.
 * Every showing is audited before it happens.
 */
export async function credentials(
  ctx: BreakGlassContext,
  activationId: string,
  handle: string,
  from: RequestOrigin,
): Promise<EmergencyGrantAccess[]> {
  const stored = await activationByHandle(ctx, activationId, handle, 'credentials', from);
  const activation = stored.activation;
  const now = ctx.deps.clock.now();
  if (!bg.isActivationLive(activation, now)) {
    return refuse(
      ctx,
      new PortcullisError('invalid_transition', `The activation is ${activation.state}, not active`, {
        state: activation.state,
      }),
      activation.accountId,
      activation.initiatorId,
      'credentials',
      from,
      activation,
    );
  }
  const principal = emergencyPrincipal(activation);
  const resource = ctx.deps.access.resource(activation.scope.resourceId);
  await audit(
    ctx,
    {
      type: 'break_glass.credentials_shown',
      actor: custodianActor(activation.initiatorId),
      resourceId: resource.id,
      data: { accountId: activation.accountId, activationId, requestIds: stored.requestIds },
    },
    from,
    now,
  );
  const inScope = activation.scope.roles.flatMap((r) => resource.roles.get(r)?.grants ?? []);
  const outOfScope = [...resource.roles.values()]
    .filter((r) => !activation.scope.roles.includes(r.name))
    .flatMap((r) => r.grants)
    .filter((g) => !inScope.includes(g));
  const probe = activation.drill ? { outOfScope } : {};
  const out: EmergencyGrantAccess[] = [];
  for (const requestId of stored.requestIds) {
    const grantId = await ctx.deps.access.grantIdOf(requestId);
    if (!grantId) continue;
    const grant = await ctx.deps.store.grants.get(grantId);
    if (!grant) continue;
    if (resource.kind === 'token') {
      const issued = await ctx.deps.access.issueToken(principal, grantId, from);
      out.push({ grantId, role: grant.role, expiresAt: grant.expiresAt, token: issued.token, ...probe });
    } else {
      const credentials = await ctx.deps.access.credentialsIfAny(principal, grantId, from);
      out.push({
        grantId,
        role: grant.role,
        expiresAt: grant.expiresAt,
        ...(credentials ? { credentials } : {}),
        ...probe,
      });
    }
  }
  return out;
}

/** The initiator ends the access early (by handle): grants are released at once. */
export async function end(
  ctx: BreakGlassContext,
  activationId: string,
  handle: string,
  from: RequestOrigin,
): Promise<Activation> {
  const stored = await activationByHandle(ctx, activationId, handle, 'end', from);
  if (stored.activation.state !== 'active') {
    return refuse(
      ctx,
      new PortcullisError('invalid_transition', `The activation is ${stored.activation.state}, not active`),
      stored.activation.accountId,
      stored.activation.initiatorId,
      'end',
      from,
      stored.activation,
    );
  }
  await releaseGrants(ctx, stored.activation, stored.requestIds, 'ended by the initiator', from);
  return (
    (await endActivation(ctx, activationId, stored.activation.initiatorId, 'ended_by_user', from)) ??
    stored.activation
  );
}

/** Withdraws an attempt before it is active: by the initiator's handle or any custodian's proof. */
export async function cancel(
  ctx: BreakGlassContext,
  activationId: string,
  auth: { readonly handle: string } | { readonly proof: CustodianProof },
  from: RequestOrigin,
): Promise<Activation> {
  let stored: StoredActivation;
  let custodianId: string;
  if ('handle' in auth) {
    stored = await activationByHandle(ctx, activationId, auth.handle, 'cancel', from);
    // The initiator cancelling once the access is active means: end it now.
    if (stored.activation.state === 'active') return end(ctx, activationId, auth.handle, from);
    custodianId = stored.activation.initiatorId;
  } else {
    const found = await ctx.deps.store.breakGlass.getActivation(activationId);
    if (!found)
      return refuse(
        ctx,
        new PortcullisError('not_found', `No activation ${activationId}`),
        'unknown',
        auth.proof.custodianId,
        'cancel',
        from,
      );
    const account = await accountOrRefuse(
      ctx,
      found.activation.accountId,
      auth.proof.custodianId,
      'cancel',
      from,
    );
    await authenticate(ctx, account, auth.proof, 'cancel', from, found.activation);
    stored = found;
    custodianId = auth.proof.custodianId;
  }
  for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
    const current = await loadActivation(ctx, activationId);
    const now = ctx.deps.clock.now();
    let cancelled: Activation;
    try {
      cancelled = bg.cancel(current.activation, custodianId, now);
    } catch (error) {
      if (error instanceof PortcullisError)
        return refuse(
          ctx,
          error,
          stored.activation.accountId,
          custodianId,
          'cancel',
          from,
          current.activation,
        );
      throw error;
    }
    const won = await ctx.deps.store.transaction(async (tx) => {
      if (!(await tx.breakGlass.updateActivation(cancelled, current.activation.version))) return false;
      await tx.audit.append(
        {
          type: 'break_glass.cancelled',
          actor: custodianActor(custodianId),
          severity: 'high',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          resourceId: cancelled.scope.resourceId,
          data: { accountId: cancelled.accountId, activationId },
        },
        now,
      );
      return true;
    });
    if (!won) continue;
    alert(
      ctx,
      'cancelled',
      cancelled.accountId,
      cancelled,
      now,
      `Break-glass on ${cancelled.accountId} cancelled by ${custodianId}`,
    );
    return cancelled;
  }
  throw new PortcullisError('conflict', 'The activation kept changing; try again');
}
