/**
 * Reminds approvers, once, of a request still pending `notifications.remind_after` after it was
 * made (docs/notifications.md#reminders): the event `request.reminded`, which the notification
 * relay sends to the channels that take it, as it sends `request.created`.
 *
 * One replica at a time looks (the lease `request-reminders` in `notification_cursors`), every
 * 30 seconds. A reminder and its mark (`request-reminded:<id>` in the ephemeral store, kept until
 * the request's review deadline) commit in one transaction with the event, so a request is
 * reminded once however many replicas run, and a crash never loses or repeats one.
 */
import { effectiveApprovals } from '../core/access-request.js';
import type { Clock } from '../core/clock.js';
import type { Store } from './ports.js';

export interface RequestRemindersOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly remindAfterMs: number;
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  readonly onError: (error: unknown) => void;
  /** Time between looks. Default 30 s. */
  readonly intervalMs?: number;
}

export const requestRemindersLease = 'request-reminders';
const reminderMark = 'request-reminded';
const leaseMs = 5 * 60_000;
/** Pending requests looked at per pass, oldest first. */
const batch = 1000;

export class RequestReminders {
  readonly #o: RequestRemindersOptions;
  #running: Promise<void> | null = null;
  #notBefore = 0;
  #stopped = false;

  constructor(options: RequestRemindersOptions) {
    this.#o = options;
  }

  /** Called at every expiry-loop tick: starts a pass in the background when one is due. */
  tick(now: number): void {
    if (this.#stopped || this.#running || now < this.#notBefore) return;
    this.#notBefore = now + (this.#o.intervalMs ?? 30_000);
    this.#running = this.remindDue(now)
      .then(
        () => undefined,
        (error: unknown) => this.#o.onError(error),
      )
      .finally(() => {
        this.#running = null;
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
    await this.#o.store.notificationCursors.release(requestRemindersLease, this.#o.owner);
  }

  /** Reminds every request due at `now` that was not reminded yet; how many it reminded (undefined: not this replica's turn). */
  async remindDue(now: number): Promise<number | undefined> {
    const { store, owner, remindAfterMs } = this.#o;
    const held = await store.notificationCursors.claim(requestRemindersLease, owner, now, now + leaseMs, 0);
    if (held === undefined) return undefined;
    const due = await store.requests.listPendingMadeBefore(now - remindAfterMs, batch);
    let reminded = 0;
    for (const candidate of due) {
      if (this.#stopped) break;
      if (await store.ephemeral.peek(reminderMark, candidate.id, now)) continue;
      const done = await store.transaction(async (tx) => {
        const request = await tx.requests.get(candidate.id);
        if (request?.state !== 'pending' || (await tx.ephemeral.peek(reminderMark, request.id, now)))
          return false;
        const reviewBy = request.reviewBy ?? now + remindAfterMs;
        await tx.ephemeral.put(reminderMark, request.id, String(now), Math.max(reviewBy, now) + 86_400_000);
        const approvals = request.reviews
          .filter((review) => review.verdict === 'approve')
          .map((r) => r.reviewerId);
        await tx.audit.append(
          {
            type: 'request.reminded',
            actor: 'system',
            requestId: request.id,
            resourceId: request.resourceId,
            reason: 'still pending',
            data: {
              waitingSeconds: Math.floor((now - request.createdAt) / 1000),
              approvals,
              approvalsRequired: effectiveApprovals(request.route),
              ...(request.reviewBy === undefined ? {} : { reviewBy: request.reviewBy }),
            },
          },
          now,
        );
        return true;
      });
      if (done) reminded++;
    }
    return reminded;
  }
}
