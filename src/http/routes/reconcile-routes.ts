/** Reconciliation on demand, for administrators. See src/app/reconciler.ts and docs/provisioners.md. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ReconcileReport } from '../../app/reconciler.js';
import { driftKinds } from '../../core/drift.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { accessProblemResponses } from '../views.js';

const findingView = z.object({
  kind: z.enum(driftKinds),
  grant_id: z.string(),
  /** What the target holds (a login name, its OID…): never a secret. */
  artefacts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  outcome: z.enum(['taken_back', 'take_back_failed', 'reported', 'reported_before']),
  error: z.string().optional(),
  reference: z.string().optional(),
});

const reportView = z.object({
  id: z.string(),
  trigger: z.enum(['schedule', 'request']),
  started_at: z.string(),
  finished_at: z.string(),
  /** True when every inspectable target matched the grants and none holds standing access. */
  clean: z.boolean(),
  resources: z.array(
    z.object({
      resource_id: z.string(),
      outcome: z.enum(['checked', 'not_applicable', 'inspect_failed']),
      held: z.number().int(),
      findings: z.array(findingView),
      /** Logins holding access at the target without a grant (mapped roles, superusers): reported, never taken back. */
      standing: z.array(
        z.object({
          holder: z.string(),
          /** The mapped role that gives it, or `superuser`. */
          via: z.string(),
          outcome: z.enum(['reported', 'reported_before']),
        }),
      ),
      error: z.string().optional(),
      reference: z.string().optional(),
    }),
  ),
});

export type ReconcileReportView = z.infer<typeof reportView>;

function toView(report: ReconcileReport): ReconcileReportView {
  return {
    id: report.id,
    trigger: report.trigger,
    started_at: new Date(report.startedAt).toISOString(),
    finished_at: new Date(report.finishedAt).toISOString(),
    clean: report.resources.every(
      (r) => r.outcome !== 'inspect_failed' && r.findings.length === 0 && r.standing.length === 0,
    ),
    resources: report.resources.map((r) => ({
      resource_id: r.resourceId,
      outcome: r.outcome,
      held: r.held,
      findings: r.findings.map((f) => ({
        kind: f.kind,
        grant_id: f.grantId,
        artefacts: { ...f.artefacts },
        outcome: f.outcome,
        ...(f.error === undefined ? {} : { error: f.error, reference: f.reference }),
      })),
      standing: r.standing.map((s) => ({ holder: s.holder, via: s.via, outcome: s.outcome })),
      ...(r.error === undefined ? {} : { error: r.error, reference: r.reference }),
    })),
  };
}

export function reconcileRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/reconcile',
      {
        schema: {
          summary:
            'Compare every target with the grants now and take back access no grant accounts for (admins). Audited',
          tags: ['ops'],
          response: { 200: reportView, ...accessProblemResponses },
        },
      },
      async (request) => toView(await deps.reconciler.runFor(principalOf(request), originOf(request))),
    );
  };
}
