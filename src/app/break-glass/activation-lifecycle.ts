/**
 * A custodian opens an activation; others confirm it until the quorum, which grants the access at
 * once. Both steps authenticate the custodian first and refuse (audited) anything the pure rules of
 * `src/break-glass/activation.ts` do not allow.
 */
import type { Activation } from '../../break-glass/activation.js';
import * as bg from '../../break-glass/activation.js';
import { shortenDrill } from '../../break-glass/drill.js';
import type { AuditEventInput, RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { expireWindow } from './activation-closing.js';
import { alert } from './audit-and-alerts.js';
import { type BreakGlassContext, loadActivation, maxCasAttempts } from './context.js';
import { authenticate, checkShares } from './custodian-auth.js';
import { emergencyRequests, provision } from './emergency-grants.js';
import { custodianActor } from './identities.js';
import { hashHandle, newHandle } from './initiator-handle.js';
import { accountOrRefuse, refuse } from './refusals.js';
import type { CustodianProof, InitiateRequest } from './types.js';

/**
 * A custodian opens an activation. Returns it with the initiator's **handle**: a random bearer
 * secret, shown once, that alone lets them see status, fetch the credentials and end the access.
 */
export async function initiate(
  ctx: BreakGlassContext,
  input: InitiateRequest,
  from: RequestOrigin,
): Promise<{ activation: Activation; handle: string }> {
  const account = await accountOrRefuse(ctx, input.accountId, input.proof.custodianId, 'initiate', from);
  await authenticate(ctx, account, input.proof, 'initiate', from);
  if (account.sealed) await checkShares(ctx, account, input.proof, input.shares ?? [], from);
  const now = ctx.deps.clock.now();
  let activation: Activation;
  try {
    activation = bg.initiate(
      account,
      input.proof.custodianId,
      {
        id: ctx.deps.newId(),
        reason: input.reason,
        incident: input.incident,
        scope: {
          resourceId: input.resourceId ?? account.scope.resourceId,
          roles: input.roles && input.roles.length > 0 ? input.roles : account.scope.roles,
        },
        durationMinutes: input.durationMinutes,
        drill: input.drill === true,
      },
      now,
    );
  } catch (error) {
    if (error instanceof PortcullisError)
      return refuse(ctx, error, account.id, input.proof.custodianId, 'initiate', from);
    throw error;
  }
  const handle = newHandle();
  await ctx.deps.store.transaction(async (tx) => {
    await tx.breakGlass.insertActivation({ activation, handleHash: hashHandle(handle), requestIds: [] });
    await tx.audit.append(
      {
        type: 'break_glass.initiated',
        actor: custodianActor(activation.initiatorId),
        severity: 'high',
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        resourceId: activation.scope.resourceId,
        reason: activation.reason,
        data: {
          accountId: account.id,
          activationId: activation.id,
          drill: activation.drill,
          incident: activation.incident,
          roles: activation.scope.roles,
          durationMinutes: activation.durationMinutes,
          quorum: activation.quorum,
          windowEndsAt: activation.windowEndsAt,
        },
      },
      now,
    );
  });
  alert(
    ctx,
    'initiated',
    account.id,
    activation,
    now,
    `Break-glass${activation.drill ? ' DRILL' : ''} INITIATED on ${account.id} by ${activation.initiatorId}: ${activation.reason} (${activation.incident}); confirm before ${new Date(activation.windowEndsAt).toISOString()}`,
  );
  return { activation, handle };
}

/** Another custodian confirms; reaching the quorum grants the access at once. */
export async function confirm(
  ctx: BreakGlassContext,
  activationId: string,
  accountId: string | undefined,
  proof: CustodianProof,
  from: RequestOrigin,
): Promise<Activation> {
  const found = await ctx.deps.store.breakGlass.getActivation(activationId);
  if (!found || (accountId !== undefined && found.activation.accountId !== accountId)) {
    return refuse(
      ctx,
      new PortcullisError('not_found', `No activation ${activationId}`),
      accountId ?? 'unknown',
      proof.custodianId,
      'confirm',
      from,
    );
  }
  const account = await accountOrRefuse(ctx, found.activation.accountId, proof.custodianId, 'confirm', from);
  await authenticate(ctx, account, proof, 'confirm', from, found.activation);
  for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
    const current = await loadActivation(ctx, activationId);
    const now = ctx.deps.clock.now();
    const lapsed = await expireWindow(ctx, current, now);
    if (lapsed) {
      return refuse(
        ctx,
        new PortcullisError('confirmation_window_closed', 'The confirmation window has passed', {
          windowEndedAt: new Date(current.activation.windowEndsAt).toISOString(),
        }),
        account.id,
        proof.custodianId,
        'confirm',
        from,
        lapsed,
      );
    }
    let updated: Activation;
    try {
      updated = bg.confirm(current.activation, proof.custodianId, now);
    } catch (error) {
      if (error instanceof PortcullisError)
        return refuse(ctx, error, account.id, proof.custodianId, 'confirm', from, current.activation);
      throw error;
    }
    updated = shortenDrill(updated, ctx.deps.settings.drillAccessSeconds * 1000);
    const becameActive = updated.state === 'active';
    const requests = becameActive ? emergencyRequests(ctx, updated, now) : [];
    const won = await ctx.deps.store.transaction(async (tx) => {
      if (
        !(await tx.breakGlass.updateActivation(
          updated,
          current.activation.version,
          becameActive ? requests.map((r) => r.id) : undefined,
        ))
      )
        return false;
      const base = {
        actor: custodianActor(proof.custodianId),
        severity: 'high' as const,
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        resourceId: updated.scope.resourceId,
      };
      const events: AuditEventInput[] = [
        {
          ...base,
          type: 'break_glass.confirmed',
          data: {
            accountId: account.id,
            activationId,
            confirmers: updated.confirmerIds,
            quorum: updated.quorum,
          },
        },
      ];
      if (becameActive) {
        for (const request of requests) {
          await tx.requests.insert(request);
          events.push({
            type: 'request.created',
            actor: 'system',
            severity: 'high',
            requestId: request.id,
            resourceId: request.resourceId,
            reason: request.reason,
            policyIds: [request.route.policyId],
            data: {
              role: request.role,
              durationSeconds: request.durationSeconds,
              activationId,
              ticket: request.ticket,
            },
          });
        }
        events.push({
          ...base,
          actor: 'system',
          type: 'break_glass.activated',
          reason: updated.reason,
          data: {
            accountId: account.id,
            activationId,
            drill: updated.drill,
            initiator: updated.initiatorId,
            confirmers: updated.confirmerIds,
            roles: updated.scope.roles,
            activatedAt: updated.activatedAt,
            expiresAt: updated.expiresAt,
            requestIds: requests.map((r) => r.id),
          },
        });
      }
      await tx.audit.appendAll(events.map((event) => ({ event, at: now })));
      return true;
    });
    if (!won) continue;
    alert(
      ctx,
      'confirmed',
      account.id,
      updated,
      now,
      `Break-glass on ${account.id} confirmed by ${proof.custodianId}`,
    );
    if (!becameActive) return updated;
    alert(
      ctx,
      'activated',
      account.id,
      updated,
      now,
      `Break-glass${updated.drill ? ' DRILL' : ''} ACTIVE on ${account.id} until ${new Date(updated.expiresAt ?? now).toISOString()} (initiator ${updated.initiatorId})`,
    );
    return provision(
      ctx,
      updated,
      requests.map((r) => r.id),
    );
  }
  throw new PortcullisError('conflict', 'The activation kept changing; try again');
}
