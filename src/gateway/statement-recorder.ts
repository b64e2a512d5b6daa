/**
 * Records gateway events without making the data path wait. `recordStatement` and `record` only
 * queue; a flush writes what is queued in ONE store transaction every `flushIntervalMs`, or at once
 * when `flushAtStatements` statements wait.
 *
 * **One chain entry per grant and flush, not per statement.** The statements that the sessions of
 * one grant sent since the previous flush become one `gateway.statements` event (actor, grant,
 * request and resource are the grant's): `data.sessions` holds one run per session, in the order
 * the runs began, each `{from, session, statements}` — the ordered statements and the
 * session-wide number of the first. A session's statements are numbered 1, 2, 3, … without gaps,
 * so its runs must continue each other: a missing or reordered batch is visible even to someone
 * who reads a single session. Every statement is still in the hash chain; hashing and inserting
 * are paid once per batch, so a pool of connections on one grant costs one entry a flush, not one
 * per connection.
 *
 * **Chain order is record order.** Queuing an event (`record`, `writeNow`) seals every open batch:
 * a statement recorded after a session's `gateway.session_started` (or any other event) lands in
 * an entry after it, never in an earlier batch.
 *
 * Fail closed, at session level:
 * - a failed flush is retried (the same events, in order) up to `maxAttempts` times with backoff;
 * - while more than `highWaterMark` statements and events wait, {@link StatementRecorder.congested}
 *   is true and sessions stop reading from their clients until it drains (`onDrain`);
 * - when flushing keeps failing, or the queue stays congested for `maxStallMs`, the recorder turns
 *   *unwritable*: `onUnwritable` fires (the gateway terminates every session with FATAL rather than
 *   run unrecorded statements), a `gateway.recording_failed` event is queued, new sessions are
 *   refused while {@link StatementRecorder.writable} is false, and the queue keeps being retried
 *   every `retryIntervalMs` until a write succeeds.
 *
 * Durability trade-off: a crash of the process loses at most the events still queued (one flush
 * interval's worth, bounded by `highWaterMark`). `writeNow` (admission and session start) resolves
 * only once its event is committed, after everything queued before it.
 */
import type { AuditEventInput } from '../core/audit-event.js';
import type { SessionFacts } from './statement-tracker.js';

/** One event and its time, as the audit appender takes them. */
export interface TimedEvent {
  readonly event: AuditEventInput;
  readonly at: number;
}

/** Writes events in one transaction, in order; throws on failure. */
export type AuditBatchWriter = (events: readonly TimedEvent[]) => Promise<void>;

/**
 * One statement as recorded: `at` (epoch ms), `kind` and the fields of statement-tracker.ts. Built
 * with its keys in canonical (sorted) order, which keeps the canonical encoding on its fast path.
 */
export type StatementFields = Readonly<Record<string, unknown>> & { readonly at: number };

/** Statements in one `gateway.statements` event at most. */
const maxStatementsPerEvent = 1000;
/** Approximate characters of statement text and parameters in one event at most. */
const maxCharsPerEvent = 1 << 20;
/** Fixed per-statement allowance in the character estimate (keys, kind, time). */
const statementOverheadChars = 64;

/** A session's recording state: the number of its next statement and where new ones go. */
export class SessionRecording {
  readonly facts: SessionFacts;
  /** Number of the next statement of this session (1-based). */
  next = 1;
  /** This session's run in the batch it last added to (still open, or already sealed). */
  run: SessionRun | undefined;

  constructor(facts: SessionFacts) {
    this.facts = facts;
  }
}

/** One session's consecutive statements inside a batch. */
interface SessionRun {
  readonly batch: StatementBatch;
  readonly session: SessionRecording;
  readonly from: number;
  readonly statements: StatementFields[];
}

/** The statements of one grant's sessions, queued as one chain entry. */
interface StatementBatch {
  /** The facts of the session that opened it: principal, grant, request and resource are the grant's. */
  readonly facts: SessionFacts;
  readonly runs: SessionRun[];
  size: number;
  chars: number;
}

interface QueuedEvent {
  readonly timed: TimedEvent;
  /** Set for `writeNow`: settled when the batch holding it is written or has failed. */
  readonly waiter?: { resolve: () => void; reject: (error: unknown) => void };
}

type Entry = StatementBatch | QueuedEvent;

function isBatch(entry: Entry): entry is StatementBatch {
  return 'runs' in entry;
}

function entrySize(entry: Entry): number {
  return isBatch(entry) ? entry.size : 1;
}

