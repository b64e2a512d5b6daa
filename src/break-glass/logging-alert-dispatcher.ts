/**
 * The dispatcher used when no alert channel is configured: it writes every alert to the log (and
 * keeps the last ones for inspection). It never blocks and never fails the caller, like every
 * {@link AlertDispatcher}. Real channels (webhook, e-mail) live in `src/break-glass/alerts/`.
 */
import type { AlertDispatcher, BreakGlassAlert } from './ports.js';

export interface AlertLog {
  warn(fields: object, message: string): void;
}

export class LoggingAlertDispatcher implements AlertDispatcher {
  readonly #log: AlertLog;
  readonly #recent: BreakGlassAlert[] = [];

  constructor(log: AlertLog) {
    this.#log = log;
  }

  dispatch(alert: BreakGlassAlert): void {
    this.#recent.push(alert);
    if (this.#recent.length > 100) this.#recent.shift();
    try {
      this.#log.warn({ breakGlassAlert: alert }, `break-glass alert: ${alert.summary}`);
    } catch {
      // INVARIANT: alerting never fails the action it reports.
    }
  }

  /** The last alerts dispatched (at most 100), oldest first. */
  recent(): readonly BreakGlassAlert[] {
    return [...this.#recent];
  }

  async settle(): Promise<void> {}
}
