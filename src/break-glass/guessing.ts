/**
 * Guessing resistance for custodian credentials: a pure policy over one emergency account's
 * counters, as functions of (state, attempt, now). The caller checks {@link checkAttempt} before
 * verifying credentials and records the outcome after; storage keeps one state per account.
 *
 * Three layers, and why:
 * - **Per (custodian, source)**: exponential backoff after a few free failures, capped. This is
 *   the only *lock*, and it binds one custodian at one source. An attacker hammering from their
 *   own address locks only themselves: the real custodian at their own workstation is untouched.
 * - **Per source** (across custodians): the same backoff, so one address cannot spray every
 *   custodian in turn to multiply its guesses. Pairs with a past success are exempt, so people
 *   sharing an address cannot keep a custodian who succeeded from there before locked out.
 * - **Per account** (all sources): a token bucket on *failures*, refilling slowly. It bounds the
 *   total guessing rate of a distributed attacker. When empty it does not lock the account; it
 *   only delays attempts from (custodian, source) pairs that never succeeded before — pairs with a
 *   past success are exempt, so an attacker cannot starve a custodian at a known place.
 *
 * The trade-off: a botnet can hold the account bucket empty, and then a custodian at a *new*
 * place waits for a token (seconds, never a lockout) and competes with the attacker for it. A hard
 * per-account lockout would be simpler but would let anyone lock every custodian out with a few
 * bad guesses — exactly during the incident. Both factors (argon2id passphrase and a single-use
 * TOTP) must be right anyway, so the bounded rate leaves a negligible chance of success.
 */

export interface GuessingPolicy {
  /** Failures allowed before backoff starts. */
  readonly freeFailures: number;
  /** First delay after the free failures; doubles with each further failure. */
  readonly baseDelayMs: number;
  /** Cap on any single delay. */
  readonly maxDelayMs: number;
  /** Account bucket size: failures tolerated in a burst across all sources. */
  readonly accountBurst: number;
  /** One token returns to the account bucket every this many ms. */
  readonly accountRefillMs: number;
  /** Counters idle for this long are forgotten (bounded memory). */
  readonly forgetAfterMs: number;
}

export const defaultGuessingPolicy: GuessingPolicy = {
  freeFailures: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  accountBurst: 20,
  accountRefillMs: 30_000,
  forgetAfterMs: 24 * 3600_000,
};

interface Counter {
  readonly failures: number;
  readonly blockedUntil: number;
  readonly lastFailureAt: number;
}

export interface GuessingState {
  readonly pairs: Readonly<Record<string, Counter>>;
  readonly sources: Readonly<Record<string, Counter>>;
  readonly accountTokens: number;
  readonly accountUpdatedAt: number;
  /** (custodian, source) pairs that have succeeded before: exempt from the account bucket. */
  readonly knownPairs: readonly string[];
}

export interface Attempt {
  readonly custodianId: string;
  /** Where the attempt comes from: the client IPv4 address or IPv6 /64 (see `source-address.ts`). */
  readonly source: string;
}

export type AttemptVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number; readonly limit: 'pair' | 'source' | 'account' };

export function emptyGuessingState(policy: GuessingPolicy, now: number): GuessingState {
  return {
    pairs: {},
    sources: {},
    accountTokens: policy.accountBurst,
    accountUpdatedAt: now,
    knownPairs: [],
  };
}

const pairKey = (a: Attempt) => JSON.stringify([a.custodianId, a.source]);

function tokensAt(state: GuessingState, policy: GuessingPolicy, now: number): number {
  const refilled = Math.floor(Math.max(0, now - state.accountUpdatedAt) / policy.accountRefillMs);
  return Math.min(policy.accountBurst, state.accountTokens + refilled);
}

/** Delay imposed after `failures` failures: none while free, then base·2^k, capped. */
export function backoffDelay(failures: number, policy: GuessingPolicy): number {
  const over = failures - policy.freeFailures;
  if (over < 0) return 0;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(over, 40));
}

/** Whether an attempt may go ahead now; if not, which limit and for how long. */
export function checkAttempt(
  state: GuessingState,
  attempt: Attempt,
  policy: GuessingPolicy,
  now: number,
): AttemptVerdict {
  const key = pairKey(attempt);
  const known = state.knownPairs.includes(key);
  const pair = state.pairs[key];
  if (pair && now < pair.blockedUntil)
    return { allowed: false, retryAfterMs: pair.blockedUntil - now, limit: 'pair' };
  // A known pair is exempt from the source block: others' failures at a shared address (a NAT, an
  // office, a proxy) must not lock out a custodian who succeeded from there before — their own
  // failures still lock their pair. A source block could only be cleared by a success, which it
  // would otherwise prevent.
  const source = state.sources[attempt.source];
  if (!known && source && now < source.blockedUntil)
    return { allowed: false, retryAfterMs: source.blockedUntil - now, limit: 'source' };
  if (!known && tokensAt(state, policy, now) < 1) {
    const sinceUpdate = Math.max(0, now - state.accountUpdatedAt) % policy.accountRefillMs;
    return { allowed: false, retryAfterMs: policy.accountRefillMs - sinceUpdate, limit: 'account' };
  }
  return { allowed: true };
}

function bump(counter: Counter | undefined, policy: GuessingPolicy, now: number): Counter {
  const failures = (counter?.failures ?? 0) + 1;
  return { failures, blockedUntil: now + backoffDelay(failures, policy), lastFailureAt: now };
}

function forget(counters: Readonly<Record<string, Counter>>, policy: GuessingPolicy, now: number) {
  return Object.fromEntries(
    Object.entries(counters).filter(
      ([, c]) => now - c.lastFailureAt < policy.forgetAfterMs || now < c.blockedUntil,
    ),
  );
}

/** Records a failed attempt (wrong credentials): every layer counts it. */
export function recordFailure(
  state: GuessingState,
  attempt: Attempt,
  policy: GuessingPolicy,
  now: number,
): GuessingState {
  const key = pairKey(attempt);
  const tokens = tokensAt(state, policy, now);
  const refillsUsed = Math.floor(Math.max(0, now - state.accountUpdatedAt) / policy.accountRefillMs);
  return {
    pairs: forget({ ...state.pairs, [key]: bump(state.pairs[key], policy, now) }, policy, now),
    sources: forget(
      { ...state.sources, [attempt.source]: bump(state.sources[attempt.source], policy, now) },
      policy,
      now,
    ),
    accountTokens: Math.max(0, tokens - 1),
    // Keep the partial refill interval so that failures do not postpone the next token.
    accountUpdatedAt:
      tokens >= policy.accountBurst ? now : state.accountUpdatedAt + refillsUsed * policy.accountRefillMs,
    knownPairs: state.knownPairs,
  };
}

/**
 * Records a success: the pair's counter is cleared and the pair becomes known. The source counter
 * is cleared too — a source that proved a custodian's credentials is not a sprayer.
 */
export function recordSuccess(state: GuessingState, attempt: Attempt, _now: number): GuessingState {
  const key = pairKey(attempt);
  const { [key]: _pair, ...pairs } = state.pairs;
  const { [attempt.source]: _source, ...sources } = state.sources;
  return {
    ...state,
    pairs,
    sources,
    knownPairs: state.knownPairs.includes(key) ? state.knownPairs : [...state.knownPairs, key],
  };
}
