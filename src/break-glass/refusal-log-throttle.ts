/**
 * Bounds how many break-glass refusals from one source are written to the audit log one by one.
 * Pure: a state and a function of (state, source, now).
 *
 * Why: every refusal is a high-severity audit event, and audit appends are serialised on the chain
 * head. Refusals that cost an attacker nothing (an unknown account, a random activation handle, an
 * attempt while locked out) could otherwise flood the log and slow every other write. The refusal
 * itself never changes; only its evidence is summarised: within one window a source gets `limit`
 * individual events, then one `suppressing` marker, and the first event of its next window carries
 * how many were left out (a source that never comes back leaves only the marker).
 */

export interface RefusalThrottlePolicy {
  /** Individual refusal events per source and window. */
  readonly limit: number;
  readonly windowMs: number;
  /** Sources tracked at most; the oldest windows are forgotten first (bounded memory). */
  readonly maxSources: number;
}

export const defaultRefusalThrottlePolicy: RefusalThrottlePolicy = {
  limit: 30,
  windowMs: 60_000,
  maxSources: 10_000,
};

interface SourceWindow {
  readonly startedAt: number;
  readonly written: number;
  readonly suppressed: number;
}

export type RefusalThrottleState = ReadonlyMap<string, SourceWindow>;

export type RefusalLogVerdict =
  /** Write the event; `suppressedBefore` refusals of the previous window were not written. */
  | { readonly write: 'event'; readonly suppressedBefore: number }
  /** Write one marker that further refusals from this source are summarised until `until`. */
  | { readonly write: 'suppressing'; readonly until: number }
  | { readonly write: 'nothing' };

export function decideRefusalLog(
  state: RefusalThrottleState,
  source: string,
  now: number,
  policy: RefusalThrottlePolicy = defaultRefusalThrottlePolicy,
): { state: RefusalThrottleState; verdict: RefusalLogVerdict } {
  const current = state.get(source);
  const next = new Map(state);
  next.delete(source); // re-inserted below, so iteration order is oldest window first
  if (!current || now - current.startedAt >= policy.windowMs) {
    next.set(source, { startedAt: now, written: 1, suppressed: 0 });
    while (next.size > policy.maxSources) next.delete(next.keys().next().value as string);
    return { state: next, verdict: { write: 'event', suppressedBefore: current?.suppressed ?? 0 } };
  }
  if (current.written < policy.limit) {
    next.set(source, { ...current, written: current.written + 1 });
    return { state: next, verdict: { write: 'event', suppressedBefore: 0 } };
  }
  next.set(source, { ...current, suppressed: current.suppressed + 1 });
  return {
    state: next,
    verdict:
      current.suppressed === 0
        ? { write: 'suppressing', until: current.startedAt + policy.windowMs }
        : { write: 'nothing' },
  };
}
