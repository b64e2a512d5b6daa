/**
 * Approval routes written as Cedar annotations on `permit` policies for `request`, so the policy
 * set alone answers "who may get what, for how long, with whose consent".
 *
 * | annotation                      | value                                   | default when absent          |
 * |---------------------------------|-----------------------------------------|------------------------------|
 * | `@approvals("2")`               | whole number 0–10                       | 1 (0 with auto-approve)      |
 * | `@approver_groups("sre,dba")`   | comma-separated Portcullis groups       | any approver the policy set authorises for `approve` |
 * | `@max_duration("2h")`           | `45m`, `2h`, `1d`: whole minutes, ≤ 7 d | `1h`                         |
 * | `@auto_approve("true")`         | `true` or `false`                       | `false`                      |
 *
 * Refused at start-up: route annotations on a `forbid` or on a permit that cannot apply to
 * `request`; `@auto_approve("true")` with approvals above 0 or with approver groups; `@approvals("0")`
 * without `@auto_approve("true")`; an annotation without a value; any annotation other than these,
 * `@id` and `@description` (a misspelt `@aprovals` must not silently fall back to a default).
 */

import { formatDuration, parseDurationSeconds } from '../config/duration.js';
import { maxDurationSeconds } from '../core/access-request.js';
import type { ApprovalRoute } from '../core/policy-decision.js';

/** Cedar gives an annotation written without a value as null. */
export type Annotations = Readonly<Record<string, string | null>>;

export const routeAnnotationKeys = ['approvals', 'approver_groups', 'max_duration', 'auto_approve'] as const;
export const knownAnnotationKeys = ['id', 'description', ...routeAnnotationKeys] as const;

export const routeDefaults = {
  approvals: 1,
  approverGroups: [] as readonly string[],
  maxDurationSeconds: 3600,
  autoApprove: false,
} as const;

/** More required approvals than this is almost certainly a typo that would make requests unapprovable. */
export const maxRequiredApprovals = 10;

// Same rule as group names in the configuration (src/config/schema.ts `identifier`).
const groupName = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function hasRouteAnnotations(annotations: Annotations): boolean {
  return routeAnnotationKeys.some((key) => key in annotations);
}

/** Annotation keys that Portcullis does not know, in source order. */
export function unknownAnnotations(annotations: Annotations): string[] {
  const known: readonly string[] = knownAnnotationKeys;
  return Object.keys(annotations).filter((key) => !known.includes(key));
}

export type RouteReading =
  | { readonly ok: true; readonly route: ApprovalRoute }
  | { readonly ok: false; readonly problems: readonly string[] };

/** Reads and checks the route annotations of the permit policy `policyId`, applying the defaults. */
export function readRoute(policyId: string, annotations: Annotations): RouteReading {
  const problems: string[] = [];
  const text = (key: string): string | undefined => {
    if (!(key in annotations)) return undefined;
    const value = annotations[key];
    if (value === null || value === undefined || value.trim() === '') {
      problems.push(`@${key} needs a value, e.g. @${key}("${exampleValue(key)}")`);
      return undefined;
    }
    return value.trim();
  };

  let autoApprove: boolean = routeDefaults.autoApprove;
  const autoText = text('auto_approve');
  if (autoText !== undefined) {
    if (autoText === 'true' || autoText === 'false') autoApprove = autoText === 'true';
    else problems.push(`@auto_approve must be "true" or "false", not "${autoText}"`);
  }

  let approvals = autoApprove ? 0 : routeDefaults.approvals;
  const approvalsText = text('approvals');
  if (approvalsText !== undefined) {
    if (/^\d+$/.test(approvalsText) && Number(approvalsText) <= maxRequiredApprovals) {
      approvals = Number(approvalsText);
    } else {
      problems.push(
        `@approvals must be a whole number from 0 to ${maxRequiredApprovals}, not "${approvalsText}"`,
      );
    }
  }

  let approverGroups: readonly string[] = routeDefaults.approverGroups;
  const groupsText = text('approver_groups');
  if (groupsText !== undefined) {
    const groups = groupsText.split(',').map((g) => g.trim());
    const invalid = groups.filter((g) => !groupName.test(g));
    if (invalid.length > 0) {
      problems.push(
        `@approver_groups must list group names separated by commas; not valid: ${invalid.map((g) => `"${g}"`).join(', ')}`,
      );
    } else {
      approverGroups = [...new Set(groups)];
    }
  }

  let maxDuration: number = routeDefaults.maxDurationSeconds;
  const durationText = text('max_duration');
  if (durationText !== undefined) {
    const seconds = parseDurationSeconds(durationText);
    if (seconds === null) {
      problems.push(`@max_duration must be a duration such as 45m, 2h or 1d, not "${durationText}"`);
    } else if (seconds % 60 !== 0 || seconds > maxDurationSeconds) {
      // Whole minutes, because policies see the requested duration as whole minutes (rounded up).
      problems.push(
        `@max_duration must be whole minutes from 1m to ${formatDuration(maxDurationSeconds)}, not "${durationText}"`,
      );
    } else {
      maxDuration = seconds;
    }
  }

  if (autoApprove && approvals > 0) {
    problems.push(`@auto_approve("true") cannot be combined with @approvals("${approvals}")`);
  }
  if (autoApprove && approverGroups.length > 0) {
    problems.push('@auto_approve("true") cannot be combined with @approver_groups (nobody reviews)');
  }
  if (!autoApprove && approvals === 0) {
    problems.push('@approvals("0") needs @auto_approve("true"); say so explicitly');
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    route: {
      requiredApprovals: approvals,
      approverGroups,
      maxDurationSeconds: maxDuration,
      autoApprove,
      policyId,
    },
  };
}

function exampleValue(key: string): string {
  switch (key) {
    case 'approvals':
      return '2';
    case 'approver_groups':
      return 'sre,dba';
    case 'max_duration':
      return '2h';
    case 'auto_approve':
      return 'true';
    default:
      return '…';
  }
}

/** The route of a permit for `request` that carries no route annotations. */
export function defaultRoute(policyId: string): ApprovalRoute {
  return {
    requiredApprovals: routeDefaults.approvals,
    approverGroups: routeDefaults.approverGroups,
    maxDurationSeconds: routeDefaults.maxDurationSeconds,
    autoApprove: routeDefaults.autoApprove,
    policyId,
  };
}

/**
 * Orders routes from strictest to most lenient: more approvals first, then the shorter maximum
 * duration, then not auto-approved, then policy id (code-unit order) so the choice is deterministic.
 */
export function compareStrictness(a: ApprovalRoute, b: ApprovalRoute): number {
  if (a.requiredApprovals !== b.requiredApprovals) return b.requiredApprovals - a.requiredApprovals;
  if (a.maxDurationSeconds !== b.maxDurationSeconds) return a.maxDurationSeconds - b.maxDurationSeconds;
  if (a.autoApprove !== b.autoApprove) return a.autoApprove ? 1 : -1;
  return a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0;
}

/** The strictest of several routes (see {@link compareStrictness}); undefined for none. */
export function strictestRoute(routes: readonly ApprovalRoute[]): ApprovalRoute | undefined {
  let best: ApprovalRoute | undefined;
  for (const route of routes) if (best === undefined || compareStrictness(route, best) < 0) best = route;
  return best;
}
