/**
 * The database gateway's metrics on the server's registry: counters of logins and terminations,
 * which the gateway reports as they happen, and gauges and a counter read from its state at scrape
 * time (statements are counted by the gateway itself, so the relay never touches prom-client).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { GatewayMetrics, GatewayState } from '../gateway/index.js';

/**
 * Registers the metrics; `state` is read at scrape time (undefined while the gateway is not
 * listening). Returns what the gateway reports to.
 */
export function registerGatewayMetrics(
  registry: Registry,
  state: () => GatewayState | undefined,
): GatewayMetrics {
  const logins = new Counter({
    name: 'portcullis_gateway_logins_total',
    help: 'Logins to the database gateway by outcome: admitted, refused (token or grant), rejected (before the token: no TLS, no user, replication), throttled (too many logins in progress from one address, or max_connections reached), unavailable (Portcullis could not check or record), upstream_failed',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const terminations = new Counter({
    name: 'portcullis_gateway_terminations_total',
    help: 'Gateway connections Portcullis ended, by reason: expired, revoked, released, ended (grant ended elsewhere), recording_failed, shutdown',
    labelNames: ['reason'],
    registers: [registry],
  });
  const protocolErrors = new Counter({
    name: 'portcullis_gateway_protocol_errors_total',
    help: 'Gateway connections closed for malformed, truncated or oversized PostgreSQL messages',
    registers: [registry],
  });
  const cancels = new Counter({
    name: 'portcullis_gateway_cancel_requests_total',
    help: 'CancelRequests by how they were routed: here (a key this replica issued), shared (a key from another replica, found in the store), unknown (no such key; nothing sent), dropped (too many store look-ups at once)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: (s: GatewayState) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const current = state();
        if (current) this.set(read(current));
      },
    });
  gauge(
    'portcullis_gateway_connections',
    'Open client connections to the gateway, logins included',
    (s) => s.connections,
  );
  gauge('portcullis_gateway_sessions', 'Admitted gateway sessions', (s) => s.sessions);
  gauge(
    'portcullis_gateway_recording_queued',
    'Statements and events waiting to be written to the audit log',
    (s) => s.recordingQueued,
  );
  gauge(
    'portcullis_gateway_recording_writable',
    '1 while the audit log takes gateway records; 0: every session was ended and logins are refused',
    (s) => (s.recordingWritable ? 1 : 0),
  );
  new Counter({
    name: 'portcullis_gateway_statements_recorded_total',
    help: 'Statement records the gateway made (a Query; a Parse; an Execute with its Bind), queued or written to the audit log',
    registers: [registry],
    collect() {
      const current = state();
      if (!current) return;
      this.reset();
      this.inc(current.statementsRecorded);
    },
  });
  return {
    login: (outcome) => logins.inc({ outcome }),
    terminated: (reason) => terminations.inc({ reason }),
    protocolError: () => protocolErrors.inc(),
    cancel: (outcome) => cancels.inc({ outcome }),
  };
}
