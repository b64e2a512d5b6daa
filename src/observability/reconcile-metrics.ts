/** Reconciliation's counters and the time of its last completed run, on the server's registry. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReconcileMetrics } from '../app/reconciler.js';
import type { DriftKind } from '../core/drift.js';

export class PrometheusReconcileMetrics implements ReconcileMetrics {
  readonly #drift: Counter<'resource' | 'kind'>;
  readonly #inspectFailures: Counter<'resource'>;
  readonly #lastRun: Gauge;
  readonly #standing: Gauge<'resource'>;

  constructor(registry: Registry) {
    this.#drift = new Counter({
      name: 'portcullis_reconcile_drift_total',
      help: 'Differences found between a target and the grants (unknown_grant, present_after_revocation, missing_at_target); should stay 0',
      labelNames: ['resource', 'kind'],
      registers: [registry],
    });
    this.#inspectFailures = new Counter({
      name: 'portcullis_reconcile_inspect_failures_total',
      help: 'Reconciliation runs that could not read what a target holds',
      labelNames: ['resource'],
      registers: [registry],
    });
    this.#lastRun = new Gauge({
      name: 'portcullis_reconcile_last_run_timestamp_seconds',
      help: 'When this process last completed a reconciliation run (0 = never); runs move between replicas',
      registers: [registry],
    });
    this.#lastRun.set(0);
    this.#standing = new Gauge({
      name: 'portcullis_standing_access',
      help: 'Logins holding access at a target without a grant (mapped roles, superusers), as the last reconciliation found; should be 0',
      labelNames: ['resource'],
      registers: [registry],
    });
  }

  standingAccess(resourceId: string, count: number): void {
    this.#standing.set({ resource: resourceId }, count);
  }

  driftFound(resourceId: string, kind: DriftKind): void {
    this.#drift.inc({ resource: resourceId, kind });
  }

  inspectFailed(resourceId: string): void {
    this.#inspectFailures.inc({ resource: resourceId });
  }

  runCompleted(at: number): void {
    this.#lastRun.set(at / 1000);
  }
}
