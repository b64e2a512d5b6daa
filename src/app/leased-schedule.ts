/**
 * A job that runs every `intervalMs` on one replica at a time (reconciliation, audit retention),
 * started from the expiry loop's ticks. Its lease is a row in `notification_cursors` whose
 * position is when the last run started, shared by every replica: a replica that takes over after
 * another stops keeps the interval. No elected leader (docs/operations.md).
 */
import type { Clock } from '../core/clock.js';
import type { Store } from './ports.js';

export interface LeasedScheduleOptions {
  readonly store: Pick<Store, 'notificationCursors'>;
  readonly clock: Clock;
  /** The lease row's name. */
  readonly lease: string;
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  readonly intervalMs: number;
  /**
   * How long a claim lasts: a run longer than this may overlap one on another replica (the jobs
   * are idempotent), and a replica that dies delays the schedule by at most this.
   */
  readonly leaseMs: number;
  /** After finding the lease held elsewhere, or a failed run, how long before asking again. */
  readonly busyRetryMs: number;
  /** A new installation's first run: at once, or one interval after its first tick. */
  readonly firstRun: 'at-once' | 'after-interval';
  readonly onError: (error: unknown) => void;
}

export class LeasedSchedule {
  readonly #o: LeasedScheduleOptions;
  #running: Promise<void> | null = null;
  /** Before this, a tick does not even ask for the lease. */
  #notBefore = 0;
  #stopped = false;

  constructor(options: LeasedScheduleOptions) {
    this.#o = options;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Starts `run` in the background when it is due and this replica gets the lease; never waits for it. */
  tick(now: number, run: (now: number) => Promise<unknown>): void {
    if (this.#stopped || this.#running || now < this.#notBefore) return;
    this.#running = this.runIfDue(now, run)
      .then(
        () => undefined,
        (error: unknown) => {
          this.#notBefore = this.#o.clock.now() + this.#o.busyRetryMs;
          this.#o.onError(error);
        },
      )
      .finally(() => {
        this.#running = null;
      });
  }

  /** `run(now)` when a run is due and this replica holds the lease; undefined otherwise. */
  async runIfDue<T>(now: number, run: (now: number) => Promise<T>): Promise<T | undefined> {
    const { store, lease, owner, leaseMs, intervalMs } = this.#o;
    const startAt = this.#o.firstRun === 'at-once' ? 0 : now;
    const lastRun = await store.notificationCursors.claim(lease, owner, now, now + leaseMs, startAt);
    if (lastRun === undefined) {
      this.#notBefore = now + this.#o.busyRetryMs;
      return undefined;
    }
    if (now - lastRun < intervalMs) {
      this.#notBefore = lastRun + intervalMs;
      return undefined;
    }
    if (!(await store.notificationCursors.advance(lease, owner, now, now + leaseMs))) return undefined;
    this.#notBefore = now + intervalMs;
    return run(now);
  }

  /** Keeps the lease through a long run; false once another replica has it. */
  async renew(now: number): Promise<boolean> {
    const { store, lease, owner, leaseMs } = this.#o;
    const position = (await store.notificationCursors.position(lease)) ?? now;
    return store.notificationCursors.advance(lease, owner, position, now + leaseMs);
  }

  /** Waits for a run in progress and gives the lease up, so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
    await this.#o.store.notificationCursors.release(this.#o.lease, this.#o.owner);
  }
}
