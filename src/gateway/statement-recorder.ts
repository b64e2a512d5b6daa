/**
 * Records gateway events (statements, session ends) without making the data path wait: `record`
 * only queues; a flush writes up to `maxBatch` queued events in ONE store transaction every
 * `flushIntervalMs` (or at once when a batch is full).
 *
 * Fail closed, at session level:
 * - a failed flush is retried (the same events, in order) up to `maxAttempts` times with backoff;
 * - while more than `highWaterMark` events wait, {@link StatementRecorder.congested} is true and
 *   sessions stop reading from their clients until it drains (`onDrain`);
 * - when flushing keeps failing, the recorder turns *unwritable*: `onUnwritable` fires (the gateway
 *   terminates every session with FATAL rather than run unrecorded statements), new sessions are
 *   refused while {@link StatementRecorder.writable} is false, and the queue keeps being retried
 *   every `retryIntervalMs` until a write succeeds.
 *
 * Durability trade-off: a crash of the process loses at most the events still queued (one batch
 * interval's worth). Admission events are written synchronously (`writeNow`) before the upstream
 * connection is used.
 */
import type { AuditEventInput } from '../core/audit-event.js';

/** One event and its time, as the audit appender takes them. */
export interface TimedEvent {
  readonly event: AuditEventInput;
  readonly at: number;
}

/** Writes events in one transaction, in order (an `audit.append` per event); throws on failure. */
export type AuditBatchWriter = (events: readonly TimedEvent[]) => Promise<void>;

export interface StatementRecorderOptions {
  readonly write: AuditBatchWriter;
  readonly now: () => number;
  readonly flushIntervalMs?: number;
  readonly maxBatch?: number;
  /** Queue length above which sessions stop reading from clients (default 5000). */
  readonly highWaterMark?: number;
  /** Attempts of one batch before the recorder turns unwritable (default 3). */
  readonly maxAttempts?: number;
  /** Retry period while unwritable (default 1000 ms). */
  readonly retryIntervalMs?: number;
  /** The audit log cannot be written: sessions must end. */
  readonly onUnwritable: (error: unknown) => void;
  readonly onError: (error: unknown) => void;
}

/** The batching audit writer of the gateway; see the module comment. */
export class StatementRecorder {
  readonly #write: AuditBatchWriter;
  readonly #now: () => number;
  readonly #flushIntervalMs: number;
  readonly #maxBatch: number;
  readonly #highWaterMark: number;
  readonly #maxAttempts: number;
  readonly #retryIntervalMs: number;
  readonly #onUnwritable: (error: unknown) => void;
  readonly #onError: (error: unknown) => void;
  #queue: TimedEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #writable = true;
  #drainListeners = new Set<() => void>();

  constructor(options: StatementRecorderOptions) {
    this.#write = options.write;
    this.#now = options.now;
    this.#flushIntervalMs = options.flushIntervalMs ?? 50;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#highWaterMark = options.highWaterMark ?? 5000;
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.#onUnwritable = options.onUnwritable;
    this.#onError = options.onError;
  }

  /** False while the audit log cannot be written: refuse new sessions. */
  get writable(): boolean {
    return this.#writable;
  }

  /** True while too many events wait: stop reading from clients until {@link onDrain} fires. */
  get congested(): boolean {
    return this.#queue.length > this.#highWaterMark;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Queues one event; never waits. */
  record(event: AuditEventInput): void {
    this.#queue.push({ event, at: this.#now() });
    if (this.#queue.length >= this.#maxBatch) this.#flushSoon(0);
    else this.#flushSoon(this.#flushIntervalMs);
  }

  /** Writes one event now, in its own transaction, after everything queued before it. */
  async writeNow(event: AuditEventInput): Promise<void> {
    await this.flush();
    await this.#write([{ event, at: this.#now() }]);
  }

  /** Calls `listener` once, when the queue is back under the high-water mark. */
  onDrain(listener: () => void): void {
    if (!this.congested) {
      listener();
      return;
    }
    this.#drainListeners.add(listener);
  }

  /** Writes everything queued; resolves when the queue is empty or the write failed. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 && this.#writable) {
      await this.#flushOnce();
    }
    if (this.#flushing) await this.#flushing;
  }

  /** Stops the timer after writing what is queued (best effort). */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush().catch((error) => this.#onError(error));
  }

  #flushSoon(delayMs: number): void {
    if (this.#timer || this.#flushing) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flushOnce();
    }, delayMs);
    this.#timer.unref();
  }

  #flushOnce(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = this.#flushBatch().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0)
        this.#flushSoon(
          this.#writable
            ? this.#queue.length >= this.#maxBatch
              ? 0
              : this.#flushIntervalMs
            : this.#retryIntervalMs,
        );
    });
    return this.#flushing;
  }

  async #flushBatch(): Promise<void> {
    if (this.#queue.length === 0) return;
    const batch = this.#queue.slice(0, this.#maxBatch);
    let lastError: unknown;
    // While unwritable, one attempt per retry period is enough.
    const attempts = this.#writable ? this.#maxAttempts : 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.#write(batch);
        this.#queue.splice(0, batch.length);
        this.#writable = true;
        if (!this.congested && this.#drainListeners.size > 0) {
          const listeners = [...this.#drainListeners];
          this.#drainListeners.clear();
          for (const listener of listeners) listener();
        }
        return;
      } catch (error) {
        lastError = error;
        this.#onError(error);
        if (attempt < attempts) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      }
    }
    if (this.#writable) {
      this.#writable = false;
      this.#onUnwritable(lastError);
    }
  }
}
