/**
 * The Cedar policy engine: decides `request`, `approve`, `revoke` and `view_audit` with
 * `@cedar-policy/cedar-wasm`, and reads approval routes from the permit policies' annotations.
 *
 * Decision rules:
 * - Forbid wins; with no permit the answer is deny, with a reason naming what was asked.
 * - Fail closed: if any policy could not be evaluated (Cedar reports an error, e.g. an arithmetic
 *   overflow), the decision is deny with Cedar's error text, whatever the other policies say.
 * - `@max_duration` is part of what a permit allows: a permit whose maximum is shorter than the
 *   requested duration does not allow that request. If every satisfied permit is too short, the
 *   request is denied with the longest maximum on offer.
 * - Among the permits that allow a request, the STRICTEST route is chosen: most required approvals,
 *   then the shortest maximum duration, then not auto-approved, then the lowest policy id (code-unit
 *   order). The decision's `policyIds` are those permits, sorted.
 */

import './v8-workaround.js';
import { readFileSync } from 'node:fs';
import { type EntityJson, statefulIsAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyEngine } from '../app/ports.js';
import { formatDuration } from '../config/duration.js';
import { PortcullisError } from '../core/errors.js';
import type {
  ApprovalRoute,
  PolicyAction,
  PolicyContext,
  PolicyDecision,
  RequestDecision,
} from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import { actionUid, auditLogUid, roleEntity, roleUid, userEntity, userUid } from './cedar-entities.js';
import { strictestRoute } from './policy-annotations.js';
import { isKnownTimeZone, type PolicyClockReading, policyClock, toCedarContext } from './policy-context.js';
import { PolicySetIndex } from './policy-index.js';
import { type LoadedPolicy, loadPolicySet, type PolicySource } from './policy-loader.js';

export interface CedarPolicyEngineOptions {
  /** IANA zone in which policies see `hour` and `weekday` (the configuration's `time_zone`). */
  readonly timeZone: string;
}

/** What Cedar said about one request, before Portcullis turns it into a decision. */
type Evaluation =
  | { readonly outcome: 'allow'; readonly permits: readonly string[] }
  | { readonly outcome: 'forbid'; readonly forbids: readonly string[] }
  | { readonly outcome: 'no_permit' }
  | { readonly outcome: 'error'; readonly policyIds: readonly string[]; readonly message: string };

