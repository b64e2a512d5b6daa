/**
 * Delivers each break-glass alert to every channel in the background. `dispatch` returns at once
 * and never throws: an activation must never wait for, or fail because of, an e-mail server.
 *
 * Each (alert, channel) delivery is tried up to `maxAttempts` times. Between attempts it waits an
 * exponential backoff with jitter: attempt n (n ≥ 1) is followed by a wait drawn uniformly from
 * [d/2, d] where d = min(maxDelayMs, baseDelayMs · 2^(n−1)) — "equal jitter", so retries of many
 * replicas spread out but never collapse to zero. Every attempt is reported through `onReport`:
 * `delivered: true` ends the delivery; `final: true` (only on a failure) means it was given up.
 *
 * @example
 * ```ts
 * const dispatcher = new RetryingAlertDispatcher({
 *   channels,
 *   onReport: (report) => audit(report.delivered ? 'break_glass.alert_delivered' : 'break_glass.alert_failed', report),
 * });
 * dispatcher.dispatch(alert); // returns immediately
 * ```
 */
import { setMaxListeners } from 'node:events';
import type { AlertChannel, AlertDeliveryReport, AlertDispatcher, BreakGlassAlert } from '../ports.js';

export interface RetryingAlertDispatcherOptions {
  readonly channels: readonly AlertChannel[];
  /** Called after every attempt. May be async; its failures are passed to `onReportError`. */
  readonly onReport: (report: AlertDeliveryReport) => void | Promise<void>;
  /** Called when `onReport` throws or rejects (default: ignored, because nothing else can be done). */
  readonly onReportError?: (error: unknown, report: AlertDeliveryReport) => void;
  /** Attempts per channel and alert, first included. Default 6. */
  readonly maxAttempts?: number;
  /** Default 1 s. */
  readonly baseDelayMs?: number;
  /** Cap of one wait. Default 60 s (6 attempts then span about 30 s to a minute). */
  readonly maxDelayMs?: number;
  /**
   * Upper bound of one attempt, whatever the channel's own timeout (a hung channel must not hold
   * its delivery forever). Default 30 s.
   */
  readonly attemptTimeoutMs?: number;
  /** In [0, 1); replaced in tests. */
  readonly random?: () => number;
}

/** The wait after failed attempt `attempt` (1-based), with equal jitter. */
export function backoffDelayMs(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Runs `work` (a synchronous throw becomes a rejection) and rejects with `message` after `ms`. */
export async function withinTime(work: () => Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(work), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits `ms`, or less if `signal` aborts (at once if it already has). */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Error text for a report: one line, bounded, never the error object (which could hold a secret). */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : 'failed';
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

export class RetryingAlertDispatcher implements AlertDispatcher {
  readonly #channels: readonly AlertChannel[];
  readonly #onReport: RetryingAlertDispatcherOptions['onReport'];
  readonly #onReportError: NonNullable<RetryingAlertDispatcherOptions['onReportError']>;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #random: () => number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #closing = new AbortController();

  constructor(options: RetryingAlertDispatcherOptions) {
    this.#channels = options.channels;
    this.#onReport = options.onReport;
    this.#onReportError = options.onReportError ?? (() => undefined);
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 6);
    this.#baseDelayMs = options.baseDelayMs ?? 1000;
    this.#maxDelayMs = options.maxDelayMs ?? 60_000;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    // Every delivery waiting out its backoff listens for the close: a burst of alerts to a channel
    // that is down holds one listener each, which is no leak (each is removed when its wait ends).
    setMaxListeners(0, this.#closing.signal);
  }

  /** Starts one background delivery per channel and returns; never throws. */
  dispatch(alert: BreakGlassAlert): void {
    for (const channel of this.#channels) {
      const delivery = this.#deliver(alert, channel).catch(() => undefined);
      this.#inFlight.add(delivery);
      void delivery.finally(() => this.#inFlight.delete(delivery));
    }
  }

  async settle(): Promise<void> {
    // Deliveries dispatched while waiting are waited for too.
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Stops retrying (shutdown): pending waits end at once and each unfinished delivery reports a
   * final failure "dispatcher closed" with `attempt` = the attempts made. Later dispatches only
   * report that (attempt 0). Resolves when settled.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.settle();
  }

  async #report(report: AlertDeliveryReport): Promise<void> {
    try {
      await this.#onReport(report);
    } catch (error) {
      try {
        this.#onReportError(error, report);
      } catch {
        // Nothing left to tell.
      }
    }
  }

  #attempt(alert: BreakGlassAlert, channel: AlertChannel): Promise<void> {
    return withinTime(
      () => channel.send(alert),
      this.#attemptTimeoutMs,
      `${channel.kind} ${channel.name}: no answer within ${this.#attemptTimeoutMs} ms`,
    );
  }

  async #deliver(alert: BreakGlassAlert, channel: AlertChannel): Promise<void> {
    // Never inside the caller's stack: dispatch() has returned before the first attempt starts.
    await Promise.resolve();
    for (let attempt = 1; ; attempt++) {
      if (this.#closing.signal.aborted) {
        await this.#report({
          alertId: alert.id,
          channel: channel.name,
          attempt: attempt - 1,
          delivered: false,
          error: `dispatcher closed after ${attempt - 1} attempt(s)`,
          final: true,
        });
        return;
      }
      try {
        await this.#attempt(alert, channel);
        await this.#report({
          alertId: alert.id,
          channel: channel.name,
          attempt,
          delivered: true,
          final: false,
        });
        return;
      } catch (error) {
        const final = attempt >= this.#maxAttempts;
        await this.#report({
          alertId: alert.id,
          channel: channel.name,
          attempt,
          delivered: false,
          error: errorText(error),
          final,
        });
        if (final) return;
      }
      await this.#wait(backoffDelayMs(attempt, this.#baseDelayMs, this.#maxDelayMs, this.#random));
    }
  }

  #wait(ms: number): Promise<void> {
    return abortableDelay(ms, this.#closing.signal);
  }
}
