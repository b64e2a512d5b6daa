/** A realistic break-glass alert for alert channel and dispatcher tests. */
import { randomUUID } from 'node:crypto';
import type { BreakGlassAlert } from '../src/break-glass/ports.js';

export function sampleAlert(overrides: Partial<BreakGlassAlert> = {}): BreakGlassAlert {
  return {
    id: randomUUID(),
    kind: 'activated',
    accountId: 'prod-db-emergency',
    activationId: 'act_01HZX3',
    drill: false,
    custodians: ['alice', 'bob'],
    reason: 'IdP outage; primary database needs a failover',
    incident: 'INC-4242',
    at: Date.UTC(2026, 10, 23, 13, 20),
    summary: 'Break-glass ACTIVE on prod-db-emergency until 14:05 UTC',
    ...overrides,
  };
}
