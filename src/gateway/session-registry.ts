/**
 * Live termination: every open gateway session is registered under its grant, and the grant's end
 * closes them all — at the grant's `expires_at` (a timer armed from the grant, not from when the
 * session began), at once when this replica ends the grant (`endGrant`, wired to
 * `AccessService.onGrantEnded`), and at the next liveness check when another replica revoked it.
 */
import type { Clock } from '../core/clock.js';

/** Why a session is being closed; {@link terminationMessage} turns it into what the client reads. */
export type TerminationReason =
  | { readonly kind: 'expired'; readonly grantId: string; readonly at: number }
  | { readonly kind: 'revoked' | 'released' | 'ended'; readonly grantId: string }
  | { readonly kind: 'recording_failed' }
  /** One session ended on request (`POST /api/v1/gateway/sessions/{id}/end`), its grant untouched. */
  | { readonly kind: 'ended_by'; readonly by: string; readonly reason: string }
  | { readonly kind: 'shutdown' };

/** The message of the FATAL ErrorResponse (SQLSTATE 57P01) a terminated client receives. */
export function terminationMessage(reason: TerminationReason): string {
  switch (reason.kind) {
    case 'expired':
      return `terminating connection: access grant ${reason.grantId} expired at ${new Date(reason.at).toISOString()}`;
    case 'revoked':
      return `terminating connection: access grant ${reason.grantId} was revoked`;
    case 'released':
      return `terminating connection: access grant ${reason.grantId} was released by its holder`;
    case 'ended':
      return `terminating connection: access grant ${reason.grantId} is no longer active`;
    case 'ended_by':
      return `terminating connection: session ended by ${reason.by}${reason.reason ? `: ${reason.reason}` : ''}`;
    case 'recording_failed':
      return 'terminating connection: the audit log cannot be written, so statements cannot be recorded';
    case 'shutdown':
      return 'terminating connection: the Portcullis gateway is shutting down';
  }
}

/** What the registry needs of a session. */
export interface RegisteredSession {
  readonly grantId: string;
  /** Closes the session (FATAL to the client, both sockets ended). Must be idempotent. */
  terminate(reason: TerminationReason): void;
}

interface GrantEntry {
  readonly sessions: Set<RegisteredSession>;
  readonly expiresAt: number;
  timer: NodeJS.Timeout | undefined;
}

export interface SessionRegistryOptions {
  readonly clock: Clock;
  /** Asked for every grant with open sessions at each liveness check. */
  readonly isGrantLive: (grantId: string) => Promise<boolean>;
  readonly livenessCheckIntervalMs: number;
  readonly onError: (error: unknown) => void;
}

/** Longest single setTimeout Node accepts; later deadlines are re-armed in steps. */
const maxTimerMs = 2_147_483_647;

