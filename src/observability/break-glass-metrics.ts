/** Break-glass gauges, read from the database at scrape time, on the server's metrics registry. */
import { Gauge, type Registry } from 'prom-client';
import type { BreakGlassService } from '../app/break-glass-service.js';

export function registerBreakGlassMetrics(registry: Registry, service: BreakGlassService): void {
  const overview = () => service.overview();
  new Gauge({
    name: 'portcullis_break_glass_drill_overdue',
    help: 'Emergency accounts whose last drill is older than their drill interval (1 = overdue)',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const a of await overview()) this.set({ account: a.accountId }, a.drillOverdue ? 1 : 0);
    },
  });
  new Gauge({
    name: 'portcullis_break_glass_last_drill_timestamp_seconds',
    help: 'When each emergency account last passed a drill (0 = never)',
    labelNames: ['account'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const a of await overview()) this.set({ account: a.accountId }, (a.lastPassedDrillAt ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'portcullis_break_glass_activations_owing',
    help: 'Used activations still owing a review or a credential rotation',
    labelNames: ['account', 'owed'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const a of await overview()) {
        this.set({ account: a.accountId, owed: 'review' }, a.awaitingReview);
        this.set({ account: a.accountId, owed: 'rotation' }, a.rotationOwed);
      }
    },
  });
}
