/**
 * `portcullis policy test CASES.yaml`: a table of cases run against the policy set, a unit test for
 * policies. Every problem in the file is reported with its path before anything runs; a case whose
 * decision differs from what it expects is a mismatch.
 *
 * ```yaml
 * defaults:                       # optional; merged under each case's context
 *   context: { at: "2026-11-24T10:00:00", reason: "debugging" }
 * cases:
 *   - name: engineers may ask for read-only with a reason
 *     principal: { id: "demo:alice", groups: [engineering] }    # id is "idp:subject"; email optional
 *     action: request             # request | approve | revoke | view_audit
 *     resource: demo-db           # and role: required except for view_audit
 *     role: readonly
 *     context: { duration: 30m, at: "2026-11-24T10:00:00", reason: "debug", ticket: "OPS-12" }
 *     expect: allow               # allow | deny
 *     expect_route: { approvals: 1, approver_groups: [sre], max_duration: 2h, auto_approve: false }
 *     expect_policies: [engineers-readonly]
 * ```
 *
 * Context fields: `duration` (default 1h), `reason`, `ticket` (default empty), `source` (default
 * `cli`), `requester` (default: the principal for `request`, empty otherwise), and the time — either
 * `at` or both `hour` (0–23) and `weekday` (`mon`…`sun`). `at` without an offset is a wall-clock time
 * in the configured zone (`2026-11-24T10:00` is a Tuesday, 10 o'clock, in any zone); with `Z` or an
 * offset (`2026-11-24T09:00:00Z`) it is an instant, read in the engine's time zone.
 * `expect_route` (request only) compares just the fields it gives; approver groups and
 * `expect_policies` are compared as sets.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { PolicyEngine } from '../app/ports.js';
import { formatDuration, parseDurationSeconds } from '../config/duration.js';
import { zodIssues } from '../config/zod-issues.js';
import { PortcullisError } from '../core/errors.js';
import {
  type ApprovalRoute,
  type PolicyContext,
  type PolicyDecision,
  policyActions,
} from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import { type PolicyClockReading, policyClock, type Weekday, weekdays } from './policy-context.js';

const durationText = z.union([z.string(), z.number()]);

const caseContext = z
  .object({
    duration: durationText.optional(),
    at: z.string().optional(),
    hour: z.number().int().min(0).max(23).optional(),
    weekday: z.enum(weekdays).optional(),
    reason: z.string().optional(),
    ticket: z.string().optional(),
    source: z.string().optional(),
    requester: z.string().optional(),
  })
  .strict();
type CaseContext = z.infer<typeof caseContext>;

const policyCase = z
  .object({
    name: z.string().min(1),
    principal: z
      .object({
        id: z.string().regex(/^[^:]+:.+$/, 'must be "idp:subject"'),
        groups: z.array(z.string().min(1)).default([]),
        email: z.string().optional(),
      })
      .strict(),
    action: z.enum(policyActions),
    resource: z.string().min(1).optional(),
    role: z.string().min(1).optional(),
    context: caseContext.default({}),
    expect: z.enum(['allow', 'deny']),
    expect_route: z
      .object({
        approvals: z.number().int().min(0).optional(),
        approver_groups: z.array(z.string()).optional(),
        max_duration: durationText.optional(),
        auto_approve: z.boolean().optional(),
      })
      .strict()
      .optional(),
    expect_policies: z.array(z.string()).optional(),
  })
  .strict();
type PolicyCase = z.infer<typeof policyCase>;

const casesFile = z
  .object({
    defaults: z.object({ context: caseContext.optional() }).strict().optional(),
    cases: z.array(policyCase).min(1),
  })
  .strict();

/** The outcome of one case. */
export interface PolicyCaseResult {
  readonly name: string;
  readonly passed: boolean;
  readonly expected: 'allow' | 'deny';
  readonly actual: 'allow' | 'deny';
  /** The policies that made the decision. */
  readonly policyIds: readonly string[];
  /** The route chosen for an allowed request. */
  readonly route: ApprovalRoute | null;
  /** On a mismatch, what differed; otherwise the decision's explanation. */
  readonly message: string;
}

export interface PolicyCaseIssue {
  readonly path: string;
  readonly message: string;
}

interface PreparedCase {
  readonly source: PolicyCase;
  readonly principal: Principal;
  readonly resource: ResourceDefinition | null;
  readonly role: RoleDefinition | null;
  readonly context: PolicyContext;
  readonly expectedMaxDurationSeconds: number | undefined;
}

/** The subset of the engine cases need: decisions, and the zone in which `at` instants are read. */
export type CaseEngine = PolicyEngine & { readonly timeZone: string };

const localDateTime = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;
const zonedDateTime = /(?:Z|[+-]\d{2}:?\d{2})$/i;

