/**
 * Tells people about access requests by following the audit log. The log is the outbox: every
 * request step is an audit event committed in the same transaction as the step, so nothing a
 * notification reports can be lost or reported without having happened, and the request path pays
 * nothing extra.
 *
 * Each channel has its own position in the log and its own lease (a row in `notification_cursors`),
 * so a channel that is down holds back only itself, and of several replicas one delivers for each
 * channel. Delivery is at least once: a replica that dies between sending and recording its
 * position leaves the next holder to send that notification again, with the same id (the audit
 * event's), by which receivers drop duplicates. A notification still failing after `maxAttempts`
 * is given up and recorded as a `notification.failed` audit event, and the channel moves on.
 */
import { abortableDelay, backoffDelayMs, errorText, withinTime } from '../break-glass/alerts/dispatcher.js';
import type { Clock } from '../core/clock.js';
import { type AccessNotification, isNotifiableEvent, notificationFor } from '../core/notification.js';
import type { NotificationChannel } from '../notifications/ports.js';
import type { AuditRecord, Store } from './ports.js';

export interface NotificationRelayOptions {
  readonly store: Store;
  readonly channels: readonly NotificationChannel[];
  readonly clock: Clock;
  /** This replica, as lease owner: unique per process. */
  readonly owner: string;
  readonly onError: (error: unknown, channel: string) => void;
  /** How often an idle channel looks for new events. Default 1 s. */
  readonly pollIntervalMs?: number;
  /** A lease lasts this long unless renewed; another replica takes over after it. Default 60 s. */
  readonly leaseMs?: number;
  /** Attempts per notification and channel, the first included. Default 6. */
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Upper bound of one attempt whatever the channel's own timeout. Default 30 s. */
  readonly attemptTimeoutMs?: number;
  /** Most people addressed by one notification (approvers of a large group). Default 100. */
  readonly maxRecipients?: number;
  readonly random?: () => number;
}

const batchSize = 200;

export class NotificationRelay {
  readonly #o: NotificationRelayOptions;
  readonly #pollIntervalMs: number;
  readonly #leaseMs: number;
  readonly #maxAttempts: number;
  readonly #stopping = new AbortController();
  readonly #loops: Promise<void>[] = [];
  /** Channels whose cursor row exists (claimed once by this process). */
  readonly #seen = new Set<string>();

  constructor(options: NotificationRelayOptions) {
    this.#o = options;
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 6);
  }

  start(): void {
    for (const channel of this.#o.channels) this.#loops.push(this.#loop(channel));
  }

  /** Stops after the attempt under way; leases are released so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled(this.#loops);
    await Promise.allSettled(
      this.#o.channels.map((channel) =>
        this.#o.store.notificationCursors.release(channel.name, this.#o.owner),
      ),
    );
  }

  async #loop(channel: NotificationChannel): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      try {
        await this.drain(channel);
      } catch (error) {
        this.#o.onError(error, channel.name);
      }
      await this.#wait(this.#pollIntervalMs);
    }
  }

  /**
   * Handles every event after the channel's position, if this replica holds (or can take) its
   * lease. Exposed for tests; the loop calls it once per poll.
   */
  async drain(channel: NotificationChannel): Promise<void> {
    const { store, owner } = this.#o;
    const leaseUntil = () => this.#o.clock.now() + this.#leaseMs;
    // A channel configured for the first time starts at the end of the log, not at its beginning;
    // once its row exists, where a new one would start no longer matters.
    const startAt = this.#seen.has(channel.name) ? 0 : (await store.auditLog.head()).seq;
    let position = await store.notificationCursors.claim(
      channel.name,
      owner,
      this.#o.clock.now(),
      leaseUntil(),
      startAt,
    );
    this.#seen.add(channel.name);
    if (position === undefined) return;
    for (;;) {
      const events = await store.auditLog.read(position, batchSize);
      if (events.length === 0) return;
      for (const event of events) {
        if (this.#stopping.signal.aborted) return;
        const notification = await this.#notificationOf(event, channel);
        if (notification && !(await this.#deliver(channel, notification, position))) return;
        position = event.seq;
        // Recorded after each delivery, so a crash resends at most the one under way.
        if (
          notification &&
          !(await store.notificationCursors.advance(channel.name, owner, position, leaseUntil()))
        )
          return;
      }
      if (!(await store.notificationCursors.advance(channel.name, owner, position, leaseUntil()))) return;
    }
  }

  async #notificationOf(
    event: AuditRecord,
    channel: NotificationChannel,
  ): Promise<AccessNotification | null> {
    if (!isNotifiableEvent(event.type) || !event.requestId) return null;
    if (event.resourceId && !channel.wants(event.type, event.resourceId)) return null;
    const request = await this.#o.store.requests.get(event.requestId);
    if (!request) return null;
    const notification = notificationFor(
      {
        id: event.id,
        type: event.type,
        actor: event.actor,
        at: event.at,
        requestId: event.requestId,
        grantId: event.grantId ?? null,
        reason: event.reason ?? null,
      },
      request,
    );
    return notification && channel.wants(notification.event, notification.resourceId) ? notification : null;
  }

  /** E-mail addresses of the notification's audience, if the channel addresses that audience. */
  async #recipients(channel: NotificationChannel, n: AccessNotification): Promise<string[]> {
    if (!channel.audiences.includes(n.audience)) return [];
    const principals = this.#o.store.principals;
    if (n.audience === 'requester') {
      const requester = await principals.get(n.requesterId);
      return requester?.email && !requester.disabled && !requester.lock ? [requester.email] : [];
    }
    // An approver never approves their own request, so the requester is not asked to.
    const approvers = await principals.membersOf(n.approverGroups, (this.#o.maxRecipients ?? 100) + 1);
    return approvers
      .filter((p) => p.id !== n.requesterId && p.email)
      .map((p) => p.email as string)
      .slice(0, this.#o.maxRecipients ?? 100);
  }

  /**
   * Tries until delivered or given up (true), renewing the lease before each retry; false when
   * stopping or when the lease was lost (another replica now delivers it).
   */
  async #deliver(channel: NotificationChannel, n: AccessNotification, position: number): Promise<boolean> {
    const o = this.#o;
    let lastError = '';
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) {
        const delay = backoffDelayMs(
          attempt - 1,
          o.baseDelayMs ?? 1000,
          o.maxDelayMs ?? 60_000,
          o.random ?? Math.random,
        );
        await this.#wait(delay);
        if (this.#stopping.signal.aborted) return false;
        const renewed = await o.store.notificationCursors.advance(
          channel.name,
          o.owner,
          position,
          o.clock.now() + this.#leaseMs,
        );
        if (!renewed) return false;
      }
      try {
        const recipients = await this.#recipients(channel, n);
        const limit = o.attemptTimeoutMs ?? 30_000;
        await withinTime(() => channel.send(n, recipients), limit, `no answer within ${limit} ms`);
        return true;
      } catch (error) {
        lastError = errorText(error);
      }
    }
    await o.store.transaction((tx) =>
      tx.audit.append(
        {
          type: 'notification.failed',
          actor: 'system',
          severity: 'warning',
          requestId: n.requestId,
          resourceId: n.resourceId,
          data: {
            channel: channel.name,
            kind: channel.kind,
            notificationId: n.id,
            event: n.event,
            attempts: this.#maxAttempts,
            error: lastError,
          },
        },
        o.clock.now(),
      ),
    );
    return true;
  }

  #wait(ms: number): Promise<void> {
    return abortableDelay(ms, this.#stopping.signal);
  }
}