function statementsEvent(batch: StatementBatch): TimedEvent {
  const facts = batch.facts;
  const first = batch.runs[0]?.statements[0] as StatementFields;
  return {
    at: first.at,
    event: {
      type: 'gateway.statements',
      actor: facts.principalId,
      requestId: facts.requestId,
      grantId: facts.grantId,
      resourceId: facts.resourceId,
      // Keys in canonical order.
      data: {
        sessions: batch.runs.map((run) => ({
          from: run.from,
          session: run.session.facts.sessionId,
          statements: run.statements,
        })),
      },
    },
  };
}

export interface StatementRecorderOptions {
  readonly write: AuditBatchWriter;
  readonly now: () => number;
  /** Longest a statement waits to be written (default 50 ms). */
  readonly flushIntervalMs?: number;
  /** Queued statements and events that start a flush at once (default 2000). */
  readonly flushAtStatements?: number;
  /** Chain entries written in one transaction at most (default 500). */
  readonly maxEventsPerWrite?: number;
  /** Statements and events waiting above which sessions stop reading from clients (default 20,000). */
  readonly highWaterMark?: number;
  /** Characters of statement text and parameters queued beyond which the recorder is congested too (default 64 Mi). */
  readonly highWaterChars?: number;
  /** Congested this long without draining: unwritable (default 5000 ms). */
  readonly maxStallMs?: number;
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
  readonly #flushAt: number;
  readonly #maxEventsPerWrite: number;
  readonly #highWaterMark: number;
  readonly #highWaterChars: number;
  readonly #maxStallMs: number;
  readonly #maxAttempts: number;
  readonly #retryIntervalMs: number;
  readonly #onUnwritable: (error: unknown) => void;
  readonly #onError: (error: unknown) => void;
  #queue: Entry[] = [];
  /** Per grant, the batch new statements join; sealed (removed) when an event or a flush passes it. */
  readonly #openBatches = new Map<string, StatementBatch>();
  /** Statements and events queued or being written. */
  #pending = 0;
  /** Characters of the statements queued or being written: a few huge statements weigh like many. */
  #pendingChars = 0;
  #timer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<boolean> | undefined;
  #writable = true;
  #drainListeners = new Set<() => void>();
  #recorded = 0;

  constructor(options: StatementRecorderOptions) {
    this.#write = options.write;
    this.#now = options.now;
    this.#flushIntervalMs = options.flushIntervalMs ?? 50;
    this.#flushAt = options.flushAtStatements ?? 2000;
    this.#maxEventsPerWrite = options.maxEventsPerWrite ?? 500;
    this.#highWaterMark = options.highWaterMark ?? 20_000;
    this.#highWaterChars = options.highWaterChars ?? 64 * 1024 * 1024;
    this.#maxStallMs = options.maxStallMs ?? 5000;
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.#onUnwritable = options.onUnwritable;
    this.#onError = options.onError;
  }

  /** False while the audit log cannot be written: refuse new sessions. */
  get writable(): boolean {
    return this.#writable;
  }

  /** True while too many statements wait: stop reading from clients until {@link onDrain} fires. */
  get congested(): boolean {
    return this.#pending > this.#highWaterMark || this.#pendingChars > this.#highWaterChars;
  }

  /** Statements and events not yet written. */
  get queued(): number {
    return this.#pending;
  }

  /** Statements recorded since the recorder was made (queued or written). */
  get recordedStatements(): number {
    return this.#recorded;
  }

  /** Starts the recording of one session. */
  openSession(facts: SessionFacts): SessionRecording {
    return new SessionRecording(facts);
  }

  /** Queues one statement of `session`; never waits. */
  recordStatement(session: SessionRecording, statement: StatementFields): void {
    const chars =
      statementOverheadChars +
      (typeof statement.sql === 'string' ? statement.sql.length : 0) +
      (Array.isArray(statement.parameters) ? JSON.stringify(statement.parameters).length : 0);
    const grantId = session.facts.grantId;
    let batch = this.#openBatches.get(grantId);
    if (
      batch === undefined ||
      batch.size >= maxStatementsPerEvent ||
      batch.chars + chars > maxCharsPerEvent
    ) {
      batch = { facts: session.facts, runs: [], size: 0, chars: 0 };
      this.#openBatches.set(grantId, batch);
      this.#queue.push(batch);
    }
    let run = session.run;
    if (run?.batch !== batch) {
      run = { batch, session, from: session.next, statements: [] };
      session.run = run;
      batch.runs.push(run);
    }
    run.statements.push(statement);
    batch.size++;
    batch.chars += chars;
    this.#pendingChars += chars;
    session.next++;
    this.#recorded++;
    this.#queued(1);
  }

  /** Queues one event after every statement recorded so far; never waits. */
  record(event: AuditEventInput): void {
    this.#openBatches.clear();
    this.#queue.push({ timed: { event, at: this.#now() } });
    this.#queued(1);
  }

