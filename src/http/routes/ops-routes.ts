import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpDependencies } from '../context.js';

export function opsRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          summary: 'The process is up',
          tags: ['ops'],
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );
    app.get(
      '/readyz',
      {
        schema: {
          summary: 'Ready to serve: database, policies, keys',
          tags: ['ops'],
          response: {
            200: z.object({ ready: z.boolean(), checks: z.record(z.string(), z.string()) }),
            503: z.object({ ready: z.boolean(), checks: z.record(z.string(), z.string()) }),
          },
        },
      },
      async (_request, reply) => {
        const result = await deps.readiness();
        return reply.code(result.ready ? 200 : 503).send(result);
      },
    );
    app.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics', tags: ['ops'] } },
      async (_request, reply) => {
        const { contentType, body } = await deps.metrics();
        return reply.type(contentType).send(body);
      },
    );
  };
}
