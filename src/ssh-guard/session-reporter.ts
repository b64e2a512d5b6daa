/**
 * Sends the guard's session events to Portcullis (POST /ssh/{resource}/session-events,
 * docs/provisioners.md#session-reports-in-the-audit-log), where they become audit events of the
 * grants. Sending never holds up the guard: events wait in a bounded queue, go in batches, and are
 * kept and retried with a growing pause while the server cannot take them. The host's own log
 * line for each event is written regardless, so nothing depends on the network.
 */
import type { GuardLog, GuardSessionEvent } from './ssh-session-guard.js';

/** The server takes at most this many events per report. */
const batchSize = 100;
const firstRetryMs = 1000;
const longestRetryMs = 60_000;
const requestTimeoutMs = 10_000;
/** Portcullis writes `portcullis grant <id> for <principal>` as every certificate's key id. */
const portcullisKeyId = /^portcullis grant (\S{1,128}) for /;

interface WireEvent {
  readonly type: GuardSessionEvent['type'];
  readonly grant_id: string;
  readonly serial: string;
  readonly account: string;
  readonly pid: number;
  readonly connection_start?: string;
  readonly at: string;
  readonly reason?: string;
  readonly connection_open?: boolean;
  readonly processes?: number;
}

export interface SessionReporterDependencies {
  /** `https://…/ssh/{resource}/session-events`. */
  readonly url: string;
  readonly token: string;
  /** This host's name, as reports name it. */
  readonly host: string;
  readonly fetch: typeof fetch;
  readonly now: () => number;
  readonly log: GuardLog;
  /** Events kept while the server cannot take them; the oldest go first beyond it. */
  readonly maxQueued?: number;
}

export class SessionReporter {
  readonly #deps: SessionReporterDependencies;
  readonly #queue: WireEvent[] = [];
  #retryAt = 0;
  #failedInARow = 0;
  #sending: Promise<void> | undefined;
  #dropped = 0;

  constructor(deps: SessionReporterDependencies) {
    this.#deps = deps;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Queues an event; one whose certificate Portcullis did not issue for a grant is not sent. */
  add(event: GuardSessionEvent): void {
    const grantId = portcullisKeyId.exec(event.keyId)?.[1];
    if (!grantId) return;
    this.#queue.push({
      type: event.type,
      grant_id: grantId,
      serial: event.serial.toString(),
      account: event.account,
      pid: event.pid,
      ...(/^\d{1,20}$/.test(event.connectionStart) ? { connection_start: event.connectionStart } : {}),
      at: new Date(event.at).toISOString(),
      ...(event.ending
        ? {
            reason: event.ending.reason,
            connection_open: event.ending.connectionOpen,
            processes: event.ending.processes,
          }
        : {}),
    });
    const limit = this.#deps.maxQueued ?? 10_000;
    if (this.#queue.length > limit) {
      this.#dropped += this.#queue.length - limit;
      this.#queue.splice(0, this.#queue.length - limit);
    }
  }

  /** Starts sending what is queued unless a send is under way or a retry is not due. */
  sendInBackground(): void {
    if (this.#sending || this.#queue.length === 0 || this.#deps.now() < this.#retryAt) return;
    this.#sending = this.#sendAll().finally(() => {
      this.#sending = undefined;
    });
  }

  /** Waits for the send under way, if any. */
  async settled(): Promise<void> {
    await this.#sending;
  }

  /** Waits for the send under way, then tries once more: for a guard that is stopping. */
  async drain(): Promise<void> {
    await this.#sending;
    this.#retryAt = 0;
    this.sendInBackground();
    await this.#sending;
  }

  async #sendAll(): Promise<void> {
    if (this.#dropped > 0) {
      this.#deps.log.error(
        { dropped: this.#dropped },
        'ssh-guard: the report queue was full; the oldest session events were dropped (they remain in this log)',
      );
      this.#dropped = 0;
    }
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, batchSize);
      const outcome = await this.#send(batch);
      if (outcome === 'retry') {
        this.#failedInARow += 1;
        this.#retryAt =
          this.#deps.now() + Math.min(longestRetryMs, firstRetryMs * 2 ** (this.#failedInARow - 1));
        return;
      }
      this.#failedInARow = 0;
      this.#queue.splice(0, batch.length);
    }
  }

  /** 'done' when the batch is settled (recorded, or refused for good), 'retry' to keep it. */
  async #send(batch: readonly WireEvent[]): Promise<'done' | 'retry'> {
    let response: Response;
    try {
      response = await this.#deps.fetch(this.#deps.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#deps.token}` },
        body: JSON.stringify({ host: this.#deps.host, events: batch }),
        signal: AbortSignal.timeout(requestTimeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      this.#deps.log.warn(
        {
          err: { message: (error as Error).message },
          queued: this.#queue.length,
          failed_in_a_row: this.#failedInARow + 1,
        },
        'ssh-guard: could not send session reports; keeping them',
      );
      return 'retry';
    }
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.status === 200) {
      for (const rejected of (body.rejected as { index: number; code: string; detail: string }[]) ?? [])
        this.#deps.log.warn(
          { code: rejected.code, detail: rejected.detail, event: batch[rejected.index] },
          'ssh-guard: Portcullis rejected a session report',
        );
      return 'done';
    }
    if (response.status === 400) {
      // A batch the server cannot read never will be: keeping it would stop every later report.
      this.#deps.log.error(
        { status: response.status, detail: body.detail, events: batch.length },
        'ssh-guard: Portcullis refused a batch of session reports as malformed; dropped',
      );
      return 'done';
    }
    this.#deps.log.error(
      {
        status: response.status,
        code: body.code,
        detail: body.detail,
        queued: this.#queue.length,
        failed_in_a_row: this.#failedInARow + 1,
      },
      response.status === 401 || response.status === 404
        ? 'ssh-guard: Portcullis does not take session reports with this secret for this resource; keeping them'
        : 'ssh-guard: Portcullis could not take session reports; keeping them',
    );
    return 'retry';
  }
}
