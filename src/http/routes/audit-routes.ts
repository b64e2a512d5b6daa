import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { problemView } from '../views.js';

export function auditRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    const requireViewer = (principal: Principal) => {
      const decision = deps.mayViewAudit(principal);
      if (!decision.allowed)
        throw new PortcullisError('forbidden', 'The policy does not allow you to view the audit log', {
          policyIds: decision.policyIds,
        });
    };

    app.get(
      '/audit/export',
      {
        schema: {
          summary: 'The whole audit log as JSON Lines with its signed checkpoints',
          tags: ['audit'],
          response: { 401: problemView, 403: problemView },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        requireViewer(principal);
        await deps.recordAuditView(principal, originOf(request), 'export');
        const stream = new PassThrough();
        deps.exportAudit(stream).then(
          () => stream.end(),
          (error: unknown) => stream.destroy(error as Error),
        );
        // The 200 body is a JSON Lines stream, not a schema'd object.
        return reply.type('application/x-ndjson').send(stream as never);
      },
    );

    app.get(
      '/audit/events',
      {
        schema: {
          summary: 'Audit events after a sequence number',
          tags: ['audit'],
          querystring: z.object({
            after: z.coerce.number().int().min(0).default(0),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          }),
          response: {
            200: z.object({ events: z.array(z.record(z.string(), z.unknown())) }),
            401: problemView,
            403: problemView,
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        requireViewer(principal);
        await deps.recordAuditView(principal, originOf(request), 'events');
        return {
          events: (await deps.readAudit(request.query.after, request.query.limit)).map((event) => ({
            ...event,
          })),
        };
      },
    );
  };
}
