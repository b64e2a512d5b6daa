/** Audit streams' delivery on the server's registry: how far behind each is, and failed attempts. */
import { Counter, Gauge, type Registry } from 'prom-client';
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
