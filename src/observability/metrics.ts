/**
 * Prometheus metrics (prom-client) on a registry of our own, so two instances in one process
 * (tests) do not collide. Gauges of state are read from the database at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AccessMetrics, Store } from '../app/ports.js';

export class PrometheusMetrics implements AccessMetrics {
  readonly registry = new Registry();
  private readonly approval: Histogram;
  private readonly activation: Histogram;
  private readonly lag: Histogram;
  private readonly revocationFailures: Counter<'resource'>;

  constructor(store: Store, options: { defaultMetrics?: boolean; now?: () => number } = {}) {
    const now = options.now ?? Date.now;
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_process_' });
    this.approval = new Histogram({
      name: 'portcullis_approval_latency_seconds',
      help: 'Time from request to approval',
      buckets: [1, 10, 60, 300, 900, 3600, 14_400, 86_400],
      registers: [this.registry],
    });
    this.activation = new Histogram({
      name: 'portcullis_activation_latency_seconds',
      help: 'Time from approval to usable access (provisioning)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [this.registry],
    });
    this.lag = new Histogram({
      name: 'portcullis_revocation_lag_seconds',
      help: "Time from a grant's expires_at (or revoke) to the access being gone in the target",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300],
      registers: [this.registry],
    });
    this.revocationFailures = new Counter({
      name: 'portcullis_revocation_failures_total',
      help: 'Revocation attempts that failed (each is retried with backoff)',
      labelNames: ['resource'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'portcullis_requests',
      help: 'Access requests by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [state, count] of Object.entries(await store.requests.countByState()))
          this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'portcullis_grants',
      help: 'Grants by status; revoke_failed is access that could not yet be taken back',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [status, count] of Object.entries(await store.grants.countByStatus()))
          this.set({ status }, count);
      },
    });
    new Gauge({
      name: 'portcullis_signing_key_age_seconds',
      help: 'Age of the key that signs (token, audit); a token key past tokens.rotation_interval means the scheduled rotation is failing',
      labelNames: ['purpose'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const purpose of ['token', 'audit'] as const) {
          // The newest active key signs (key-store.ts); rows are listed newest first.
          const signing = (await store.keys.list(purpose)).find((key) => key.active);
          if (signing) this.set({ purpose }, Math.max(0, (now() - signing.createdAt) / 1000));
        }
      },
    });
  }

  approvalLatency(seconds: number): void {
    this.approval.observe(seconds);
  }
  activationLatency(seconds: number): void {
    this.activation.observe(seconds);
  }
  revocationLag(seconds: number): void {
    this.lag.observe(seconds);
  }
  revocationFailed(resourceId: string): void {
    this.revocationFailures.inc({ resource: resourceId });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
