/**
 * Notices due at a time rather than at a step (docs/notifications.md#reminders-and-expiry-warnings):
 * - `request.reminded`: approvers are reminded, once, of a request still pending
 *   `notifications.remind_after` after it was made;
 * - `grant.expiring`: the requester is warned, once, `notifications.warn_before_expiry` before
 *   their access ends.
 * Each is an audit event, which the notification relay sends to the channels that take it.
 *
 * One replica at a time looks (the lease `scheduled-notices` in `notification_cursors`, a
 * {@link LeasedSchedule}), every 30 seconds. A notice and its mark (in the ephemeral store, kept past the deadline it is about)
 * commit in one transaction with the event, so each is given once however many replicas run, and a
 * crash never loses or repeats one.
 */
import { type AccessRequest, effectiveApprovals } from '../core/access-request.js';
import type { AuditEventInput } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { LeasedSchedule } from './leased-schedule.js';
import type { Store, Transaction } from './ports.js';

export interface ScheduledNoticesOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** Remind approvers of a request pending this long; undefined: no reminders. */
  readonly remindAfterMs?: number;
  /** Warn the requester this long before the access ends; undefined: no warnings. */
  readonly warnBeforeExpiryMs?: number;
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  readonly onError: (error: unknown) => void;
  /** Time between looks. Default 30 s. */
  readonly intervalMs?: number;
}

/** One kind of notice: which requests are due, and the event that tells of one. */
interface NoticeRule {
  /** Ephemeral kind of the mark that a request had this notice. */
  readonly mark: string;
  due(store: Store, now: number): Promise<AccessRequest[]>;
  /** The event, or null when the request no longer calls for it (read in the notice's transaction). */
  event(tx: Transaction, request: AccessRequest, now: number): Promise<AuditEventInput | null>;
  /** When the mark may go: after the deadline the notice is about. */
  keepMarkUntil(request: AccessRequest, now: number): number;
}

export const scheduledNoticesLease = 'scheduled-notices';
const leaseMs = 5 * 60_000;
const day = 86_400_000;
/** Requests looked at per rule and pass, soonest first; those already given are left out in SQL. */
const batch = 1000;

function reminders(remindAfterMs: number): NoticeRule {
  return {
    mark: 'request-reminded',
    due: (store, now) =>
      store.requests.listPendingMadeBefore(now - remindAfterMs, batch, { kind: 'request-reminded', now }),
    async event(_tx, request, now) {
      if (request.state !== 'pending') return null;
      return {
        type: 'request.reminded',
        actor: 'system',
        requestId: request.id,
        resourceId: request.resourceId,
        reason: 'still pending',
        data: {
          waitingSeconds: Math.floor((now - request.createdAt) / 1000),
          approvals: request.reviews.filter((r) => r.verdict === 'approve').map((r) => r.reviewerId),
          approvalsRequired: effectiveApprovals(request.route),
          ...(request.reviewBy === undefined ? {} : { reviewBy: request.reviewBy }),
        },
      };
    },
    keepMarkUntil: (request, now) => Math.max(request.reviewBy ?? now, now) + day,
  };
}

function expiryWarnings(warnBeforeMs: number): NoticeRule {
  return {
    mark: 'grant-expiry-warned',
    // Active requests ending within the warning time; those already past it are the expiry loop's.
    due: (store, now) =>
      store.requests.listActiveEndingBetween(now, now + warnBeforeMs, batch, {
        kind: 'grant-expiry-warned',
        now,
      }),
    async event(tx, request, now) {
      const expiresAt = request.expiresAt;
      if (request.state !== 'active' || expiresAt === null || expiresAt <= now) return null;
      // Access no longer than the warning time would be warned of as it begins: no news.
      if (expiresAt - (request.activatedAt ?? now) <= warnBeforeMs) return null;
      const grant = await tx.grants.getByRequest(request.id);
      if (grant?.status !== 'active') return null;
      return {
        type: 'grant.expiring',
        actor: 'system',
        requestId: request.id,
        grantId: grant.id,
        resourceId: request.resourceId,
        reason: 'ends soon',
        data: { expiresAt, remainingSeconds: Math.floor((expiresAt - now) / 1000) },
      };
    },
    keepMarkUntil: (request, now) => Math.max(request.expiresAt ?? now, now) + day,
  };
}

export class ScheduledNotices {
  readonly #o: ScheduledNoticesOptions;
  readonly #rules: readonly NoticeRule[];
  readonly #schedule: LeasedSchedule;

  constructor(options: ScheduledNoticesOptions) {
    this.#o = options;
    this.#rules = [
      ...(options.remindAfterMs === undefined ? [] : [reminders(options.remindAfterMs)]),
      ...(options.warnBeforeExpiryMs === undefined ? [] : [expiryWarnings(options.warnBeforeExpiryMs)]),
    ];
    this.#schedule = new LeasedSchedule({
      store: options.store,
      clock: options.clock,
      lease: scheduledNoticesLease,
      owner: options.owner,
      intervalMs: options.intervalMs ?? 30_000,
      leaseMs,
      busyRetryMs: options.intervalMs ?? 30_000,
      firstRun: 'at-once',
      onError: options.onError,
    });
  }

  /** Called at every expiry-loop tick: starts a pass in the background when one is due. */
  tick(now: number): void {
    if (this.#rules.length > 0) this.#schedule.tick(now, (at) => this.#giveAll(at));
  }

  stop(): Promise<void> {
    return this.#schedule.stop();
  }

  /** Gives every notice due at `now` not given yet; how many (undefined: not this replica's turn). */
  async giveDue(now: number): Promise<number | undefined> {
    const { store, owner } = this.#o;
    const held = await store.notificationCursors.claim(scheduledNoticesLease, owner, now, now + leaseMs, 0);
    return held === undefined ? undefined : this.#giveAll(now);
  }

  async #giveAll(now: number): Promise<number> {
    let given = 0;
    for (const rule of this.#rules) {
      for (const candidate of await rule.due(this.#o.store, now)) {
        if (this.#schedule.stopped) return given;
        if (await this.#give(rule, candidate.id, now)) given++;
      }
    }
    return given;
  }

  /**
   * The notice and its mark, in one transaction, from the request as it now stands. The mark is a
   * claim (insert if absent): two replicas that both believe they hold the lease (a clock ahead, a
   * pass longer than the lease) cannot both give it; the second waits for the first and backs off.
   */
  #give(rule: NoticeRule, requestId: string, now: number): Promise<boolean> {
    return this.#o.store.transaction(async (tx) => {
      const request = await tx.requests.get(requestId);
      if (!request) return false;
      const event = await rule.event(tx, request, now);
      if (event === null) return false;
      const until = rule.keepMarkUntil(request, now);
      if (!(await tx.ephemeral.putIfAbsent(rule.mark, request.id, String(now), now, until))) return false;
      await tx.audit.append(event, now);
      return true;
    });
  }
}
