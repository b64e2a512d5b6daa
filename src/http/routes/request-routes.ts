import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requestStates } from '../../core/access-request.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import {
  commaSeparatedEnum,
  durationInput,
  encodeListCursor,
  idParam,
  listCursor,
  requestedSeconds,
  safeText,
} from '../input.js';
import { accessProblemResponses, requestView, toRequestView } from '../views.js';

export function requestRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    const view = async (request: Parameters<typeof toRequestView>[0]) =>
      toRequestView(request, (await deps.access.grantIdOf(request.id)) ?? null);

    app.post(
      '/requests',
      {
        schema: {
          summary: 'Ask for a role on a resource for a while',
          tags: ['requests'],
          body: z
            .object({
              resource: z.string().min(1).max(64),
              role: z.string().min(1).max(64),
              duration: durationInput,
              reason: safeText(1000).default(''),
              ticket: safeText(200).nullable().optional(),
            })
            .strict(),
          response: { 201: requestView, ...accessProblemResponses },
        },
      },
      async (request, reply) => {
        const created = await deps.access.createRequest(
          principalOf(request),
          {
            resourceId: request.body.resource,
            role: request.body.role,
            durationSeconds: requestedSeconds(request.body.duration),
            reason: request.body.reason,
            ticket: request.body.ticket ?? null,
          },
          originOf(request),
        );
        return reply.code(201).send(await view(created));
      },
    );

    app.get(
      '/requests',
      {
        schema: {
          summary: 'List requests: your own, those you may review, or all you may see',
          tags: ['requests'],
          querystring: z.object({
            scope: z.enum(['mine', 'reviewable', 'all']).default('mine'),
            state: commaSeparatedEnum(requestStates),
            limit: z.coerce.number().int().min(1).max(500).default(100),
            /** `next_cursor` of the previous page. */
            cursor: listCursor.optional(),
          }),
          response: {
            200: z.object({
              requests: z.array(requestView),
              /** Pass as `cursor` for the next page; null when there is no more. */
              next_cursor: z.string().nullable(),
            }),
            ...accessProblemResponses,
          },
        },
      },
      async (request) => {
        const page = await deps.access.listRequests(principalOf(request), {
          scope: request.query.scope,
          states: request.query.state,
          limit: request.query.limit,
          ...(request.query.cursor ? { before: request.query.cursor } : {}),
        });
        return {
          requests: await Promise.all(page.requests.map(view)),
          next_cursor: page.next ? encodeListCursor(page.next) : null,
        };
      },
    );

    app.get(
      '/requests/:id',
      {
        schema: {
          summary: 'One request',
          tags: ['requests'],
          params: idParam,
          response: { 200: requestView, ...accessProblemResponses },
        },
      },
      async (request) => view(await deps.access.getRequest(principalOf(request), request.params.id)),
    );

    for (const verdict of ['approve', 'deny'] as const) {
      app.post(
        `/requests/:id/${verdict}`,
        {
          schema: {
            summary: verdict === 'approve' ? 'Approve a pending request' : 'Deny a pending request',
            tags: ['requests'],
            params: idParam,
            body: z
              .object({ reason: safeText(1000).default('') })
              .strict()
              .default({ reason: '' }),
            response: { 200: requestView, ...accessProblemResponses },
          },
        },
        async (request) =>
          view(
            await deps.access.review(
              principalOf(request),
              request.params.id,
              verdict,
              request.body.reason,
              originOf(request),
            ),
          ),
      );
    }

    app.post(
      '/requests/:id/cancel',
      {
        schema: {
          summary: 'Withdraw your request',
          tags: ['requests'],
          params: idParam,
          response: { 200: requestView, ...accessProblemResponses },
        },
      },
      async (request) =>
        view(await deps.access.cancel(principalOf(request), request.params.id, originOf(request))),
    );
  };
}