/** Hour and weekday of an `at` value: local wall-clock time as written, or an instant read in `timeZone`. */
function readAt(at: string, timeZone: string): PolicyClockReading | string {
  const local = localDateTime.exec(at.trim());
  if (local) {
    const [year, month, day, hour, minute] = local.slice(1, 6).map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const date = new Date(Date.UTC(year, month - 1, day));
    if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59) {
      return `"${at}" is not a valid date and time`;
    }
    // getUTCDay: 0 = Sunday.
    const weekday = weekdays[(date.getUTCDay() + 6) % 7] as Weekday;
    return { hour, weekday };
  }
  if (zonedDateTime.test(at.trim())) {
    const instant = Date.parse(at);
    if (!Number.isNaN(instant)) return policyClock(instant, timeZone);
  }
  return `"${at}" must be an ISO date and time, e.g. 2026-11-24T10:00:00 (local) or 2026-11-24T09:00:00Z`;
}

function prepare(
  file: z.infer<typeof casesFile>,
  resources: ReadonlyMap<string, ResourceDefinition>,
  timeZone: string,
): { cases: PreparedCase[]; issues: PolicyCaseIssue[] } {
  const issues: PolicyCaseIssue[] = [];
  const cases: PreparedCase[] = [];
  const names = new Set<string>();
  file.cases.forEach((c, i) => {
    const at = `cases[${i}]`;
    const before = issues.length;
    const problem = (path: string, message: string) => issues.push({ path: `${at}${path}`, message });
    if (names.has(c.name)) problem('.name', `duplicate case name "${c.name}"`);
    names.add(c.name);

    let resource: ResourceDefinition | null = null;
    let role: RoleDefinition | null = null;
    if (c.action !== 'view_audit') {
      if (c.resource === undefined) problem('.resource', `is required for action ${c.action}`);
      else {
        resource = resources.get(c.resource) ?? null;
        if (!resource)
          problem(
            '.resource',
            `unknown resource "${c.resource}" (known: ${[...resources.keys()].join(', ') || 'none'})`,
          );
      }
      if (c.role === undefined) problem('.role', `is required for action ${c.action}`);
      else if (resource) {
        role = resource.roles.get(c.role) ?? null;
        if (!role)
          problem(
            '.role',
            `resource "${resource.id}" has no role "${c.role}" (roles: ${[...resource.roles.keys()].join(', ')})`,
          );
      }
    }
    if (c.expect_route && c.action !== 'request') problem('.expect_route', 'only applies to action request');

    const merged: CaseContext = { ...file.defaults?.context, ...c.context };
    // A case that gives its own time replaces the default time entirely.
    if (c.context.at !== undefined || c.context.hour !== undefined || c.context.weekday !== undefined) {
      merged.at = c.context.at;
      merged.hour = c.context.hour;
      merged.weekday = c.context.weekday;
    }
    let clock: PolicyClockReading | undefined;
    if (merged.at !== undefined) {
      if (merged.hour !== undefined || merged.weekday !== undefined) {
        problem('.context', 'give either "at" or "hour" and "weekday", not both');
      }
      const reading = readAt(merged.at, timeZone);
      if (typeof reading === 'string') problem('.context.at', reading);
      else clock = reading;
    } else if (merged.hour !== undefined && merged.weekday !== undefined) {
      clock = { hour: merged.hour, weekday: merged.weekday };
    } else {
      problem('.context', 'needs the time: "at", or both "hour" and "weekday" (here or in defaults.context)');
    }

    const durationSeconds = parseDurationSeconds(merged.duration ?? '1h');
    if (durationSeconds === null) problem('.context.duration', 'must be a duration such as 30m, 2h or 1d');
    let expectedMaxDurationSeconds: number | undefined;
    if (c.expect_route?.max_duration !== undefined) {
      expectedMaxDurationSeconds = parseDurationSeconds(c.expect_route.max_duration) ?? undefined;
      if (expectedMaxDurationSeconds === undefined)
        problem('.expect_route.max_duration', 'must be a duration such as 30m, 2h or 1d');
    }
    if (issues.length > before || clock === undefined || durationSeconds === null) return;

    const separator = c.principal.id.indexOf(':');
    const principal: Principal = {
      id: c.principal.id,
      idp: c.principal.id.slice(0, separator),
      subject: c.principal.id.slice(separator + 1),
      displayName: c.principal.id,
      email: c.principal.email ?? null,
      groups: c.principal.groups,
    };
    cases.push({
      source: c,
      principal,
      resource,
      role,
      expectedMaxDurationSeconds,
      context: {
        durationMinutes: Math.ceil(durationSeconds / 60),
        hour: clock.hour,
        weekday: clock.weekday,
        reason: merged.reason ?? '',
        ticket: merged.ticket ?? '',
        sensitivity: resource?.sensitivity ?? '',
        source: merged.source ?? 'cli',
        requesterId: merged.requester ?? (c.action === 'request' ? principal.id : ''),
      },
    });
  });
  return { cases, issues };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((x) => right.has(x));
}

