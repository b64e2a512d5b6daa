/**
 * Audit retention (docs/audit.md#retention): removes the events older than `audit.retention`
 * without breaking what an export proves about the rest.
 *
 * The log is cut only at a signed checkpoint: its head hash is the `prev_hash` of the first event
 * kept, so an export of what remains still verifies from that signature. The cut is recorded first,
 * in one transaction (fail closed): an `audit.pruned` event naming the checkpoint, and the floor
 * (`audit_head.pruned_through`) under which readers and exports see nothing from then on. Rows
 * under the floor are then deleted in batches, by whichever replica holds the retention lease;
 * a crash between batches leaves rows nobody reads, deleted by the next run.
 *
 * What is not cut: events a configured audit stream has not delivered yet (its collector would
 * never get them), and anything signed at or after `now - retention`.
 */
import type { AuditSigningKey } from '../audit/checkpoint.js';
import { type CutStatement, signCut } from '../audit/cut-statement.js';
import type { Clock } from '../core/clock.js';
import { auditStreamCursorPrefix } from './audit-stream-relay.js';
import { LeasedSchedule } from './leased-schedule.js';
import type { AuditCheckpoint, Store } from './ports.js';

export interface AuditRetentionOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** Events signed longer ago than this are removed. */
  readonly retentionMs: number;
  /** Audit streams (`audit.streams[].name`) whose undelivered events must stay. */
  readonly streams: readonly string[];
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  /** The active audit key: it signs the cut, as it signs checkpoints. */
  readonly signingKey: () => Promise<AuditSigningKey>;
  /**
   * Whether a stored checkpoint's signature verifies under the published audit keys: the log is
   * cut only at one that does, so that a checkpoint row whose time was changed in the database
   * cannot make recent events look old.
   */
  readonly checkpointValid: (checkpoint: AuditCheckpoint) => Promise<boolean>;
  readonly onError: (error: unknown) => void;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
  readonly metrics?: AuditRetentionMetrics;
  /** Time between runs. Default one hour. */
  readonly intervalMs?: number;
  /** Events deleted per statement. Default 5000. */
  readonly deleteBatch?: number;
}

export interface AuditRetentionMetrics {
  /** The first sequence still kept (the floor plus one). */
  firstKept(seq: number): void;
  deleted(events: number): void;
}

/** What one run did. */
export interface AuditRetentionRun {
  /** The checkpoint the log was cut at in this run; undefined when nothing was due. */
  readonly cutAt?: AuditCheckpoint;
  /** Events deleted from the database in this run (also those of an earlier, unfinished cut). */
  readonly deletedEvents: number;
  /** Streams that kept the cut lower than retention alone would have. */
  readonly heldBackBy: readonly string[];
}

export const auditRetentionLease = 'audit-retention';
const leaseMs = 10 * 60_000;
const busyRetryMs = 60_000;

export class AuditRetention {
  readonly #o: AuditRetentionOptions;
  readonly #schedule: LeasedSchedule;

