/**
 * The access report an auditor asks for (SOC 2 CC6.1–6.3, ISO 27001 A.5.18, NIST AC-2), built from
 * the audit log alone: who held which access when and who approved it, the decisions of the period,
 * break-glass activations and whether each was reviewed, drills, and what reconciliation found that
 * no grant accounted for (standing privileges; should be none). Pure: events in, report out; the
 * CLI feeds it a verified export (`portcullis audit report`), so the report is as trustworthy as
 * the signed log it comes from.
 *
 * @example
 *   const report = new AccessReportBuilder({ from, to });
 *   for (const event of events) report.push(event);
 *   const { access, decisions, breakGlass, findings } = report.finish();
 */
import type { HashedEventFields } from './hash.js';

export interface ReportPeriod {
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
}

/** One grant that was live at some time in the period. */
export interface AccessHeld {
  readonly grantId: string;
  readonly requestId: string;
  readonly principal: string;
  readonly resource: string;
  readonly role: string;
  readonly reason: string | null;
  readonly ticket: string | null;
  /** `approvers`: the people in `approvers`; `auto`: a policy approved it; `break_glass`: an emergency activation. */
  readonly approvedBy: 'approvers' | 'auto' | 'break_glass' | 'unknown';
  readonly approvers: readonly string[];
  readonly policyIds: readonly string[];
  readonly activationId: string | null;
  readonly startedAt: number;
  readonly expiresAt: number | null;
  /** When it was ended (expired, revoked, released); null while live at the end of the log. */
  readonly endedAt: number | null;
  readonly end: 'expired' | 'revoked' | 'released' | null;
  readonly endedBy: string | null;
  /** When the target confirmed the access gone (revocation completed). */
  readonly removedAt: number | null;
}

export interface Decision {
  readonly requestId: string;
  readonly at: number;
  readonly requester: string | null;
  readonly resource: string | null;
  readonly role: string | null;
  readonly outcome: 'approved' | 'denied' | 'denied_by_policy' | 'cancelled' | 'lapsed';
  /** Who decided: the approvers, the denier, `system` for a policy or a lapse. */
  readonly by: readonly string[];
  readonly policyIds: readonly string[];
  readonly reason: string | null;
}

export interface BreakGlassUse {
  readonly activationId: string;
  readonly account: string;
  readonly drill: boolean;
  readonly initiator: string;
  readonly confirmers: readonly string[];
  readonly reason: string | null;
  readonly activatedAt: number;
  readonly endedAt: number | null;
  readonly reviewedAt: number | null;
  readonly reviewedBy: string | null;
  readonly rotatedAt: number | null;
}

export interface DrillRecord {
  readonly at: number;
  readonly account: string;
  readonly activationId: string;
  readonly passed: boolean;
  readonly failedChecks: readonly string[];
}

export interface DriftFinding {
  readonly at: number;
  readonly run: string;
  readonly resource: string | null;
  readonly kind: string;
  readonly grant: string;
  /** `taken_back`, `take_back_failed`, `reported` (missing at the target), or `pending` when the log ends first. */
  readonly outcome: string;
}

/** A login holding access at a target without a grant, as reconciliation reported it. */
export interface StandingReported {
  readonly at: number;
  readonly resource: string | null;
  readonly holder: string;
  /** The mapped role that gives it, or `superuser`. */
  readonly via: string;
}

/** Something that should not happen, found in the log. */
export interface Anomaly {
  readonly kind:
    | 'self_approval'
    | 'grant_without_approval'
    | 'break_glass_not_reviewed'
    | 'drill_failed'
    | 'access_not_removed';
  readonly at: number;
  readonly detail: string;
}

export interface AccessReport {
  readonly period: ReportPeriod;
  /** Events read, and the last one's seq. */
  readonly events: number;
  readonly lastSeq: number;
  /**
   * The first event read (its seq is above 1 after a retention cut), and the time from which the log
   * is complete: the signed time of the checkpoint it was cut at (everything after it is kept), else
   * the first event's time. Null for an empty log.
   */
  readonly logBegins: { readonly seq: number; readonly at: number } | null;
  /**
   * False when retention removed events from the period's start: access granted and decisions
   * made before `logBegins` are missing from the report.
   */
  readonly coversPeriod: boolean;
  readonly access: readonly AccessHeld[];
  readonly decisions: readonly Decision[];
  readonly breakGlass: readonly BreakGlassUse[];
  readonly drills: readonly DrillRecord[];
  /** Reconciliation runs completed in the period: the evidence that the control ran. */
  readonly reconcileRuns: number;
  readonly findings: readonly DriftFinding[];
  /** Standing access reported in the period, once per resource, holder and role (the latest report). */
  readonly standing: readonly StandingReported[];
  readonly anomalies: readonly Anomaly[];
}