/** Open sessions by grant id, with their grant's deadline armed; see the module comment. */
export class SessionRegistry {
  readonly #grants = new Map<string, GrantEntry>();
  /** Grants this replica saw end, so a session admitted in the same instant is closed at once. */
  readonly #ended = new Map<string, TerminationReason>();
  readonly #options: SessionRegistryOptions;
  #livenessTimer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: SessionRegistryOptions) {
    this.#options = options;
  }

  /** Number of open sessions. */
  get size(): number {
    let count = 0;
    for (const entry of this.#grants.values()) count += entry.sessions.size;
    return count;
  }

  /**
   * Registers a session of a grant that ends at `expiresAt`; returns the function that
   * unregisters it (call it when the session closes for any reason).
   */
  add(session: RegisteredSession, expiresAt: number): () => void {
    const ended = this.#ended.get(session.grantId);
    if (ended) {
      queueMicrotask(() => session.terminate(ended));
      return () => {};
    }
    let entry = this.#grants.get(session.grantId);
    if (!entry) {
      entry = { sessions: new Set(), expiresAt, timer: undefined };
      this.#grants.set(session.grantId, entry);
      this.#arm(session.grantId, entry);
    }
    entry.sessions.add(session);
    return () => this.#remove(session);
  }

  /** The grant ended (on this replica): closes its sessions now. */
  endGrant(grantId: string, why: 'expired' | 'revoked' | 'released'): void {
    const at = this.#grants.get(grantId)?.expiresAt ?? this.#options.clock.now();
    this.#terminateGrant(
      grantId,
      why === 'expired' ? { kind: 'expired', grantId, at } : { kind: why, grantId },
    );
  }

  /** Closes every session (shutdown, or the audit log cannot be written). */
  terminateAll(reason: TerminationReason): void {
    for (const grantId of [...this.#grants.keys()]) this.#terminateGrant(grantId, reason);
  }

  /** Starts the periodic liveness check. */
  start(): void {
    if (this.#livenessTimer) return;
    this.#livenessTimer = setInterval(() => void this.checkLiveness(), this.#options.livenessCheckIntervalMs);
    this.#livenessTimer.unref();
  }

  stop(): void {
    if (this.#livenessTimer) clearInterval(this.#livenessTimer);
    this.#livenessTimer = undefined;
    for (const entry of this.#grants.values()) if (entry.timer) clearTimeout(entry.timer);
  }

  /** One liveness pass: every grant with open sessions that is no longer live is ended. */
  async checkLiveness(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      for (const [grantId, entry] of [...this.#grants]) {
        let live: boolean;
        try {
          live = await this.#options.isGrantLive(grantId);
        } catch (error) {
          // Storage is unreachable: the grant's own timer still ends it on time.
          this.#options.onError(error);
          continue;
        }
        if (live) continue;
        const now = this.#options.clock.now();
        this.#terminateGrant(
          grantId,
          now >= entry.expiresAt
            ? { kind: 'expired', grantId, at: entry.expiresAt }
            : { kind: 'ended', grantId },
        );
      }
    } finally {
      this.#checking = false;
    }
  }

  #arm(grantId: string, entry: GrantEntry): void {
    const delay = entry.expiresAt - this.#options.clock.now();
    if (delay <= 0) {
      // Already over: end it on the next turn, after the caller has finished registering.
      entry.timer = setTimeout(() => this.#expire(grantId, entry), 0);
    } else {
      entry.timer = setTimeout(
        () => (delay > maxTimerMs ? this.#arm(grantId, entry) : this.#expire(grantId, entry)),
        Math.min(delay, maxTimerMs),
      );
    }
    entry.timer.unref();
  }

  #expire(grantId: string, entry: GrantEntry): void {
    // A timer can fire a little early on some platforms: wait for the deadline itself.
    const early = entry.expiresAt - this.#options.clock.now();
    if (early > 0) {
      entry.timer = setTimeout(() => this.#expire(grantId, entry), early);
      entry.timer.unref();
      return;
    }
    if (this.#grants.get(grantId) !== entry) return;
    this.#terminateGrant(grantId, { kind: 'expired', grantId, at: entry.expiresAt });
  }

  #terminateGrant(grantId: string, reason: TerminationReason): void {
    if (reason.kind !== 'recording_failed' && reason.kind !== 'shutdown') {
      this.#ended.set(grantId, reason);
      // Bounded: only the race between admission and the end matters, so old entries can go.
      if (this.#ended.size > 10_000) this.#ended.delete(this.#ended.keys().next().value as string);
    }
    const entry = this.#grants.get(grantId);
    if (!entry) return;
    this.#grants.delete(grantId);
    if (entry.timer) clearTimeout(entry.timer);
    for (const session of entry.sessions) {
      try {
        session.terminate(reason);
      } catch (error) {
        this.#options.onError(error);
      }
    }
  }

  #remove(session: RegisteredSession): void {
    const entry = this.#grants.get(session.grantId);
    if (!entry) return;
    entry.sessions.delete(session);
    if (entry.sessions.size === 0) {
      if (entry.timer) clearTimeout(entry.timer);
      this.#grants.delete(session.grantId);
    }
  }
}
