/**
 * The audit log's metrics on the server's registry: streams' delivery (how far behind each is,
 * failed attempts) and retention.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditRetentionMetrics } from '../app/audit-retention.js';
import type { AuditStreamMetrics } from '../app/audit-stream-relay.js';

export class PrometheusAuditStreamMetrics implements AuditStreamMetrics {
  readonly #lag: Gauge<'stream'>;
  readonly #delivered: Gauge<'stream'>;
  readonly #failures: Counter<'stream'>;

  constructor(registry: Registry) {
    this.#lag = new Gauge({
      name: 'portcullis_audit_stream_lag_events',
      help: 'Audit events not yet taken by the stream collector; reported by the replica that sends for the stream',
      labelNames: ['stream'],
      registers: [registry],
    });
    this.#delivered = new Gauge({
      name: 'portcullis_audit_stream_delivered_seq',
      help: 'Sequence number of the last audit event the stream collector took',
      labelNames: ['stream'],
      registers: [registry],
    });
    this.#failures = new Counter({
      name: 'portcullis_audit_stream_failures_total',
      help: 'Attempts to send a batch that the stream collector did not take (retried until it does)',
      labelNames: ['stream'],
      registers: [registry],
    });
  }

  position(stream: string, delivered: number, lag: number): void {
    this.#delivered.set({ stream }, delivered);
    this.#lag.set({ stream }, lag);
  }

  notHeld(stream: string): void {
    this.#delivered.remove({ stream });
    this.#lag.remove({ stream });
  }

  failed(stream: string): void {
    this.#failures.inc({ stream });
  }
}

/** Audit retention: where the kept log begins, and how many events were deleted. */
export class PrometheusAuditRetentionMetrics implements AuditRetentionMetrics {
  readonly #firstKept: Gauge;
  readonly #deleted: Counter;

  constructor(registry: Registry) {
    this.#firstKept = new Gauge({
      name: 'portcullis_audit_first_kept_seq',
      help: 'Sequence number of the oldest audit event kept; the ones before it were removed by retention',
      registers: [registry],
    });
    this.#deleted = new Counter({
      name: 'portcullis_audit_pruned_events_total',
      help: 'Audit events deleted by retention by this replica',
      registers: [registry],
    });
  }

  firstKept(seq: number): void {
    this.#firstKept.set(seq);
  }

  deleted(events: number): void {
    this.#deleted.inc(events);
  }
}
