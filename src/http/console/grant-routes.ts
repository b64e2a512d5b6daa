/** Console pages of grants: list, look at one, end it now. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import type { Grant } from '../../core/grant.js';
import { idParam, safeText } from '../input.js';
import { toGrantView } from '../views.js';
import { type ConsoleCaller, type ConsoleContext, doneNotice, errorNotice } from './console-routes.js';
import { type GrantEnding, grantDetail, grantTable } from './grant-pages.js';
import { html } from './html.js';
import type { Notice } from './layout.js';
import { parseForm } from './request-routes.js';

const listQuery = z.object({ scope: z.enum(['mine', 'all']).default('mine') });
const reasonField = z.object({ csrf: z.string(), reason: safeText(1000).default('') });

export function consoleGrantPages(context: ConsoleContext) {
  const { deps } = context;

  const showGrant = (
    reply: FastifyReply,
    caller: ConsoleCaller,
    grant: Grant,
    notice: Notice | null,
    status = 200,
  ) => {
    const own = grant.principalId === caller.principal.id;
    // The holder may always end their own access; for anyone else the service decides (owners,
    // administrators, the policy), and the form is offered to those who may see the grant.
    const ending: GrantEnding = grant.status === 'active' ? (own ? 'release' : 'revoke') : null;
    return context.render(
      reply,
      caller,
      {
        title: `Grant of ${grant.resourceId} / ${grant.role}`,
        section: 'grants',
        notice,
        body: grantDetail(
          toGrantView(grant, { admin: deps.access.isAdmin(caller.principal) }),
          caller.viewer,
          ending,
        ),
      },
      status,
    );
  };

  return async (app: FastifyInstance) => {
    app.get('/grants', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const { scope } = parseForm(listQuery, request.query);
      const admin = { admin: deps.access.isAdmin(caller.principal) };
      const grants = (await deps.access.listGrants(caller.principal, scope)).map((g) =>
        toGrantView(g, admin),
      );
      return context.render(reply, caller, {
        title: scope === 'mine' ? 'Your grants' : 'Grants you may see',
        section: 'grants',
        body: html`<p>${
          scope === 'mine'
            ? html`Yours. <a href="/console/grants?scope=all">Show all you may see</a> (resource owners, administrators)`
            : html`All you may see. <a href="/console/grants">Show only yours</a>`
        }</p>
${grantTable(grants, 'No grants.')}`,
      });
    });

    app.get('/grants/:id', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const { id } = parseForm(idParam, request.params);
      const grant = await deps.access.getGrant(caller.principal, id);
      return showGrant(reply, caller, grant, doneNotice((request.query as Record<string, unknown>).done));
    });

    app.post('/grants/:id/revoke', { schema: { hide: true } }, async (request, reply) => {
      context.checkForm(request);
      const caller = context.caller(request);
      const { id } = parseForm(idParam, request.params);
      try {
        const { reason } = parseForm(reasonField, request.body);
        await deps.access.revoke(caller.principal, id, reason, caller.from);
        return reply.redirect(`/console/grants/${encodeURIComponent(id)}?done=ended`, 303);
      } catch (error) {
        if (!(error instanceof PortcullisError) || !error.expose || error.status === 401) throw error;
        if (error.code === 'audit_unavailable' || error.code === 'not_found') throw error;
        const grant = await deps.access.getGrant(caller.principal, id);
        return showGrant(reply, caller, grant, errorNotice(error), error.status);
      }
    });
  };
}
