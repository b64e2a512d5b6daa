/**
 * Ends grants at their deadline, and pending requests at their review deadline. The deadline lives in the database; this loop sleeps until the
 * earliest one (or a due revocation retry), with a periodic poll as a safety net, so access ends
 * within a second of `expires_at` — also after a restart, because `recover()` runs first.
 */
import type { Clock } from '../core/clock.js';
import type { AccessService } from './access-service.js';
import type { Store } from './ports.js';

export interface ExpiryLoopOptions {
  readonly pollIntervalMs: number;
  readonly onError: (error: unknown) => void;
  /** Extra periodic work (audit checkpoints, purging old ephemeral state). */
  readonly onTick?: (now: number) => Promise<void>;
}

export class ExpiryLoop {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private wakeRequested = false;

  constructor(
    private readonly service: AccessService,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly options: ExpiryLoopOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.running) await new Promise((r) => setTimeout(r, 10));
  }

  /** A new deadline exists (a grant was activated): re-arm the timer if it is sooner. */
  nudge(deadline: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(Math.max(0, deadline - this.clock.now()), true);
  }

  private nextWake = Number.POSITIVE_INFINITY;

  private schedule(delayMs: number, onlyIfSooner = false): void {
    if (this.stopped) return;
    const at = this.clock.now() + delayMs;
    if (onlyIfSooner && at >= this.nextWake) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextWake = at;
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref?.();
  }

  /** One pass: expire, lapse, retry revocations, then sleep until the next deadline. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.wakeRequested = false;
    let delay = this.options.pollIntervalMs;
    // INVARIANT: `running` stays true until the next wake is armed. A nudge that arrives while the
    // next deadline is being read (which may predate the new grant) sets wakeRequested; were
    // `running` false by then, nudge would compare with the wake that started this tick (already
    // past) and drop the new deadline until the next poll.
    try {
      try {
        await this.service.expireDue();
        await this.service.lapseDue();
        await this.service.processDueRevocations();
        // An approved request whose activator died (another replica, a crash) once its claim lapses.
        await this.service.resumeActivations();
        await this.options.onTick?.(this.clock.now());
      } catch (error) {
        this.options.onError(error);
      }
      if (this.stopped) return;
      try {
        const [expiry, reviewBy, retry] = await Promise.all([
          this.store.requests.nextExpiry(),
          this.store.requests.nextReviewDeadline(),
          this.store.grants.nextRevocationAttempt(),
        ]);
        const now = this.clock.now();
        for (const deadline of [expiry, reviewBy, retry]) {
          if (deadline !== null) delay = Math.min(delay, Math.max(0, deadline - now));
        }
      } catch (error) {
        this.options.onError(error);
      }
    } finally {
      this.running = false;
    }
    this.nextWake = Number.POSITIVE_INFINITY;
    this.schedule(this.wakeRequested ? 0 : delay);
  }
}