  /** Queues `event` after everything queued and resolves once it is written; rejects when that fails. */
  writeNow(event: AuditEventInput): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#openBatches.clear();
      this.#queue.push({ timed: { event, at: this.#now() }, waiter: { resolve, reject } });
      this.#pending++;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#flushOnce();
    });
  }

  /** Calls `listener` once, when the queue is back under the high-water mark. */
  onDrain(listener: () => void): void {
    if (!this.congested) {
      listener();
      return;
    }
    this.#drainListeners.add(listener);
    if (this.#stallTimer === undefined && this.#writable) {
      this.#stallTimer = setTimeout(() => {
        this.#stallTimer = undefined;
        if (this.congested && this.#writable) {
          this.#turnUnwritable(
            new Error(
              `the audit log fell behind: ${this.#pending} records have waited more than ${this.#maxStallMs} ms`,
            ),
          );
        }
      }, this.#maxStallMs);
      this.#stallTimer.unref();
    }
  }

  /** Writes everything queued; resolves when the queue is empty or a write failed. */
  async flush(): Promise<void> {
    if (this.#flushing) await this.#flushing;
    while (this.#queue.length > 0 && this.#writable) {
      if (!(await this.#flushOnce())) break;
    }
  }

  /** Stops the timers after writing what is queued (best effort). */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#timer = undefined;
    this.#stallTimer = undefined;
    await this.flush().catch((error) => this.#onError(error));
  }

  #queued(count: number): void {
    this.#pending += count;
    this.#flushSoon(this.#pending >= this.#flushAt ? 0 : this.#flushIntervalMs);
  }

  #flushSoon(delayMs: number): void {
    if (this.#flushing) return;
    if (this.#timer) {
      if (delayMs > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flushOnce();
    }, delayMs);
    this.#timer.unref();
  }

  /** Resolves true when the batch it wrote (if any) was written. */
  #flushOnce(): Promise<boolean> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = this.#flushBatch().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length === 0) return;
      const urgent = this.#pending >= this.#flushAt || this.#queue.some((e) => !isBatch(e) && e.waiter);
      this.#flushSoon(!this.#writable ? this.#retryIntervalMs : urgent ? 0 : this.#flushIntervalMs);
    });
    return this.#flushing;
  }

  /** Takes the head of the queue (closing the batches it takes) and writes it, retrying. */
  async #flushBatch(): Promise<boolean> {
    if (this.#queue.length === 0) return true;
    let entries = this.#queue.splice(0, this.#maxEventsPerWrite);
    for (const entry of entries) {
      if (!isBatch(entry)) continue;
      if (this.#openBatches.get(entry.facts.grantId) === entry) this.#openBatches.delete(entry.facts.grantId);
      // An idle session must not keep a written batch (up to 1 MiB) alive through its last run.
      for (const run of entry.runs) if (run.session.run === run) run.session.run = undefined;
    }
    let lastError: unknown;
    // While unwritable, one attempt per retry period is enough.
    const attempts = this.#writable ? this.#maxAttempts : 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.#write(entries.map((e) => (isBatch(e) ? statementsEvent(e) : e.timed)));
        this.#written(entries);
        return true;
      } catch (error) {
        lastError = error;
        this.#onError(error);
        if (attempt < attempts) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      }
    }
    // A caller of writeNow learns of the failure now; its event is not kept for later.
    const waiting = entries.filter((e) => !isBatch(e) && e.waiter);
    if (waiting.length > 0) {
      entries = entries.filter((e) => isBatch(e) || !e.waiter);
      this.#pending -= waiting.length;
      for (const entry of waiting) (entry as QueuedEvent).waiter?.reject(lastError);
    }
    // INVARIANT: what failed goes back to the head of the queue, in order, to be retried first.
    this.#queue.unshift(...entries);
    if (this.#writable) this.#turnUnwritable(lastError);
    return false;
  }

  #written(entries: readonly Entry[]): void {
    let count = 0;
    for (const entry of entries) {
      count += entrySize(entry);
      if (isBatch(entry)) this.#pendingChars -= entry.chars;
      else entry.waiter?.resolve();
    }
    this.#pending -= count;
    this.#writable = true;
    if (!this.congested) {
      if (this.#stallTimer) clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
      if (this.#drainListeners.size > 0) {
        const listeners = [...this.#drainListeners];
        this.#drainListeners.clear();
        for (const listener of listeners) listener();
      }
    }
  }

  #turnUnwritable(error: unknown): void {
    this.#writable = false;
    const problem = error instanceof Error ? error.message : String(error);
    this.record({
      type: 'gateway.recording_failed',
      actor: 'system',
      severity: 'high',
      reason: 'audit_unwritable',
      data: { problem: problem.slice(0, 500), queued: this.#pending },
    });
    this.#onUnwritable(error);
  }
}
