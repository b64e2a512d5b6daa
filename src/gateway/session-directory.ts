/**
 * Which gateway sessions are open on this replica, published for the others, and ending one of
 * them on request (the shared rows are described in src/app/live-session-store.ts).
 *
 * Each replica keeps its own sessions in memory and publishes them as one row in the shared
 * ephemeral store (kind `gateway_sessions`, key = the replica's id): at once when a session opens
 * or closes (at most every {@link minPublishGapMs}), and every {@link republishMs} so the row
 * outlives no replica by more than {@link publishedTtlMs}. Anyone reading the store sees every
 * replica's sessions as of their last publication.
 *
 * To end a session, a request is put under kind `gateway_session_end` (key = session id); the
 * replica holding the session takes it at its next check (`checkIntervalMs`, the gateway's
 * liveness interval) and ends the session with FATAL 57P01. The replica that received the request
 * ends its own sessions at once.
 */
import {
  type EndRequest,
  type LiveSession,
  type LocalSessions,
  liveSessionsKind,
  parseEndRequest,
  publishedTtlMs,
  sessionEndKind,
} from '../app/live-session-store.js';
import type { EphemeralStore } from '../app/ports.js';
import type { Clock } from '../core/clock.js';
import type { TerminationReason } from './session-registry.js';

/** A replica with open sessions writes its row again this often, changed or not. */
const republishMs = 10_000;
/** Opening and closing sessions rewrite the row at most this often. */
const minPublishGapMs = 500;

type SessionStore = Pick<EphemeralStore, 'put' | 'list' | 'take'>;

export interface SessionDirectoryOptions {
  readonly store: SessionStore;
  readonly replica: string;
  readonly clock: Clock;
  readonly checkIntervalMs: number;
  readonly onError: (error: unknown) => void;
}

interface Entry {
  readonly session: LiveSession;
  readonly terminate: (reason: TerminationReason) => void;
}

/** This replica's side of the directory; see the module comment. */
export class SessionDirectory implements LocalSessions {
  readonly #options: SessionDirectoryOptions;
  readonly #entries = new Map<string, Entry>();
  #dirty = false;
  #publishedAt = 0;
  #publishedEmpty = true;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  /** The row write under way: one at a time, so an older list never lands after a newer one. */
  #publishing: Promise<void> | undefined;

  constructor(options: SessionDirectoryOptions) {
    this.#options = options;
  }

  get replica(): string {
    return this.#options.replica;
  }

  /** Registers an open session; returns the function that removes it. */
  add(session: Omit<LiveSession, 'replica'>, terminate: (reason: TerminationReason) => void): () => void {
    this.#entries.set(session.id, { session: { ...session, replica: this.replica }, terminate });
    this.#changed();
    return () => {
      if (this.#entries.delete(session.id)) this.#changed();
    };
  }

  /** This replica's sessions, as they are now. */
  local(): LiveSession[] {
    return [...this.#entries.values()].map((entry) => entry.session);
  }

  /** Ends a session held here; false when it is not (another replica's, or closed). */
  endLocal(sessionId: string, request: EndRequest): boolean {
    const entry = this.#entries.get(sessionId);
    if (!entry) return false;
    entry.terminate({ kind: 'ended_by', by: request.by, reason: request.reason });
    return true;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.tick(), this.#options.checkIntervalMs);
    this.#timer.unref();
  }

  /** Stops the checks and withdraws this replica's row. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#entries.clear();
    await this.#publishing?.catch(() => {});
    await this.#publishOnce().catch(this.#options.onError);
  }

  /** One check: takes end requests for sessions held here, and publishes when due. */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      if (this.#entries.size > 0) await this.#takeEndRequests();
      await this.#publishIfDue();
    } catch (error) {
      this.#options.onError(error);
    } finally {
      this.#ticking = false;
    }
  }

  #changed(): void {
    this.#dirty = true;
    // Only the row is rewritten here: end requests are taken at the next check.
    if (this.#options.clock.now() - this.#publishedAt >= minPublishGapMs)
      queueMicrotask(() => void this.#publishIfDue().catch(this.#options.onError));
  }

  async #publishIfDue(): Promise<void> {
    if (this.#publishing) return;
    const now = this.#options.clock.now();
    const due =
      (this.#dirty && now - this.#publishedAt >= minPublishGapMs) ||
      (this.#entries.size > 0 && now - this.#publishedAt >= republishMs);
    if (due) await this.#publishOnce();
  }

  async #publishOnce(): Promise<void> {
    this.#publishing = this.#publish();
    try {
      await this.#publishing;
    } finally {
      this.#publishing = undefined;
    }
  }

  async #takeEndRequests(): Promise<void> {
    const { store, clock } = this.#options;
    const now = clock.now();
    for (const { key } of await store.list(sessionEndKind, now)) {
      if (!this.#entries.has(key)) continue;
      const value = await store.take(sessionEndKind, key, now);
      if (value !== undefined) this.endLocal(key, parseEndRequest(value));
    }
  }

  async #publish(): Promise<void> {
    const now = this.#options.clock.now();
    const sessions = this.local();
    this.#dirty = false;
    this.#publishedAt = now;
    if (sessions.length === 0 && this.#publishedEmpty) return;
    this.#publishedEmpty = sessions.length === 0;
    await this.#options.store.put(
      liveSessionsKind,
      this.replica,
      JSON.stringify(sessions),
      now + publishedTtlMs,
    );
  }
}
