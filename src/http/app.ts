/**
 * Builds the HTTP application without listening, so tests drive it with `inject()` and the
 * composition root decides where it listens.
 */
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { PortcullisError } from '../core/errors.js';
import { consoleRoutes } from './console/console-routes.js';
import { type HttpDependencies, originOf } from './context.js';
import { installProblemHandlers } from './problem.js';
import { auditRoutes } from './routes/audit-routes.js';
import { authApiRoutes, loginRoutes } from './routes/auth-routes.js';
import { breakGlassRoutes, isCustodianRoute } from './routes/break-glass-routes.js';
import { gatewayRoutes } from './routes/gateway-routes.js';
import { grantRoutes } from './routes/grant-routes.js';
import { opsRoutes } from './routes/ops-routes.js';
import { principalRoutes } from './routes/principal-routes.js';
import { reconcileRoutes } from './routes/reconcile-routes.js';
import { requestRoutes } from './routes/request-routes.js';
import { scimPrefix, scimRoutes } from './routes/scim-routes.js';
import { sshRoutes } from './routes/ssh-routes.js';
import { tokenRoutes } from './routes/token-routes.js';

export const apiPrefix = '/api/v1';

/** Routes under /api/v1 that answer without a bearer token. */
const publicApiRoutes = new Set([
  `${apiPrefix}/auth/providers`,
  `${apiPrefix}/auth/cli/token`,
  `${apiPrefix}/auth/device`,
  `${apiPrefix}/auth/device/token`,
  `${apiPrefix}/introspect`,
]);

export async function buildHttpApp(deps: HttpDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    trustProxy: deps.trustProxy,

    genReqId: () => crypto.randomUUID(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);

  // RFC 7662 clients send form bodies.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Portcullis API',
        version: '1.0.0',
        description:
          'Just-in-time access: requests, approvals, grants, tokens and audit. Errors are application/problem+json with a stable `code`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '';
    if (!path.startsWith(`${apiPrefix}/`) || publicApiRoutes.has(path) || isCustodianRoute(path)) return;
    request.principal = await deps.sessions.authenticate(request.headers.authorization, originOf(request));
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
    // Answers carry session tokens, principals, requests and audit events: no cache keeps them
    // unless a route says otherwise (the JWKS is public and cacheable).
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });

  await app.register(opsRoutes(deps));
  await app.register(tokenRoutes(deps));
  await app.register(sshRoutes(deps));
  await app.register(loginRoutes(deps));
  await app.register(consoleRoutes(deps));
  await app.register(
    async (api) => {
      await api.register(authApiRoutes(deps));
      await api.register(requestRoutes(deps));
      await api.register(grantRoutes(deps));
      await api.register(gatewayRoutes(deps));
      await api.register(principalRoutes(deps));
      await api.register(reconcileRoutes(deps));
      await api.register(auditRoutes(deps));
      await api.register(breakGlassRoutes(deps));
    },
    { prefix: apiPrefix },
  );
  if (deps.scim) await app.register(scimRoutes(deps.scim.service, deps.scim.baseUrl), { prefix: scimPrefix });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}

export { PortcullisError };