function sorted(ids: readonly string[]): string[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export class CedarPolicyEngine implements PolicyEngine {
  readonly timeZone: string;
  /** Cedar's validation warnings and Portcullis' own, for the start-up log. */
  readonly warnings: readonly string[];
  private readonly policies: ReadonlyMap<string, LoadedPolicy>;
  private readonly index: PolicySetIndex;

  private constructor(policies: readonly LoadedPolicy[], warnings: readonly string[], timeZone: string) {
    this.timeZone = timeZone;
    this.warnings = warnings;
    this.policies = new Map(policies.map((p) => [p.id, p]));
    this.index = new PolicySetIndex(policies);
  }

  /**
   * Reads, parses and validates the policy files once.
   *
   * @example CedarPolicyEngine.fromFiles(config.policyFiles, { timeZone: config.timeZone })
   * @throws PortcullisError `config_invalid` with every problem as `file:line:column: message`.
   */
  static fromFiles(files: readonly string[], options: CedarPolicyEngineOptions): CedarPolicyEngine {
    const sources: PolicySource[] = [];
    const unreadable: string[] = [];
    for (const file of files) {
      try {
        sources.push({ name: file, text: readFileSync(file, 'utf8') });
      } catch (error) {
        unreadable.push(`  ${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
    if (unreadable.length > 0) {
      throw new PortcullisError('config_invalid', `Policy files cannot be read:\n${unreadable.join('\n')}`, {
        files,
      });
    }
    return CedarPolicyEngine.fromSources(sources, options);
  }

  /** Like {@link fromFiles}, from texts already in memory (tests, the bench). */
  static fromSources(sources: readonly PolicySource[], options: CedarPolicyEngineOptions): CedarPolicyEngine {
    if (!isKnownTimeZone(options.timeZone)) {
      throw new PortcullisError('config_invalid', `Unknown time zone "${options.timeZone}"`, {
        timeZone: options.timeZone,
      });
    }
    const { policies, warnings } = loadPolicySet(sources);
    return new CedarPolicyEngine(policies, warnings, options.timeZone);
  }

  /** Every policy id, in file order. */
  get policyIds(): readonly string[] {
    return [...this.policies.keys()];
  }

  /** How the set was sliced for evaluation (start-up log, bench). */
  get sliceStatistics(): {
    readonly policies: number;
    readonly slices: number;
    readonly largestSlice: number;
  } {
    return {
      policies: this.policies.size,
      slices: this.index.sliceCount,
      largestSlice: this.index.largestSlice,
    };
  }

  /** Where a policy came from and what it says, for `policy explain`. */
  policy(id: string): LoadedPolicy | undefined {
    return this.policies.get(id);
  }

  /** Hour and weekday of `now` in the configured zone (fits the access service's `localTime`). */
  localTime(now: number): PolicyClockReading {
    return policyClock(now, this.timeZone);
  }

  decideRequest(
    principal: Principal,
    resource: ResourceDefinition,
    role: RoleDefinition,
    context: PolicyContext,
  ): RequestDecision {
    const evaluation = this.evaluate(principal, 'request', resource, role, context);
    if (evaluation.outcome !== 'allow') return this.denial(evaluation, principal, 'request', resource, role);

    const requestedSeconds = context.durationMinutes * 60;
    const routes = evaluation.permits.map((id) => this.routeOf(id));
    const fitting = routes.filter((route) => route.maxDurationSeconds >= requestedSeconds);
    const route = strictestRoute(fitting);
    if (route === undefined) {
      const longest = routes.reduce((a, b) => (b.maxDurationSeconds > a.maxDurationSeconds ? b : a));
      return {
        allowed: false,
        policyIds: sorted(evaluation.permits),
        reason: `requested ${formatDuration(requestedSeconds)} is longer than the ${formatDuration(longest.maxDurationSeconds)} allowed by policy ${longest.policyId}`,
      };
    }
    return { allowed: true, policyIds: sorted(fitting.map((r) => r.policyId)), route };
  }

  decide(
    principal: Principal,
    action: Exclude<PolicyAction, 'request'>,
    resource: ResourceDefinition | null,
    role: RoleDefinition | null,
    context: PolicyContext,
  ): PolicyDecision {
    if (action !== 'view_audit' && (resource === null || role === null)) {
      return { allowed: false, policyIds: [], reason: `${action} needs a resource and a role` };
    }
    const evaluation = this.evaluate(principal, action, resource, role, context);
    if (evaluation.outcome === 'allow') return { allowed: true, policyIds: sorted(evaluation.permits) };
    return this.denial(evaluation, principal, action, resource, role);
  }

  private routeOf(policyId: string): ApprovalRoute {
    const route = this.policies.get(policyId)?.route;
    // INVARIANT: every permit that can match `request` got a route at load time.
    if (!route) throw new Error(`policy ${policyId} permits request but has no approval route`);
    return route;
  }

  private evaluate(
    principal: Principal,
    action: PolicyAction,
    resource: ResourceDefinition | null,
    role: RoleDefinition | null,
    context: PolicyContext,
  ): Evaluation {
    const target = action !== 'view_audit' && resource !== null && role !== null ? { resource, role } : null;
    const slice = this.index.sliceFor(action, target?.resource.id ?? null);
    if (slice === undefined) return { outcome: 'no_permit' };

    let answer: ReturnType<typeof statefulIsAuthorized>;
    try {
      const entities: EntityJson[] = [userEntity(principal)];
      if (target) entities.push(roleEntity(target.resource, target.role));
      answer = statefulIsAuthorized({
        principal: userUid(principal.id),
        action: actionUid(action),
        resource: target ? roleUid(target.resource.id, target.role.name) : auditLogUid,
        context: toCedarContext(context),
        preparsedPolicySetId: slice,
        entities,
      });
    } catch (error) {
      // INVARIANT: a failure to evaluate is a deny, also when cedar-wasm throws instead of answering
      // (e.g. a string it cannot take, such as one with a lone surrogate).
      return {
        outcome: 'error',
        policyIds: [],
        message: `policy evaluation failed: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    if (answer.type === 'failure') {
      return {
        outcome: 'error',
        policyIds: [],
        message: `policy evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}`,
      };
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      return {
        outcome: 'error',
        policyIds: sorted(diagnostics.errors.map((e) => e.policyId)),
        message: diagnostics.errors
          .map((e) => `policy ${e.policyId} could not be evaluated: ${e.error.message}`)
          .join('; '),
      };
    }
    if (decision === 'allow') return { outcome: 'allow', permits: diagnostics.reason };
    if (diagnostics.reason.length > 0) return { outcome: 'forbid', forbids: diagnostics.reason };
    return { outcome: 'no_permit' };
  }

  private denial(
    evaluation: Exclude<Evaluation, { outcome: 'allow' }>,
    principal: Principal,
    action: PolicyAction,
    resource: ResourceDefinition | null,
    role: RoleDefinition | null,
  ): Extract<PolicyDecision, { allowed: false }> {
    switch (evaluation.outcome) {
      case 'forbid': {
        const ids = sorted(evaluation.forbids);
        const described = ids.map((id) => {
          const description = this.policies.get(id)?.description;
          return description ? `${id} (${description})` : id;
        });
        return { allowed: false, policyIds: ids, reason: `forbidden by policy ${described.join(', ')}` };
      }
      case 'error':
        return { allowed: false, policyIds: evaluation.policyIds, reason: evaluation.message };
      case 'no_permit': {
        const target =
          action === 'view_audit' || resource === null || role === null
            ? 'the audit log'
            : `${resource.id}/${role.name}`;
        return {
          allowed: false,
          policyIds: [],
          reason: `no policy permits ${principal.id} to ${action} ${target}`,
        };
      }
    }
  }
}
