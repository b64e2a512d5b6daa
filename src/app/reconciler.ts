/**
 * Reconciliation: what each target really holds, compared with what Portcullis believes, so that
 * access nobody holds a grant for does not stay behind. For every resource whose provisioner can
 * inspect its target it finds the drift (src/core/drift.ts), takes back what must not be there and
 * reports the rest — every finding and every run in the audit log, before anything is touched.
 *
 * Runs on one replica at a time, every `reconcile.interval` (see {@link Reconciler.runIfDue}), and
 * on demand (`POST /api/v1/reconcile`, `portcullis reconcile`).
 */

import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { type Drift, type DriftKind, findDrift, isTakenBack, type TargetHolding } from '../core/drift.js';
import { PortcullisError } from '../core/errors.js';
import { type Grant, newGrant } from '../core/grant.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import { type StandingAccess, standingKey } from '../core/standing-access.js';
import { failureReference } from './failure-reference.js';
import { LeasedSchedule } from './leased-schedule.js';
import type { OperatorLog, ProvisionerLookup, Store } from './ports.js';
import { recordSecurityEvent } from './security-events.js';

export interface ReconcileMetrics {
  driftFound(resourceId: string, kind: DriftKind): void;
  /** How many holders of standing access the resource's target has now (none is the goal). */
  standingAccess(resourceId: string, count: number): void;
  inspectFailed(resourceId: string): void;
  runCompleted(at: number): void;
}

export interface ReconcilerDeps {
  readonly store: Store;
  readonly provisioners: ProvisionerLookup;
  readonly resources: ReadonlyMap<string, ResourceDefinition>;
  readonly clock: Clock;
  readonly metrics: ReconcileMetrics;
  readonly newId: () => string;
  readonly log?: OperatorLog;
  /** Milliseconds between scheduled runs; null: only on demand. */
  readonly intervalMs: number | null;
  /** This process, for the run lease: `host:pid:uuid`. */
  readonly owner: string;
  readonly isAdmin: (principal: Principal) => boolean;
  /** A scheduled run that failed (a target unreachable is a finding, not a failure: storage is). */
  readonly onError: (error: unknown) => void;
}

export type FindingOutcome = 'taken_back' | 'take_back_failed' | 'reported' | 'reported_before';

export interface Finding {
  readonly kind: DriftKind;
  readonly grantId: string;
  readonly artefacts: TargetHolding['artefacts'];
  readonly outcome: FindingOutcome;
  /** When taking it back failed: the target's text (administrators only) and its reference. */
  readonly error?: string;
  readonly reference?: string;
}

/** Standing access found at a target: reported (once a day while it lasts), never taken back. */
export interface StandingFinding extends StandingAccess {
  readonly outcome: 'reported' | 'reported_before';
}

export interface ResourceReconciliation {
  readonly resourceId: string;
  /**
   * `not_applicable`: the kind keeps nothing in a target to compare (`token`); `inspect_failed`:
   * what the target holds, or its standing access, could not be read.
   */
  readonly outcome: 'checked' | 'not_applicable' | 'inspect_failed';
  /** Pieces of access found in the target. */
  readonly held: number;
  readonly findings: readonly Finding[];
  readonly standing: readonly StandingFinding[];
  readonly error?: string;
  readonly reference?: string;
}

export interface ReconcileReport {
  readonly id: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly trigger: 'schedule' | 'request';
  readonly resources: readonly ResourceReconciliation[];
}

/** The lease row in `notification_cursors` (a channel name cannot contain `:`). */
const leaseName = 'reconcile:';
/**
 * How long a claim on the scheduled runs lasts: a run longer than this may overlap one on another
 * replica (harmless: taking back is idempotent), a replica that dies delays the schedule by at most this.
 */
const leaseMs = 5 * 60_000;
/** After finding the lease held elsewhere, how long before asking again. */
const busyRetryMs = 10_000;
/** Ephemeral-store kind that remembers a missing grant was reported (once per grant, not every run). */
const reportedMissingKind = 'reconcile-missing';
/** Ephemeral-store kind that remembers standing access was reported; again after {@link standingReportEveryMs}. */
const reportedStandingKind = 'reconcile-standing';
const standingReportEveryMs = 24 * 3_600_000;

