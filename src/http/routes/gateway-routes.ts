/** Open database-gateway sessions: list them, end one (its grant stays). See src/app/gateway-sessions.ts. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LiveSession } from '../../app/live-session-store.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { idParam, safeText } from '../input.js';
import { accessProblemResponses } from '../views.js';

const gatewaySessionView = z.object({
  id: z.string(),
  grant_id: z.string(),
  request_id: z.string(),
  principal: z.string(),
  resource: z.string(),
  client_address: z.string().nullable(),
  application_name: z.string().nullable(),
  tls: z.boolean(),
  started_at: z.string(),
  replica: z.string(),
});

/** One open session as the API shows it. */
export type GatewaySessionView = z.infer<typeof gatewaySessionView>;

function toView(session: LiveSession): GatewaySessionView {
  return {
    id: session.id,
    grant_id: session.grantId,
    request_id: session.requestId,
    principal: session.principalId,
    resource: session.resourceId,
    client_address: session.clientAddress,
    application_name: session.applicationName,
    tls: session.tls,
    started_at: new Date(session.startedAt).toISOString(),
    replica: session.replica,
  };
}

export function gatewayRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/gateway/sessions',
      {
        schema: {
          summary: 'Open database-gateway sessions: yours, or all you may see (owners, admins)',
          tags: ['gateway'],
          querystring: z.object({ scope: z.enum(['mine', 'all']).default('mine') }),
          response: { 200: z.object({ sessions: z.array(gatewaySessionView) }), ...accessProblemResponses },
        },
      },
      async (request) => {
        const sessions = await deps.gatewaySessions.list(principalOf(request), request.query.scope);
        return { sessions: sessions.map(toView) };
      },
    );

    app.post(
      '/gateway/sessions/:id/end',
      {
        schema: {
          summary:
            'End one open gateway session now (FATAL 57P01 to its client); its grant stays active. Audited first',
          tags: ['gateway'],
          params: idParam,
          body: z
            .object({ reason: safeText(500).default('') })
            .strict()
            .default({ reason: '' }),
          response: {
            202: z.object({ session: gatewaySessionView, status: z.literal('ending') }),
            ...accessProblemResponses,
          },
        },
      },
      async (request, reply) => {
        const session = await deps.gatewaySessions.end(
          principalOf(request),
          request.params.id,
          request.body.reason,
          originOf(request),
        );
        reply.code(202);
        return { session: toView(session), status: 'ending' as const };
      },
    );
  };
}