interface RequestFacts {
  requester: string | null;
  resource: string | null;
  role: string | null;
  reason: string | null;
  ticket: string | null;
  activationId: string | null;
  approvedBy: AccessHeld['approvedBy'];
  approvers: string[];
  policyIds: readonly string[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A revocation normally completes within a second; past this its missing confirmation is an anomaly. */
const removalGraceMs = 15 * 60_000;

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const number = (value: unknown): number | null => (typeof value === 'number' ? value : null);
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** Builds the report one event at a time, in log order; memory grows with grants and requests, not events. */
export class AccessReportBuilder {
  readonly #period: ReportPeriod;
  readonly #requests = new Map<string, RequestFacts>();
  readonly #grants = new Map<string, Mutable<AccessHeld>>();
  readonly #decisions: Decision[] = [];
  readonly #breakGlass = new Map<string, Mutable<BreakGlassUse>>();
  readonly #drills: DrillRecord[] = [];
  readonly #findings: Mutable<DriftFinding>[] = [];
  readonly #anomalies: Anomaly[] = [];
  readonly #standing = new Map<string, StandingReported>();
  /** Grants whose activation failed, by id, until their cleanup is confirmed. */
  readonly #failedGrants = new Map<string, { at: number; resource: string | null }>();
  #lastAt = 0;
  #reconcileRuns = 0;
  #events = 0;
  #lastSeq = 0;
  #logBegins: { seq: number; at: number } | null = null;

  constructor(period: ReportPeriod) {
    this.#period = period;
  }

  #inPeriod(at: number): boolean {
    return at >= this.#period.from && at < this.#period.to;
  }

  push(event: HashedEventFields): void {
    this.#events++;
    this.#logBegins ??= { seq: event.seq, at: event.at };
    this.#lastSeq = event.seq;
    this.#lastAt = Math.max(this.#lastAt, event.at);
    const data = event.data;
    const requestId = event.request_id;
    switch (event.type) {
      case 'request.created':
        if (requestId) {
          const activationId = text(data.activationId);
          this.#requests.set(requestId, {
            requester: activationId ? null : event.actor,
            resource: event.resource_id,
            role: text(data.role),
            reason: event.reason,
            ticket: text(data.ticket),
            activationId,
            approvedBy: activationId ? 'break_glass' : 'unknown',
            approvers: [],
            policyIds: event.policy_ids,
          });
        }
        return;
      case 'request.approved':
        return this.#approved(event);
      case 'request.denied':
      case 'request.denied_by_policy':
      case 'request.cancelled':
      case 'request.expired':
        return this.#ended(event);
      case 'grant.activated':
        return this.#activated(event);
      case 'grant.expired':
      case 'grant.revoked':
      case 'grant.released':
        return this.#grantEnded(event);
      case 'grant.revocation_completed': {
        const grant = event.grant_id ? this.#grants.get(event.grant_id) : undefined;
        if (grant && grant.removedAt === null) grant.removedAt = event.at;
        if (event.grant_id) this.#failedGrants.delete(event.grant_id);
        return;
      }
      case 'grant.failed':
        if (event.grant_id)
          this.#failedGrants.set(event.grant_id, { at: event.at, resource: event.resource_id });
        return;
      case 'break_glass.activated':
      case 'break_glass.ended':
      case 'break_glass.reviewed':
      case 'break_glass.rotated':
        return this.#breakGlassEvent(event);
      case 'break_glass.drill_recorded':
        if (this.#inPeriod(event.at)) {
          const drill: DrillRecord = {
            at: event.at,
            account: text(data.accountId) ?? '',
            activationId: text(data.activationId) ?? '',
            passed: data.passed === true,
            failedChecks: strings(data.failed),
          };
          this.#drills.push(drill);
          if (!drill.passed) {
            this.#anomalies.push({
              kind: 'drill_failed',
              at: event.at,
              detail: `drill of ${drill.account} failed: ${drill.failedChecks.join(', ') || 'no check named'}`,
            });
          }
        }
        return;
      case 'reconcile.completed':
        if (this.#inPeriod(event.at)) this.#reconcileRuns++;
        return;
      case 'reconcile.drift_found':
        if (this.#inPeriod(event.at)) {
          this.#findings.push({
            at: event.at,
            run: text(data.run) ?? '',
            resource: event.resource_id,
            kind: text(data.kind) ?? '',
            grant: text(data.grant) ?? '',
            outcome: data.action === 'reported' ? 'reported' : 'pending',
          });
        }
        return;
      case 'reconcile.standing_found':
        if (this.#inPeriod(event.at)) {
          const found: StandingReported = {
            at: event.at,
            resource: event.resource_id,
            holder: text(data.holder) ?? '',
            via: text(data.via) ?? '',
          };
          this.#standing.set(JSON.stringify([found.resource, found.holder, found.via]), found);
        }
        return;
      case 'reconcile.taken_back':
      case 'reconcile.take_back_failed': {
        const finding = this.#findings.findLast(
          (f) => f.run === text(data.run) && f.grant === text(data.grant) && f.outcome === 'pending',
        );
        if (finding)
          finding.outcome = event.type === 'reconcile.taken_back' ? 'taken_back' : 'take_back_failed';
        return;
      }
      default:
        return;
    }
  }

  #approved(event: HashedEventFields): void {
    const facts = event.request_id ? this.#requests.get(event.request_id) : undefined;
    const approvers = strings(event.data.approvals);
    if (facts && facts.approvedBy !== 'break_glass') {
      facts.approvedBy = event.actor === 'system' ? 'auto' : 'approvers';
      facts.approvers = approvers;
      facts.policyIds = event.policy_ids.length > 0 ? event.policy_ids : facts.policyIds;
      if (facts.requester && approvers.includes(facts.requester)) {
        this.#anomalies.push({
          kind: 'self_approval',
          at: event.at,
          detail: `request ${event.request_id} was approved by its requester ${facts.requester}`,
        });
      }
    }
    if (this.#inPeriod(event.at) && event.request_id) {
      this.#decisions.push({
        ...this.#decisionBase(event, facts),
        outcome: 'approved',
        by: event.actor === 'system' ? ['system'] : approvers,
      });
    }
  }

  #ended(event: HashedEventFields): void {
    if (!this.#inPeriod(event.at) || !event.request_id) return;
    const facts = this.#requests.get(event.request_id);
    const outcome: Decision['outcome'] =
      event.type === 'request.denied'
        ? 'denied'
        : event.type === 'request.denied_by_policy'
          ? 'denied_by_policy'
          : event.type === 'request.cancelled'
            ? 'cancelled'
            : 'lapsed';
    this.#decisions.push({ ...this.#decisionBase(event, facts), outcome, by: [event.actor] });
  }

  #decisionBase(event: HashedEventFields, facts: RequestFacts | undefined) {
    return {
      requestId: event.request_id as string,
      at: event.at,
      requester: facts?.requester ?? (event.type === 'request.denied_by_policy' ? event.actor : null),
      resource: facts?.resource ?? event.resource_id,
      role: facts?.role ?? text(event.data.role),
      policyIds: event.policy_ids,
      reason: event.reason,
    };
  }

  #activated(event: HashedEventFields): void {
    if (!event.grant_id || !event.request_id) return;
    const facts = this.#requests.get(event.request_id);
    const data = event.data;
    const principal = text(data.principal) ?? facts?.requester ?? '';
    const approvedBy = facts?.approvedBy ?? 'unknown';
    if (approvedBy === 'unknown') {
      this.#anomalies.push({
        kind: 'grant_without_approval',
        at: event.at,
        detail: `grant ${event.grant_id} (request ${event.request_id}) began with no approval in the log`,
      });
    }
    this.#grants.set(event.grant_id, {
      grantId: event.grant_id,
      requestId: event.request_id,
      principal,
      resource: event.resource_id ?? facts?.resource ?? '',
      role: text(data.role) ?? facts?.role ?? '',
      reason: facts?.reason ?? null,
      ticket: facts?.ticket ?? null,
      approvedBy,
      approvers: facts?.approvers ?? [],
      policyIds: facts?.policyIds ?? [],
      activationId: facts?.activationId ?? null,
      startedAt: number(data.notBefore) ?? event.at,
      expiresAt: number(data.expiresAt),
      endedAt: null,
      end: null,
      endedBy: null,
      removedAt: null,
    });
  }

  #grantEnded(event: HashedEventFields): void {
    const grant = event.grant_id ? this.#grants.get(event.grant_id) : undefined;
    if (!grant || grant.endedAt !== null) return;
    grant.endedAt = event.at;
    grant.end =
      event.type === 'grant.expired' ? 'expired' : event.type === 'grant.revoked' ? 'revoked' : 'released';
    grant.endedBy = event.actor;
  }

  #breakGlassEvent(event: HashedEventFields): void {
    const data = event.data;
    if (event.type === 'break_glass.rotated') {
      for (const id of strings(data.activations)) {
        const use = this.#breakGlass.get(id);
        if (use && use.rotatedAt === null) use.rotatedAt = event.at;
      }
      return;
    }
    const activationId = text(data.activationId);
    if (!activationId) return;
    if (event.type === 'break_glass.activated') {
      this.#breakGlass.set(activationId, {
        activationId,
        account: text(data.accountId) ?? '',
        drill: data.drill === true,
        initiator: text(data.initiator) ?? '',
        confirmers: strings(data.confirmers),
        reason: event.reason,
        activatedAt: number(data.activatedAt) ?? event.at,
        endedAt: null,
        reviewedAt: null,
        reviewedBy: null,
        rotatedAt: null,
      });
      return;
    }
    const use = this.#breakGlass.get(activationId);
    if (!use) return;
    if (event.type === 'break_glass.ended' && use.endedAt === null) use.endedAt = event.at;
    if (event.type === 'break_glass.reviewed' && use.reviewedAt === null) {
      use.reviewedAt = event.at;
      use.reviewedBy = event.actor;
    }
  }

  /**
   * @param anchor after a retention cut: the signed checkpoint the verified export hangs from (the
   *   verifier's `anchor`), whose time is when the log becomes complete.
   */
  finish(anchor?: { readonly seq: number; readonly at: number }): AccessReport {
    if (anchor !== undefined && this.#logBegins?.seq === anchor.seq + 1) this.#logBegins.at = anchor.at;
    const { from, to } = this.#period;
    const overlaps = (start: number, end: number | null) => start < to && (end === null || end > from);
    // Access counts as held until the target confirmed it gone, not merely until it was ended.
    const access = [...this.#grants.values()]
      .filter((g) => overlaps(g.startedAt, g.removedAt))
      .sort((a, b) => a.startedAt - b.startedAt);
    const breakGlass = [...this.#breakGlass.values()]
      .filter((b) => overlaps(b.activatedAt, b.endedAt))
      .sort((a, b) => a.activatedAt - b.activatedAt);
    const anomalies = this.#anomalies.filter((a) => this.#inPeriod(a.at));
    // Ended (or failed) long enough before the log ends that its removal should have been confirmed.
    const settled = (at: number) => at < this.#lastAt - removalGraceMs && at < to;
    for (const g of access) {
      if (g.endedAt !== null && g.removedAt === null && settled(g.endedAt)) {
        anomalies.push({
          kind: 'access_not_removed',
          at: g.endedAt,
          detail: `grant ${g.grantId} (${g.principal}, ${g.resource}/${g.role}) ended but the target never confirmed its removal`,
        });
      }
    }
    for (const [grantId, failed] of this.#failedGrants) {
      if (settled(failed.at) && failed.at >= from) {
        anomalies.push({
          kind: 'access_not_removed',
          at: failed.at,
          detail: `grant ${grantId} on ${failed.resource ?? '?'} failed to activate and its cleanup was never confirmed`,
        });
      }
    }
    for (const use of breakGlass) {
      if (!use.drill && use.reviewedAt === null) {
        anomalies.push({
          kind: 'break_glass_not_reviewed',
          at: use.activatedAt,
          detail: `activation ${use.activationId} of ${use.account} has no review in the log`,
        });
      }
    }
    return {
      period: this.#period,
      events: this.#events,
      lastSeq: this.#lastSeq,
      logBegins: this.#logBegins,
      coversPeriod:
        this.#logBegins === null || this.#logBegins.seq === 1 || this.#logBegins.at <= this.#period.from,
      access,
      decisions: this.#decisions,
      breakGlass,
      drills: this.#drills,
      reconcileRuns: this.#reconcileRuns,
      findings: this.#findings,
      standing: [...this.#standing.values()],
      anomalies: anomalies.sort((a, b) => a.at - b.at),
    };
  }
}