function list(values: readonly string[]): string {
  return `[${values.join(', ')}]`;
}

function runCase(engine: CaseEngine, prepared: PreparedCase): PolicyCaseResult {
  const { source: c, principal, resource, role, context } = prepared;
  let decision: PolicyDecision;
  let route: ApprovalRoute | null = null;
  if (c.action === 'request') {
    const requestDecision = engine.decideRequest(
      principal,
      resource as ResourceDefinition,
      role as RoleDefinition,
      context,
    );
    decision = requestDecision;
    if (requestDecision.allowed) route = requestDecision.route;
  } else {
    decision = engine.decide(principal, c.action, resource, role, context);
  }
  const actual = decision.allowed ? 'allow' : 'deny';
  const explanation = decision.allowed
    ? `allowed by ${list(decision.policyIds)}${route ? ` (route from ${route.policyId})` : ''}`
    : decision.reason;

  const mismatches: string[] = [];
  if (actual !== c.expect) mismatches.push(`expected ${c.expect}, got ${actual}: ${explanation}`);
  if (c.expect_policies && !sameSet(c.expect_policies, decision.policyIds)) {
    mismatches.push(`expected policies ${list(c.expect_policies)}, got ${list(decision.policyIds)}`);
  }
  const expectedRoute = c.expect_route;
  if (expectedRoute && actual === 'allow' && route) {
    if (expectedRoute.approvals !== undefined && expectedRoute.approvals !== route.requiredApprovals) {
      mismatches.push(
        `expected ${expectedRoute.approvals} approval(s), route has ${route.requiredApprovals}`,
      );
    }
    if (expectedRoute.approver_groups && !sameSet(expectedRoute.approver_groups, route.approverGroups)) {
      mismatches.push(
        `expected approver groups ${list(expectedRoute.approver_groups)}, route has ${list(route.approverGroups)}`,
      );
    }
    const maxSeconds = prepared.expectedMaxDurationSeconds;
    if (maxSeconds !== undefined && maxSeconds !== route.maxDurationSeconds) {
      mismatches.push(
        `expected max duration ${formatDuration(maxSeconds)}, route has ${formatDuration(route.maxDurationSeconds)}`,
      );
    }
    if (expectedRoute.auto_approve !== undefined && expectedRoute.auto_approve !== route.autoApprove) {
      mismatches.push(`expected auto_approve ${expectedRoute.auto_approve}, route has ${route.autoApprove}`);
    }
  }
  return {
    name: c.name,
    passed: mismatches.length === 0,
    expected: c.expect,
    actual,
    policyIds: decision.policyIds,
    route,
    message: mismatches.length > 0 ? mismatches.join('; ') : explanation,
  };
}

/**
 * Runs every case of a cases file against `engine`. `resources` are the configured resources the
 * cases name.
 *
 * @param fileName names the file in error messages.
 * @throws PortcullisError `validation_failed` listing every problem in the file (with its path)
 *   before any case runs; `details.issues` holds them as `{ path, message }`.
 */
export function runPolicyCases(
  engine: CaseEngine,
  casesFileText: string,
  resources: ReadonlyMap<string, ResourceDefinition>,
  fileName = 'cases file',
): PolicyCaseResult[] {
  const fail = (issues: readonly PolicyCaseIssue[]): never => {
    const lines = issues.map((i) => `  ${fileName}: ${i.path || '(root)'}: ${i.message}`);
    throw new PortcullisError(
      'validation_failed',
      `${fileName} has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${lines.join('\n')}`,
      { issues },
    );
  };
  const document = parseDocument(casesFileText, { prettyErrors: true });
  if (document.errors.length > 0) fail(document.errors.map((e) => ({ path: '', message: e.message })));
  const parsed = casesFile.safeParse(document.toJS() ?? {});
  if (!parsed.success) {
    return fail(zodIssues(parsed.error));
  }
  const { cases, issues } = prepare(parsed.data, resources, engine.timeZone);
  if (issues.length > 0) fail(issues);
  return cases.map((c) => runCase(engine, c));
}

/** Human report: one line per case, mismatches explained, and a summary line. */
export function formatPolicyCaseResults(results: readonly PolicyCaseResult[]): string {
  const lines = results.map((r) => (r.passed ? `ok    ${r.name}` : `FAIL  ${r.name}\n      ${r.message}`));
  const failed = results.filter((r) => !r.passed).length;
  lines.push(
    '',
    `${results.length} case${results.length === 1 ? '' : 's'}: ${results.length - failed} passed, ${failed} failed`,
  );
  return lines.join('\n');
}
