/** Console pages of requests: ask, list, look at one, approve, deny, withdraw. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AccessRequest } from '../../core/access-request.js';
import { PortcullisError } from '../../core/errors.js';
import { encodeListCursor, idParam, listCursor, requestedSeconds, safeText } from '../input.js';
import { toRequestView } from '../views.js';
import { type ConsoleCaller, type ConsoleContext, doneNotice, errorNotice } from './console-routes.js';
import { html } from './html.js';
import type { Notice } from './layout.js';
import { newRequestForm, type RequestFormValues, requestDetail, requestTable } from './request-pages.js';

/** A form field's value, or a validation_failed naming the field. */
export function parseForm<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new PortcullisError(
    'validation_failed',
    `${issue?.path.join('.') || 'form'}: ${issue?.message ?? 'invalid'}`,
  );
}

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

const reasonField = z.object({ csrf: z.string(), reason: safeText(1000).default('') });

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

  const showRequest = async (
    reply: FastifyReply,
    caller: ConsoleCaller,
    request: AccessRequest,
    notice: Notice | null,
    status = 200,
  ) =>
    context.render(
      reply,
      caller,
      {
        title: `Request for ${request.resourceId} / ${request.role}`,
        section: 'requests',
        notice,
        body: requestDetail(await view(request), caller.viewer, {
          review: deps.access.mayReviewNow(caller.principal, request),
          cancel:
            deps.access.isRequester(caller.principal, request) &&
            (request.state === 'pending' || request.state === 'approved'),
        }),
      },
      status,
    );

  const showForm = (
    reply: FastifyReply,
    caller: ConsoleCaller,
    values: RequestFormValues,
    notice: Notice | null,
    status = 200,
  ) =>
    context.render(
      reply,
      caller,
      {
        title: 'Request access',
        section: 'new',
        notice,
        body: newRequestForm(deps.access.resources(), caller.viewer, values),
      },
      status,
    );

  /** Runs a form's action; a refusal the person can act on shows the page again with why. */
  async function act(
    request: FastifyRequest,
    reply: FastifyReply,
    run: (caller: ConsoleCaller) => Promise<string>,
    onRefusal: (caller: ConsoleCaller, notice: Notice, status: number) => Promise<FastifyReply>,
  ): Promise<FastifyReply> {
    context.checkForm(request);
    const caller = context.caller(request);
    try {
      return reply.redirect(await run(caller), 303);
    } catch (error) {
      if (!(error instanceof PortcullisError) || !error.expose || error.status === 401) throw error;
      if (error.code === 'audit_unavailable' || error.code === 'csrf_rejected') throw error;
      return onRefusal(caller, errorNotice(error), error.status);
    }
  }

  return async (app: FastifyInstance) => {
    app.get('/requests/new', { schema: { hide: true } }, async (request, reply) =>
      showForm(reply, context.caller(request), {}, null),
    );

    app.post('/requests', { schema: { hide: true } }, async (request, reply) => {
      const submitted = (request.body ?? {}) as Record<string, unknown>;
      const text = (key: string) => (typeof submitted[key] === 'string' ? (submitted[key] as string) : '');
      const values = {
        target: text('target'),
        duration: text('duration'),
        reason: text('reason'),
        ticket: text('ticket'),
      };
      return act(
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
        async (caller, notice, status) => showForm(reply, caller, values, notice, status),
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
      return showRequest(reply, caller, found, doneNotice(query.done));
    });

    for (const verdict of ['approve', 'deny'] as const) {
      app.post(`/requests/:id/${verdict}`, { schema: { hide: true } }, async (request, reply) => {
        const { id } = parseForm(idParam, request.params);
        return act(
          request,
          reply,
          async (caller) => {
            const { reason } = parseForm(reasonField, request.body);
            await deps.access.review(caller.principal, id, verdict, reason, caller.from);
            return `/console/requests/${encodeURIComponent(id)}?done=${verdict === 'approve' ? 'approved' : 'denied'}`;
          },
          async (caller, notice, status) =>
            showRequest(reply, caller, await deps.access.getRequest(caller.principal, id), notice, status),
        );
      });
    }

    app.post('/requests/:id/cancel', { schema: { hide: true } }, async (request, reply) => {
      const { id } = parseForm(idParam, request.params);
      return act(
        request,
        reply,
        async (caller) => {
          await deps.access.cancel(caller.principal, id, caller.from);
          return `/console/requests/${encodeURIComponent(id)}?done=cancelled`;
        },
        async (caller, notice, status) =>
          showRequest(reply, caller, await deps.access.getRequest(caller.principal, id), notice, status),
      );
    });
  };
}