/** The role a grant Portcullis has no record of is taken back under: revoke needs only artefacts. */
const unknownRole: RoleDefinition = { name: '', description: '', grants: [] };

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 500);
}

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  /** Scheduled runs; null when reconciliation runs only on demand. */
  readonly #schedule: LeasedSchedule | null;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#schedule =
      deps.intervalMs === null
        ? null
        : new LeasedSchedule({
            store: deps.store,
            clock: deps.clock,
            lease: leaseName,
            owner: deps.owner,
            intervalMs: deps.intervalMs,
            leaseMs,
            busyRetryMs,
            // A new installation starts the clock at its first tick: it has nothing to compare yet.
            firstRun: 'after-interval',
            onError: deps.onError,
          });
  }

  /**
   * Called at every expiry-loop tick: starts a scheduled run in the background when one is due,
   * never holding up the tick (inspecting a slow target must not delay an expiry).
   */
  tick(now: number): void {
    this.#schedule?.tick(now, () => this.#scheduledRun());
  }

  /** A scheduled run when one is due and this replica gets the run lease; undefined otherwise. */
  async runIfDue(now: number): Promise<ReconcileReport | undefined> {
    return this.#schedule?.runIfDue(now, () => this.#scheduledRun());
  }

  #scheduledRun(): Promise<ReconcileReport> {
    return this.run('system', { sourceIp: null, userAgent: null, channel: 'system' }, 'schedule');
  }

  /** Waits for a scheduled run in progress and gives the lease up, so another replica takes over at once. */
  async stop(): Promise<void> {
    await this.#schedule?.stop();
  }

  /** A run now, for an administrator (`POST /api/v1/reconcile`); anyone else is refused and audited. */
  async runFor(actor: Principal, from: RequestOrigin): Promise<ReconcileReport> {
    if (!this.#deps.isAdmin(actor)) {
      await recordSecurityEvent(this.#deps.store, actor, 'security.denied', from, this.#deps.clock.now(), {
        reason: 'reconcile refused: not an administrator',
      });
      throw new PortcullisError('forbidden', 'Only administrators may run reconciliation');
    }
    return this.run(actor.id, from, 'request');
  }

  /** One pass over every resource. Findings and the run's summary are audited; fails closed. */
  async run(
    actor: string,
    from: RequestOrigin,
    trigger: ReconcileReport['trigger'],
  ): Promise<ReconcileReport> {
    const { clock, newId, resources } = this.#deps;
    const id = newId();
    const startedAt = clock.now();
    const results: ResourceReconciliation[] = [];
    for (const resource of resources.values()) {
      results.push(await this.#reconcile(resource, { id, actor, from }));
    }
    const report: ReconcileReport = { id, startedAt, finishedAt: clock.now(), trigger, resources: results };
    await this.#append(summaryEvent(report, actor, from));
    this.#deps.metrics.runCompleted(report.finishedAt);
    return report;
  }

  async #reconcile(
    resource: ResourceDefinition,
    run: { readonly id: string; readonly actor: string; readonly from: RequestOrigin },
  ): Promise<ResourceReconciliation> {
    const { store, provisioners } = this.#deps;
    const base = { resourceId: resource.id, held: 0, findings: [], standing: [] };
    let holdings: readonly TargetHolding[] | null;
    let activeBefore: Set<string>;
    let inspectionStartedAt: number;
    try {
      const provisioner = provisioners.get(resource.kind);
      activeBefore = new Set((await this.#activeGrants(resource.id)).map((g) => g.id));
      inspectionStartedAt = this.#deps.clock.now();
      holdings = await provisioner.inspect(resource);
    } catch (error) {
      this.#deps.metrics.inspectFailed(resource.id);
      return { ...base, outcome: 'inspect_failed', ...this.#failure(error, resource.id, 'inspect') };
    }
    if (holdings === null) return { ...base, outcome: 'not_applicable' };

    const grantsAfter = new Map<string, Grant>();
    try {
      for (const holding of holdings) {
        const grant = await store.grants.get(holding.grantId);
        // A grant of another resource cannot be this holding's: treat it as unknown here.
        if (grant && grant.resourceId === resource.id) grantsAfter.set(grant.id, grant);
      }
      for (const grant of await this.#activeGrants(resource.id)) grantsAfter.set(grant.id, grant);
    } catch (error) {
      // A holding the store cannot even look up (a hostile id) fails this resource, not the run.
      this.#deps.metrics.inspectFailed(resource.id);
      return { ...base, outcome: 'inspect_failed', ...this.#failure(error, resource.id, 'look up holdings') };
    }

    const findings: Finding[] = [];
    for (const drift of findDrift({ holdings, grantsAfter, activeBefore, inspectionStartedAt })) {
      this.#deps.metrics.driftFound(resource.id, drift.kind);
      findings.push(await this.#handle(drift, resource, run));
    }
    const checked = { ...base, outcome: 'checked' as const, held: holdings.length, findings };
    const provisioner = provisioners.get(resource.kind);
    if (!provisioner.standing) return checked;
    let standing: readonly StandingAccess[] | null;
    try {
      standing = await provisioner.standing(resource);
    } catch (error) {
      this.#deps.metrics.inspectFailed(resource.id);
      return {
        ...checked,
        outcome: 'inspect_failed',
        ...this.#failure(error, resource.id, 'read standing access'),
      };
    }
    if (standing === null) return checked;
    this.#deps.metrics.standingAccess(resource.id, standing.length);
    const reported: StandingFinding[] = [];
    for (const access of standing) reported.push(await this.#reportStanding(access, resource, run));
    return { ...checked, standing: reported };
  }

  /** Audits standing access once a day while it lasts; Portcullis did not make it and never removes it. */
  async #reportStanding(
    access: StandingAccess,
    resource: ResourceDefinition,
    run: { readonly id: string; readonly actor: string; readonly from: RequestOrigin },
  ): Promise<StandingFinding> {
    const { store, clock } = this.#deps;
    const key = `${resource.id}:${standingKey(access)}`;
    if (await store.ephemeral.peek(reportedStandingKind, key, clock.now())) {
      return { ...access, outcome: 'reported_before' };
    }
    await store.transaction(async (tx) => {
      await tx.audit.append(
        {
          type: 'reconcile.standing_found',
          actor: run.actor,
          severity: 'high',
          sourceIp: run.from.sourceIp,
          userAgent: run.from.userAgent,
          resourceId: resource.id,
          data: { run: run.id, holder: access.holder, via: access.via },
        },
        clock.now(),
      );
      await tx.ephemeral.put(reportedStandingKind, key, '1', clock.now() + standingReportEveryMs);
    });
    return { ...access, outcome: 'reported' };
  }

  async #activeGrants(resourceId: string): Promise<Grant[]> {
    return this.#deps.store.grants.list({ resourceId, statuses: ['active'], limit: 1000 });
  }

  /**
   * Audits the finding first (no event, no action), then takes the access back when it must not be
   * there, and audits how that went.
   */
  async #handle(
    drift: Drift,
    resource: ResourceDefinition,
    run: { readonly id: string; readonly actor: string; readonly from: RequestOrigin },
  ): Promise<Finding> {
    const { clock, store } = this.#deps;
    const grantId = isTakenBack(drift) ? drift.holding.grantId : drift.grant.id;
    const artefacts = isTakenBack(drift) ? drift.holding.artefacts : drift.grant.artefacts;
    const event = (type: AuditEventInput['type'], data: Record<string, unknown>): AuditEventInput => ({
      type,
      actor: run.actor,
      severity: 'high',
      sourceIp: run.from.sourceIp,
      userAgent: run.from.userAgent,
      // An unknown grant has no row to refer to; its id is in the data.
      grantId: drift.kind === 'unknown_grant' ? null : grantId,
      requestId: drift.kind === 'unknown_grant' ? null : drift.grant.requestId,
      resourceId: resource.id,
      data: { run: run.id, kind: drift.kind, grant: grantId, artefacts, ...data },
    });

    if (!isTakenBack(drift)) {
      // Reported once per grant: until the grant ends, later runs would find the same thing.
      const key = `${resource.id}:${grantId}`;
      if (await store.ephemeral.peek(reportedMissingKind, key, clock.now())) {
        return { kind: drift.kind, grantId, artefacts, outcome: 'reported_before' };
      }
      await store.transaction(async (tx) => {
        await tx.audit.append(event('reconcile.drift_found', { action: 'reported' }), clock.now());
        await tx.ephemeral.put(
          reportedMissingKind,
          key,
          '1',
          Math.max(drift.grant.expiresAt, clock.now() + 1),
        );
      });
      return { kind: drift.kind, grantId, artefacts, outcome: 'reported' };
    }

    await this.#append(event('reconcile.drift_found', { action: 'taking_back' }));
    const grant: Grant =
      drift.kind === 'present_after_revocation'
        ? { ...drift.grant, artefacts: { ...drift.grant.artefacts, ...drift.holding.artefacts } }
        : unknownGrant(drift.holding, resource.id);
    const role = resource.roles.get(grant.role) ?? unknownRole;
    try {
      await this.#deps.provisioners
        .get(resource.kind)
        .revoke({ grant, resource, role, takeBack: { run: run.id, drift: drift.kind } });
    } catch (error) {
      const failure = this.#failure(error, resource.id, `take back ${grantId}`);
      await this.#append(event('reconcile.take_back_failed', failure));
      return { kind: drift.kind, grantId, artefacts, outcome: 'take_back_failed', ...failure };
    }
    await this.#append(event('reconcile.taken_back', {}));
    return { kind: drift.kind, grantId, artefacts, outcome: 'taken_back' };
  }

  /** A target's own error text may name its internals: it goes with a reference to the server log. */
  #failure(error: unknown, resourceId: string, what: string): { error: string; reference: string } {
    const text =
      error instanceof PortcullisError && error.code !== 'provisioning_failed'
        ? error.message
        : errorText(error);
    const reference = failureReference(this.#deps.newId);
    this.#deps.log?.warn({ reference, resourceId, error: text }, `reconcile: ${what} failed`);
    return { error: text, reference };
  }

  async #append(event: AuditEventInput): Promise<void> {
    await this.#deps.store.transaction((tx) => tx.audit.append(event, this.#deps.clock.now()));
  }
}

function unknownGrant(holding: TargetHolding, resourceId: string): Grant {
  return {
    ...newGrant({
      id: holding.grantId,
      requestId: '',
      principalId: '',
      resourceId,
      role: '',
      notBefore: 0,
      expiresAt: 0,
      artefacts: holding.artefacts,
    }),
    status: 'revoking',
  };
}

/** The run's evidence: which resources were compared, what was found, what could not be checked. */
function summaryEvent(report: ReconcileReport, actor: string, from: RequestOrigin): AuditEventInput {
  const findings = report.resources.reduce((n, r) => n + r.findings.length + r.standing.length, 0);
  const failed = report.resources.filter((r) => r.outcome === 'inspect_failed');
  return {
    type: 'reconcile.completed',
    actor,
    severity: findings > 0 ? 'high' : failed.length > 0 ? 'warning' : 'info',
    sourceIp: from.sourceIp,
    userAgent: from.userAgent,
    data: {
      run: report.id,
      trigger: report.trigger,
      durationMs: report.finishedAt - report.startedAt,
      resources: report.resources.map((r) => ({
        id: r.resourceId,
        outcome: r.outcome,
        held: r.held,
        findings: r.findings.map((f) => ({ kind: f.kind, grant: f.grantId, outcome: f.outcome })),
        standing: r.standing.map((s) => ({ holder: s.holder, via: s.via })),
        ...(r.reference ? { reference: r.reference } : {}),
      })),
    },
  };
}
