import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import { grantStatuses } from '../../core/grant.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { commaSeparatedEnum, idParam, safeText } from '../input.js';
import { accessProblemResponses, grantView, toGrantView } from '../views.js';

export function grantRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/grants',
      {
        schema: {
          summary: 'List grants: yours, or all you may see (owners, admins)',
          tags: ['grants'],
          querystring: z.object({
            scope: z.enum(['mine', 'all']).default('mine'),
            status: commaSeparatedEnum(grantStatuses),
          }),
          response: { 200: z.object({ grants: z.array(grantView) }), ...accessProblemResponses },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const list = await deps.access.listGrants(principal, request.query.scope, request.query.status);
        const viewer = { admin: deps.access.isAdmin(principal) };
        return { grants: list.map((grant) => toGrantView(grant, viewer)) };
      },
    );

    app.get(
      '/grants/:id',
      {
        schema: {
          summary: 'One grant',
          tags: ['grants'],
          params: idParam,
          response: { 200: grantView, ...accessProblemResponses },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        return toGrantView(await deps.access.getGrant(principal, request.params.id), {
          admin: deps.access.isAdmin(principal),
        });
      },
    );

    app.post(
      '/grants/:id/revoke',
      {
        schema: {
          summary: 'End a grant now: revoke (owners, admins, policy) or release your own early',
          tags: ['grants'],
          params: idParam,
          body: z
            .object({ reason: safeText(1000).default('') })
            .strict()
            .default({ reason: '' }),
          response: { 200: grantView, ...accessProblemResponses },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        return toGrantView(
          await deps.access.revoke(principal, request.params.id, request.body.reason, originOf(request)),
          { admin: deps.access.isAdmin(principal) },
        );
      },
    );

    app.get(
      '/grants/:id/credentials',
      {
        schema: {
          summary: "The requester's credentials for a live grant (e.g. a PostgreSQL connection string)",
          tags: ['grants'],
          params: idParam,
          response: {
            200: z.object({ grant_id: z.string(), credentials: z.record(z.string(), z.string()) }),
            ...accessProblemResponses,
          },
        },
      },
      async (request, reply) => {
        const credentials = await deps.access.credentials(
          principalOf(request),
          request.params.id,
          originOf(request),
        );
        reply.header('cache-control', 'no-store');
        return { grant_id: request.params.id, credentials };
      },
    );

    app.post(
      '/grants/:id/ssh-certificate',
      {
        schema: {
          summary:
            "A certificate for the requester's own Ed25519 public key, for a live grant of an ssh resource (valid until the grant's end)",
          tags: ['grants', 'ssh'],
          params: idParam,
          body: z
            .object({
              public_key: z
                .string()
                .min(1)
                .max(8192)
                .describe('One OpenSSH public key line: `ssh-ed25519 AAAA… [comment]`'),
            })
            .strict(),
          response: {
            200: z.object({
              grant_id: z.string(),
              certificate: z.string(),
              fingerprint: z.string(),
              serial: z.string(),
              login: z.string(),
              principals: z.array(z.string()),
              valid_before: z.string(),
              host: z.string().optional(),
              port: z.string().optional(),
            }),
            ...accessProblemResponses,
          },
        },
      },
      async (request, reply) => {
        if (!deps.sshKeys) throw new PortcullisError('not_found', 'No ssh resources');
        const certified = await deps.sshKeys.certify(
          principalOf(request),
          request.params.id,
          request.body.public_key,
          originOf(request),
        );
        reply.header('cache-control', 'no-store');
        return {
          grant_id: certified.grantId,
          certificate: certified.certificate,
          fingerprint: certified.fingerprint,
          serial: certified.serial,
          login: certified.login,
          principals: [...certified.principals],
          valid_before: new Date(certified.validBefore).toISOString(),
          ...(certified.host ? { host: certified.host.name, port: String(certified.host.port) } : {}),
        };
      },
    );

    app.post(
      '/grants/:id/token',
      {
        schema: {
          summary: 'A signed access token for a live grant; it expires no later than the grant',
          tags: ['grants'],
          params: idParam,
          response: {
            200: z.object({
              access_token: z.string(),
              token_type: z.literal('Bearer'),
              expires_at: z.string(),
              jti: z.string(),
            }),
            ...accessProblemResponses,
          },
        },
      },
      async (request, reply) => {
        const issued = await deps.access.issueToken(
          principalOf(request),
          request.params.id,
          originOf(request),
        );
        reply.header('cache-control', 'no-store');
        return {
          access_token: issued.token,
          token_type: 'Bearer' as const,
          expires_at: new Date(issued.expiresAt).toISOString(),
          jti: issued.jti,
        };
      },
    );
  };
}
