/**
 * Recording a finished drill: the client's checks plus the server's own, which it does not take on
 * trust, kept as a report and audited. One record per drill activation, dated when the activation
 * ended; only a passed drill keeps the account's drills fresh (see `accountOverview`).
 */
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { collectEvidence } from '../break-glass-admin.js';
import { alert } from './audit-and-alerts.js';
import { type BreakGlassContext, configuredAccount, loadActivation } from './context.js';
import { custodianActor } from './identities.js';
import { activationByHandle } from './initiator-handle.js';
import { tick } from './periodic-pass.js';
import { refuse } from './refusals.js';
import type { DrillCheck } from './types.js';

/**
 * Records a finished drill (by the initiator's handle): the client's checks (e.g. that a role
 * outside the scope was refused, that a login after the end failed) plus the server's own, which
 * it does not take on trust: the drill ended, its grants stayed inside the scope and ended on
 * time, and every step is in the audit log.
 */
export async function recordDrill(
  ctx: BreakGlassContext,
  activationId: string,
  handle: string,
  clientChecks: readonly DrillCheck[],
  from: RequestOrigin,
): Promise<{ id: string; passed: boolean; report: Record<string, unknown> }> {
  const stored = await activationByHandle(ctx, activationId, handle, 'drill', from);
  await tick(ctx);
  const a = (await loadActivation(ctx, activationId)).activation;
  if (!a.drill || !(a.state === 'ended' || a.state === 'reviewed')) {
    return refuse(
      ctx,
      new PortcullisError(
        'invalid_transition',
        a.drill ? `The drill is ${a.state}, not ended yet` : 'This activation is not a drill',
        {
          state: a.state,
        },
      ),
      a.accountId,
      a.initiatorId,
      'drill',
      from,
      a,
    );
  }
  // INVARIANT: one record per drill activation (also a unique index): posting the report again
  // must not make the account look freshly drilled.
  if (await ctx.deps.store.breakGlass.getDrillByActivation(activationId))
    return refuse(
      ctx,
      new PortcullisError(
        'drill_already_recorded',
        `The drill of activation ${activationId} was already recorded`,
        {
          activationId,
        },
      ),
      a.accountId,
      a.initiatorId,
      'drill',
      from,
      a,
    );
  const now = ctx.deps.clock.now();
  // The drill happened when its activation ended, not when the report was posted.
  const drilledAt = a.endedAt ?? now;
  const account = configuredAccount(ctx, a.accountId);
  const evidence = await collectEvidence(ctx.deps.store, activationId, now);
  const types = new Set(evidence.auditEvents.map((e) => e.type));
  const toleranceMs = 5_000;
  const checks: DrillCheck[] = [
    {
      name: 'quorum',
      passed: a.confirmerIds.length + 1 >= a.quorum && !a.confirmerIds.includes(a.initiatorId),
      detail: `initiator ${a.initiatorId}, confirmers ${a.confirmerIds.join(', ')}, quorum ${a.quorum}`,
    },
    {
      name: 'grants within scope',
      passed:
        evidence.grants.length === a.scope.roles.length &&
        evidence.grants.every((g) => account.scope.roles.includes(g.role)) &&
        a.scope.resourceId === account.scope.resourceId,
      detail: `granted ${evidence.grants.map((g) => g.role).join(', ')} on ${a.scope.resourceId}; account scope ${account.scope.roles.join(', ')}`,
    },
    {
      name: 'access ended on time',
      passed:
        a.expiresAt !== null &&
        evidence.grants.length > 0 &&
        evidence.grants.every(
          (g) =>
            g.status === 'revoked' &&
            Date.parse(g.expiresAt) <= (a.expiresAt as number) + 1_000 &&
            g.revokedAt !== null &&
            Date.parse(g.revokedAt) <= Math.min(Date.parse(g.expiresAt), a.expiresAt as number) + toleranceMs,
        ),
      detail: evidence.grants
        .map((g) => `${g.grantId}: ${g.status}, until ${g.expiresAt}, revoked ${g.revokedAt ?? 'never'}`)
        .join('; '),
    },
    ...[
      'break_glass.initiated',
      'break_glass.confirmed',
      'break_glass.activated',
      'grant.activated',
      'grant.revocation_completed',
      'break_glass.ended',
    ].map((type) => ({ name: `audit: ${type}`, passed: types.has(type as never), detail: type })),
  ];
  const all = [
    ...checks.map((c) => ({ ...c, by: 'server' })),
    ...clientChecks.map((c) => ({ ...c, by: 'client' })),
  ];
  const passed = all.every((c) => c.passed) && clientChecks.length > 0;
  const report = {
    drillOf: a.accountId,
    activationId,
    recordedAt: new Date(now).toISOString(),
    drilledAt: new Date(drilledAt).toISOString(),
    passed,
    checks: all,
    activation: {
      initiatedAt: a.initiatedAt,
      activatedAt: a.activatedAt,
      expiresAt: a.expiresAt,
      endedAt: a.endedAt,
    },
    auditEvents: evidence.auditEvents.map((e) => ({ seq: e.seq, type: e.type, at: e.at, actor: e.actor })),
  };
  const id = ctx.deps.newId();
  await ctx.deps.store.transaction(async (tx) => {
    await tx.breakGlass.insertDrill({
      id,
      accountId: a.accountId,
      activationId,
      at: drilledAt,
      passed,
      report: JSON.stringify(report),
    });
    await tx.audit.append(
      {
        type: 'break_glass.drill_recorded',
        actor: custodianActor(stored.activation.initiatorId),
        severity: 'high',
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        resourceId: a.scope.resourceId,
        data: {
          accountId: a.accountId,
          activationId,
          drillId: id,
          passed,
          failed: all.filter((c) => !c.passed).map((c) => c.name),
        },
      },
      now,
    );
  });
  alert(
    ctx,
    'drill_completed',
    a.accountId,
    a,
    now,
    `Break-glass drill on ${a.accountId} ${passed ? 'PASSED' : 'FAILED'}`,
  );
  return { id, passed, report };
}
