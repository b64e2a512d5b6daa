/** Console pages of requests: ask, list, look at one, approve, deny, withdraw. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AccessRequest } from '../../core/access-request.js';
import { encodeListCursor, idParam, listCursor, requestedSeconds, safeText } from '../input.js';
import { toRequestView } from '../views.js';
import {
  type ConsoleCaller,
  type ConsoleContext,
  type ConsolePageContent,
  doneNotice,
} from './console-routes.js';
import { parseForm, reasonForm } from './forms.js';
import { html } from './html.js';
import type { Notice } from './layout.js';
import { newRequestForm, type RequestFormValues, requestDetail, requestTable } from './request-pages.js';

const newRequestFields = z.object({
  csrf: z.string(),
  target: z
    .string()
    .max(130)
    .regex(/^[^/]+\/[^/]+$/, 'choose a resource and role'),
  duration: z.string().min(1, 'give a duration such as 30m or 2h').max(32),
  reason: safeText(1000).default(''),
  ticket: safeText(200).default(''),
});

const listQuery = z.object({
  scope: z.enum(['mine', 'all']).default('mine'),
  cursor: listCursor.optional(),
  done: z.string().max(32).optional(),
});

const pageSize = 50;

export function consoleRequestPages(context: ConsoleContext) {
  const { deps } = context;
  const view = async (request: AccessRequest) =>
    toRequestView(request, (await deps.access.grantIdOf(request.id)) ?? null);

  const requestPage = async (
    caller: ConsoleCaller,
    request: AccessRequest,
    notice: Notice | null = null,
  ): Promise<ConsolePageContent> => ({
    title: `Request for ${request.resourceId} / ${request.role}`,
    section: 'requests',
    notice,
    body: requestDetail(await view(request), caller.viewer, {
      review: deps.access.mayReviewNow(caller.principal, request, caller.from.channel),
      cancel:
        deps.access.isSamePerson(caller.principal, request.requesterId) &&
        (request.state === 'pending' || request.state === 'approved'),
    }),
  });

  const formPage = (caller: ConsoleCaller, values: RequestFormValues = {}): ConsolePageContent => ({
    title: 'Request access',
    section: 'new',
    body: newRequestForm(deps.access.resources(), caller.viewer, values),
  });

  /** The request's page again, as it stands after a refused action on it. */
  const requestPageOf = (id: string) => async (caller: ConsoleCaller) =>
    requestPage(caller, await deps.access.getRequest(caller.principal, id));

  return async (app: FastifyInstance) => {
    app.get('/requests/new', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      return context.render(reply, caller, formPage(caller));
    });

    app.post('/requests', { schema: { hide: true } }, async (request, reply) => {
      const submitted = (request.body ?? {}) as Record<string, unknown>;
      const text = (key: string) => (typeof submitted[key] === 'string' ? (submitted[key] as string) : '');
      const values = {
        target: text('target'),
        duration: text('duration'),
        reason: text('reason'),
        ticket: text('ticket'),
      };
      return context.act(
        request,
        reply,
        async (caller) => {
          const form = parseForm(newRequestFields, submitted);
          const [resourceId = '', role = ''] = form.target.split('/');
          const created = await deps.access.createRequest(
            caller.principal,
            {
              resourceId,
              role,
              durationSeconds: requestedSeconds(form.duration),
              reason: form.reason,
              ticket: form.ticket === '' ? null : form.ticket,
            },
            caller.from,
          );
          return `/console/requests/${encodeURIComponent(created.id)}?done=created`;
        },
        async (caller) => formPage(caller, values),
      );
    });

    app.get('/requests', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const query = parseForm(listQuery, request.query);
      const page = await deps.access.listRequests(caller.principal, {
        scope: query.scope,
        limit: pageSize,
        ...(query.cursor ? { before: query.cursor } : {}),
      });
      const views = await Promise.all(page.requests.map(view));
      const next =
        page.next && `/console/requests?scope=${query.scope}&cursor=${encodeListCursor(page.next)}`;
      return context.render(reply, caller, {
        title: query.scope === 'mine' ? 'Your requests' : 'All requests you may see',
        section: 'requests',
        body: html`<p>${
          query.scope === 'mine'
            ? html`Yours. <a href="/console/requests?scope=all">Show all you may see</a>`
            : html`All you may see. <a href="/console/requests">Show only yours</a>`
        }</p>
${requestTable(views, 'No requests.')}
${next && html`<div class="pager"><a href="${next}">Older →</a></div>`}`,
      });
    });

    app.get('/approvals', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const query = parseForm(listQuery, request.query);
      const page = await deps.access.listRequests(caller.principal, {
        scope: 'reviewable',
        limit: pageSize,
        ...(query.cursor ? { before: query.cursor } : {}),
      });
      const next = page.next && `/console/approvals?cursor=${encodeListCursor(page.next)}`;
      return context.render(reply, caller, {
        title: 'Waiting for your review',
        section: 'approvals',
        body: html`${requestTable(await Promise.all(page.requests.map(view)), 'Nothing is waiting for you.')}
${next && html`<div class="pager"><a href="${next}">Older →</a></div>`}`,
      });
    });

    app.get('/requests/:id', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const { id } = parseForm(idParam, request.params);
      const found = await deps.access.getRequest(caller.principal, id);
      const query = request.query as Record<string, unknown>;
      return context.render(reply, caller, await requestPage(caller, found, doneNotice(query.done)));
    });

    for (const verdict of ['approve', 'deny'] as const) {
      app.post(`/requests/:id/${verdict}`, { schema: { hide: true } }, async (request, reply) => {
        const { id } = parseForm(idParam, request.params);
        return context.act(
          request,
          reply,
          async (caller) => {
            const { reason } = parseForm(reasonForm, request.body);
            await deps.access.review(caller.principal, id, verdict, reason, caller.from);
            return `/console/requests/${encodeURIComponent(id)}?done=${verdict === 'approve' ? 'approved' : 'denied'}`;
          },
          requestPageOf(id),
        );
      });
    }

    app.post('/requests/:id/cancel', { schema: { hide: true } }, async (request, reply) => {
      const { id } = parseForm(idParam, request.params);
      return context.act(
        request,
        reply,
        async (caller) => {
          await deps.access.cancel(caller.principal, id, caller.from);
          return `/console/requests/${encodeURIComponent(id)}?done=cancelled`;
        },
        requestPageOf(id),
      );
    });
  };
}
