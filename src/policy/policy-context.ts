/**
 * What a policy sees besides principal and resource: the request's facts, with the time of day and
 * weekday in the configured time zone, as the core {@link PolicyContext} and as the Cedar
 * `Portcullis::DecisionContext` record.
 */
import type { PolicyContext } from '../core/policy-decision.js';

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

/** The local time fields policies see. */
export interface PolicyClockReading {
  /** 0–23 */
  readonly hour: number;
  readonly weekday: Weekday;
}

const englishWeekdays: Readonly<Record<string, Weekday>> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

// Building an Intl.DateTimeFormat costs far more than using one, and the zone is fixed per process.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      hour: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * Hour (0–23) and weekday (`mon` … `sun`) of the instant `now` (ms since the epoch) in `timeZone`.
 *
 * @example policyClock(Date.parse('2026-11-24T09:30:00Z'), 'Europe/Berlin') // { hour: 10, weekday: 'tue' }
 * @throws RangeError for an unknown time zone (the configuration loader rejects those first).
 */
export function policyClock(now: number, timeZone: string): PolicyClockReading {
  let hour = -1;
  let weekday: Weekday | undefined;
  for (const part of formatterFor(timeZone).formatToParts(now)) {
    if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'weekday') weekday = englishWeekdays[part.value];
  }
  if (weekday === undefined || !(hour >= 0 && hour <= 23)) {
    throw new RangeError(`Cannot read the local time of ${now} in ${timeZone}`);
  }
  return { hour, weekday };
}

/** The facts of one decision, before they are shaped for the policy. */
export interface PolicyFacts {
  /** When the decision is made (ms since the epoch). */
  readonly now: number;
  /** Requested length; for approve/revoke the length of the request concerned (0 when none). */
  readonly durationSeconds: number;
  readonly reason: string;
  readonly ticket: string | null;
  /** Sensitivity of the resource concerned; empty for `view_audit`. */
  readonly sensitivity: string;
  /** `api`, `cli`, … */
  readonly source: string;
  /** Principal id of the requester (for approve/revoke: of the request under review). */
  readonly requesterId: string;
}

/**
 * Builds the core {@link PolicyContext}. Durations are rounded up to whole minutes so that a limit
 * such as `context.duration_minutes <= 60` is never passed by a request a few seconds longer.
 */
export function buildPolicyContext(facts: PolicyFacts, timeZone: string): PolicyContext {
  const { hour, weekday } = policyClock(facts.now, timeZone);
  return {
    durationMinutes: Math.ceil(Math.max(0, facts.durationSeconds) / 60),
    hour,
    weekday,
    reason: facts.reason,
    ticket: facts.ticket ?? '',
    sensitivity: facts.sensitivity,
    source: facts.source,
    requesterId: facts.requesterId,
  };
}

/** The Cedar record `Portcullis::DecisionContext`; keys and types match portcullis.cedarschema. */
export interface CedarDecisionContext {
  readonly duration_minutes: number;
  readonly hour: number;
  readonly weekday: string;
  readonly reason: string;
  readonly ticket: string;
  readonly has_ticket: boolean;
  readonly sensitivity: string;
  readonly source: string;
  readonly requester: string;
  // Cedar's Context type is an index signature; this keeps the record assignable to it.
  readonly [key: string]: string | number | boolean;
}

/** Shapes a {@link PolicyContext} as the Cedar context record. */
export function toCedarContext(context: PolicyContext): CedarDecisionContext {
  return {
    duration_minutes: context.durationMinutes,
    hour: context.hour,
    weekday: context.weekday,
    reason: context.reason,
    ticket: context.ticket,
    has_ticket: context.ticket !== '',
    sensitivity: context.sensitivity,
    source: context.source,
    requester: context.requesterId,
  };
}
