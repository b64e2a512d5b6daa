import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpDependencies } from '../context.js';
import { problemView } from '../views.js';

const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

/**
 * Public key material and token introspection. Introspection needs no client authentication:
 * Portcullis tokens are signed JWTs, so guessing ("token scanning", RFC 7662 §4) is infeasible, and
 * the answer reveals no more than the token's own claims. See docs/security.md.
 */
export function tokenRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/.well-known/jwks.json',
      {
        schema: {
          summary: 'Keys that sign Portcullis tokens (current and still published)',
          tags: ['tokens'],
          response: { 200: jwks },
        },
      },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=60');
        return deps.tokenJwks();
      },
    );

    app.get(
      '/.well-known/portcullis-audit-keys.json',
      {
        schema: {
          summary: 'Keys that sign audit checkpoints, for offline verification',
          tags: ['audit'],
          response: { 200: jwks },
        },
      },
      async () => deps.auditJwks(),
    );

    app.post(
      '/api/v1/introspect',
      {
        schema: {
          summary: 'RFC 7662 token introspection: active only while the grant is live',
          tags: ['tokens'],
          body: z.object({
            token: z.string().min(1).max(8192),
            token_type_hint: z.string().max(64).optional(),
          }),
          response: { 200: z.object({ active: z.boolean() }).catchall(z.unknown()), 400: problemView },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return (await deps.introspect(request.body.token)) as { active: boolean };
      },
    );
  };
}
