/**
 * What the gateway reports for monitoring, as a port: the Prometheus adapter
 * (src/observability/gateway-metrics.ts) implements it. Only rare events are counted here, so the
 * relay's hot path never touches a metric; counts that grow per statement are read from
 * {@link GatewayState} at scrape time.
 */
import type { TerminationReason } from './session-registry.js';

/** How a login to the gateway ended. */
export type LoginOutcome =
  /** Admitted: the session reached the relay. */
  | 'admitted'
  /** Refused by admission (no, wrong, expired or foreign token, grant not live): 28000/28P01. */
  | 'refused'
  /** Refused before admission: no TLS, no user name, a replication connection. */
  | 'rejected'
  /** Turned away unread: too many logins in progress from one address, or max_connections reached. */
  | 'throttled'
  /** Portcullis could not decide or record it (admission error, audit log unwritable): 57P03. */
  | 'unavailable'
  /** Admitted, but the database refused the upstream login or could not be reached. */
  | 'upstream_failed';

/**
 * How a CancelRequest was routed: by a key this replica issued, by one another replica shared
 * through the store, not at all (unknown key or wrong secret), or dropped (too many look-ups).
 */
export type CancelOutcome = 'here' | 'shared' | 'unknown' | 'dropped';

export interface GatewayMetrics {
  login(outcome: LoginOutcome): void;
  /** Portcullis ended a connection: its grant ended, recording failed, or the gateway stops. */
  terminated(kind: TerminationReason['kind']): void;
  /** A connection sent something that is not PostgreSQL protocol 3.0 (or too large) and was closed. */
  protocolError(): void;
  cancel(outcome: CancelOutcome): void;
}

/** The gateway's state, read when metrics are scraped. */
export interface GatewayState {
  /** Open client connections, logins in progress included. */
  readonly connections: number;
  /** Admitted sessions. */
  readonly sessions: number;
  /** Statements recorded since the gateway started (queued or written). */
  readonly statementsRecorded: number;
  /** Statements and events waiting to be written to the audit log. */
  readonly recordingQueued: number;
  /** False while the audit log cannot be written: every session was ended and logins are refused. */
  readonly recordingWritable: boolean;
}

/** For a gateway without monitoring (tests, benchmarks). */
export const noGatewayMetrics: GatewayMetrics = {
  login() {},
  terminated() {},
  protocolError() {},
  cancel() {},
};
