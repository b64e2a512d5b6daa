/**
 * How replicas share their open gateway sessions through the ephemeral store: each replica
 * publishes its sessions as one row (kind `gateway_sessions`, key = the replica's id, trusted for
 * {@link publishedTtlMs}), and a request to end a session is a row of kind `gateway_session_end`
 * (key = the session id) that the replica holding the session takes. The gateway's side is
 * src/gateway/session-directory.ts.
 */
import type { EphemeralStore } from './ports.js';

/** An open session as operators see it. */
export interface LiveSession {
  readonly id: string;
  readonly grantId: string;
  readonly principalId: string;
  readonly resourceId: string;
  readonly requestId: string;
  /** The client's address as the gateway saw it. */
  readonly clientAddress: string | null;
  readonly applicationName: string | null;
  readonly tls: boolean;
  readonly startedAt: number;
  /** The replica that holds it. */
  readonly replica: string;
}

/** Who asked for a session to end, and why (what the client reads). */
export interface EndRequest {
  readonly by: string;
  readonly reason: string;
}

/** A replica's sessions as they are now, and ending one of them there. */
export interface LocalSessions {
  readonly replica: string;
  local(): LiveSession[];
  /** False when the session is not held here. */
  endLocal(sessionId: string, request: EndRequest): boolean;
}

export const liveSessionsKind = 'gateway_sessions';
export const sessionEndKind = 'gateway_session_end';
/** A published row is trusted this long after it was written. */
export const publishedTtlMs = 30_000;
/** An end request that no replica takes (the session had just closed) is dropped after this. */
export const endRequestTtlMs = 60_000;

/** Every replica's sessions as last published; those of `local` as they are now. Oldest first. */
export async function allLiveSessions(
  store: Pick<EphemeralStore, 'list'>,
  now: number,
  local?: LocalSessions,
): Promise<LiveSession[]> {
  const sessions = local ? local.local() : [];
  for (const row of await store.list(liveSessionsKind, now)) {
    if (row.key === local?.replica) continue;
    sessions.push(...(JSON.parse(row.value) as LiveSession[]));
  }
  return sessions.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1));
}

/** Asks whichever replica holds `sessionId` to end it. */
export async function requestSessionEnd(
  store: Pick<EphemeralStore, 'put'>,
  sessionId: string,
  request: EndRequest,
  now: number,
): Promise<void> {
  await store.put(sessionEndKind, sessionId, JSON.stringify(request), now + endRequestTtlMs);
}

export function parseEndRequest(value: string): EndRequest {
  const parsed = JSON.parse(value) as Partial<EndRequest>;
  return { by: String(parsed.by ?? 'unknown'), reason: String(parsed.reason ?? '') };
}
