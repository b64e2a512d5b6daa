/**
 * Sends copies of the audit log to SIEMs as it grows (docs/audit.md#streaming-to-a-siem). Each
 * stream follows the log from its own position with its own lease (a row `audit-stream:<name>` in
 * `notification_cursors`), so one replica at a time sends for it and a stream whose collector is
 * down holds back only itself.
 *
 * In order and at least once, never skipping: a batch is retried with backoff until the collector
 * takes it, and the position moves only after that. A replica that dies between the collector's
 * answer and recording the position leaves the next holder to send that batch again; every event
 * carries its `seq` and `hash`, by which a collector drops what it already has.
 */
import { abortableDelay, backoffDelayMs, errorText } from '../break-glass/alerts/dispatcher.js';
import type { Clock } from '../core/clock.js';
import type { AuditRecord, Store } from './ports.js';

/** Where one stream's batches go. */
export interface AuditStreamSink {
  readonly name: string;
  /**
   * Resolves once the collector has taken the whole batch; throws otherwise. Calls `keepLease`
   * before each request it makes and throws {@link LeaseLost} when that answers false, so that no
   * request leaves after another replica has taken the stream over.
   */
  send(records: readonly AuditRecord[], keepLease: () => Promise<boolean>): Promise<void>;
}

/** The stream's lease went to another replica while a batch was being sent. */
export class LeaseLost extends Error {
  constructor() {
    super('the stream lease went to another replica');
    this.name = 'LeaseLost';
  }
}

export interface AuditStream {
  readonly sink: AuditStreamSink;
  readonly batchSize: number;
  /** Where a stream never seen before begins: after the current head, or at the first event. */
  readonly startAt: 'end' | 'beginning';
  /** How long a lease lasts unless renewed: longer than one request may take. Default: the relay's. */
  readonly leaseMs?: number;
}

export interface AuditStreamMetrics {
  /** The stream's last delivered event and how many events it is behind the head. */
  position(stream: string, delivered: number, lag: number): void;
  /** This replica does not send for the stream (another holds its lease): stop reporting it. */
  notHeld(stream: string): void;
  failed(stream: string): void;
}

export interface AuditStreamRelayOptions {
  readonly store: Store;
  readonly streams: readonly AuditStream[];
  readonly clock: Clock;
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  readonly onError: (error: unknown, stream: string) => void;
  readonly metrics?: AuditStreamMetrics;
  /** How often an idle stream looks for new events. Default 1 s. */
  readonly pollIntervalMs?: number;
  /** A lease lasts this long unless renewed. Default 60 s. */
  readonly leaseMs?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly random?: () => number;
}

export const auditStreamCursorPrefix = 'audit-stream:';

export class AuditStreamRelay {
  readonly #o: AuditStreamRelayOptions;
  readonly #stopping = new AbortController();
  readonly #loops: Promise<void>[] = [];
  /** Streams whose cursor row this process has seen (created or found). */
  readonly #seen = new Set<string>();

  constructor(options: AuditStreamRelayOptions) {
    this.#o = options;
  }

  start(): void {
    for (const stream of this.#o.streams) this.#loops.push(this.#loop(stream));
  }

  /** Stops after the attempt under way; leases are released so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled(this.#loops);
    await Promise.allSettled(
      this.#o.streams.map((s) => this.#o.store.notificationCursors.release(cursorOf(s), this.#o.owner)),
    );
  }

  async #loop(stream: AuditStream): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      try {
        await this.drain(stream);
      } catch (error) {
        this.#o.onError(error, stream.sink.name);
      }
      await abortableDelay(this.#o.pollIntervalMs ?? 1000, this.#stopping.signal);
    }
  }

  /**
   * Sends every event after the stream's position, if this replica holds (or can take) its lease.
   * Returns once the stream is caught up, the lease is lost, or the relay stops. Exposed for tests.
   */
  async drain(stream: AuditStream): Promise<void> {
    const { store, owner, clock } = this.#o;
    const cursor = cursorOf(stream);
    const leaseUntil = () => clock.now() + this.#leaseMs(stream);
    const startAt =
      this.#seen.has(cursor) || stream.startAt === 'beginning' ? 0 : (await store.auditLog.head()).seq;
    let position = await store.notificationCursors.claim(cursor, owner, clock.now(), leaseUntil(), startAt);
    this.#seen.add(cursor);
    if (position === undefined) {
      this.#o.metrics?.notHeld(stream.sink.name);
      return;
    }
    for (;;) {
      const batch = await store.auditLog.read(position, stream.batchSize);
      if (batch.length === 0) {
        this.#o.metrics?.position(stream.sink.name, position, 0);
        return;
      }
      if (!(await this.#deliver(stream, batch, position))) return;
      position = (batch.at(-1) as AuditRecord).seq;
      if (!(await store.notificationCursors.advance(cursor, owner, position, leaseUntil()))) return;
      const head = (await store.auditLog.head()).seq;
      this.#o.metrics?.position(stream.sink.name, position, Math.max(0, head - position));
    }
  }

  #leaseMs(stream: AuditStream): number {
    return stream.leaseMs ?? this.#o.leaseMs ?? 60_000;
  }

  /** Tries until the collector takes the batch (true); false when stopping or the lease was lost. */
  async #deliver(stream: AuditStream, batch: readonly AuditRecord[], position: number): Promise<boolean> {
    const o = this.#o;
    // Renewed before every request, so the lease never runs out under a request in flight.
    const keepLease = () =>
      o.store.notificationCursors.advance(
        cursorOf(stream),
        o.owner,
        position,
        o.clock.now() + this.#leaseMs(stream),
      );
    for (let attempt = 1; ; attempt++) {
      try {
        await stream.sink.send(batch, keepLease);
        return true;
      } catch (error) {
        if (error instanceof LeaseLost) return false;
        o.metrics?.failed(stream.sink.name);
        const head = (await o.store.auditLog.head()).seq;
        o.metrics?.position(stream.sink.name, position, Math.max(0, head - position));
        o.onError(
          new Error(`batch after event ${position} not taken (attempt ${attempt}): ${errorText(error)}`),
          stream.sink.name,
        );
      }
      const delay = backoffDelayMs(
        attempt,
        o.baseDelayMs ?? 1000,
        o.maxDelayMs ?? 60_000,
        o.random ?? Math.random,
      );
      await abortableDelay(delay, this.#stopping.signal);
      if (this.#stopping.signal.aborted) return false;
      // Renewed before each retry: an outage longer than the lease must not hand the stream over.
      if (!(await keepLease())) return false;
    }
  }
}

function cursorOf(stream: AuditStream): string {
  return `${auditStreamCursorPrefix}${stream.sink.name}`;
}