  constructor(options: AuditRetentionOptions) {
    this.#o = options;
    this.#schedule = new LeasedSchedule({
      store: options.store,
      clock: options.clock,
      lease: auditRetentionLease,
      owner: options.owner,
      intervalMs: options.intervalMs ?? 3_600_000,
      leaseMs,
      busyRetryMs,
      firstRun: 'at-once',
      onError: options.onError,
    });
  }

  /** Called at every expiry-loop tick: starts a run in the background when one is due. */
  tick(now: number): void {
    this.#schedule.tick(now, (at) => this.#run(at));
  }

  stop(): Promise<void> {
    return this.#schedule.stop();
  }

  /** A run when one is due (hourly, on one replica at a time); undefined otherwise. */
  runIfDue(now: number): Promise<AuditRetentionRun | undefined> {
    return this.#schedule.runIfDue(now, (at) => this.#run(at));
  }

  /** A run now, whenever the last one was; undefined while another replica holds the lease. */
  async run(now: number): Promise<AuditRetentionRun | undefined> {
    const claimed = await this.#o.store.notificationCursors.claim(
      auditRetentionLease,
      this.#o.owner,
      now,
      now + leaseMs,
      0,
    );
    return claimed === undefined ? undefined : this.#run(now);
  }

  /** Cuts the log where retention allows, then deletes what lies under the floor. */
  async #run(now: number): Promise<AuditRetentionRun> {
    const { store, retentionMs } = this.#o;
    const cutoff = now - retentionMs;
    const head = await store.auditLog.head();
    const dueByAge = await store.auditLog.lastCheckpointSignedBefore(cutoff, head.seq);
    const delivered = await this.#deliveredByStreams();
    const limit = Math.min(head.seq, ...delivered.values());
    const anchor =
      dueByAge === undefined || dueByAge.seq <= limit
        ? dueByAge
        : await store.auditLog.lastCheckpointSignedBefore(cutoff, limit);
    const heldBackBy = [...delivered]
      .filter(([, seq]) => dueByAge !== undefined && seq < dueByAge.seq)
      .map(([name]) => name);
    const floor = head.prunedThrough;
    let cutAt: AuditCheckpoint | undefined;
    if (anchor !== undefined && anchor.seq > floor) {
      if (!(await this.#o.checkpointValid(anchor))) {
        throw new Error(
          `checkpoint ${anchor.seq} does not verify under the published audit keys: the log is not cut there`,
        );
      }
      const statement: CutStatement = {
        throughSeq: anchor.seq,
        throughHash: anchor.headHash,
        checkpointAt: anchor.at,
        cutoff,
        retentionSeconds: Math.floor(retentionMs / 1000),
      };
      const { kid, signature } = await signCut(statement, await this.#o.signingKey());
      const cut = await store.transaction(async (tx) => {
        if (!(await tx.auditRetention.markPrunedThrough(anchor.seq))) return false;
        await tx.audit.append(
          {
            type: 'audit.pruned',
            actor: 'system',
            severity: 'warning',
            reason: 'retention',
            data: {
              ...statement,
              events: anchor.seq - floor,
              ...(heldBackBy.length > 0 ? { heldBackBy } : {}),
              kid,
              signature,
            },
          },
          now,
        );
        return true;
      });
      if (cut) {
        cutAt = anchor;
        this.#o.log?.('audit log cut by retention', {
          throughSeq: anchor.seq,
          events: anchor.seq - floor,
          ...(heldBackBy.length > 0 ? { heldBackBy } : {}),
        });
      }
    }
    if (heldBackBy.length > 0) this.#o.log?.('audit retention held back by streams', { heldBackBy, limit });
    const deletedEvents = await this.#deleteUnderFloor();
    this.#o.metrics?.firstKept((await store.auditLog.prunedThrough()) + 1);
    return { ...(cutAt ? { cutAt } : {}), deletedEvents, heldBackBy };
  }

  /** How far each configured stream has delivered. */
  async #deliveredByStreams(): Promise<Map<string, number>> {
    const delivered = new Map<string, number>();
    for (const name of this.#o.streams) {
      // A stream whose relay has not started yet may begin at the first event: keep everything.
      const position = await this.#o.store.notificationCursors.position(`${auditStreamCursorPrefix}${name}`);
      delivered.set(name, position ?? 0);
    }
    return delivered;
  }

  async #deleteUnderFloor(): Promise<number> {
    const { store, clock } = this.#o;
    const batch = this.#o.deleteBatch ?? 5000;
    let deleted = 0;
    for (;;) {
      const removed = await store.auditRetention.deletePrunedEvents(batch);
      deleted += removed;
      if (removed > 0) this.#o.metrics?.deleted(removed);
      if (removed < batch || this.#schedule.stopped) break;
      // Renewed between batches: a long deletion must not let a second replica start another.
      if (!(await this.#schedule.renew(clock.now()))) break;
    }
    await store.auditRetention.deletePrunedCheckpoints();
    return deleted;
  }
}
