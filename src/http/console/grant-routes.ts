/** Console pages of grants: list, look at one, end it now. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Grant } from '../../core/grant.js';
import { idParam } from '../input.js';
import { toGrantView } from '../views.js';
import {
  type ConsoleCaller,
  type ConsoleContext,
  type ConsolePageContent,
  doneNotice,
} from './console-routes.js';
import { parseForm, reasonForm } from './forms.js';
import { type GrantEnding, grantDetail, grantTable } from './grant-pages.js';
import { html } from './html.js';
import type { Notice } from './layout.js';

const listQuery = z.object({ scope: z.enum(['mine', 'all']).default('mine') });

export function consoleGrantPages(context: ConsoleContext) {
  const { deps } = context;

  const grantPage = (
    caller: ConsoleCaller,
    grant: Grant,
    notice: Notice | null = null,
  ): ConsolePageContent => {
    const own = deps.access.isSamePerson(caller.principal, grant.principalId);
    // The holder may always end their own access; for anyone else the service decides (owners,
    // administrators, the policy), and the form is offered to those who may see the grant.
    const ending: GrantEnding = grant.status === 'active' ? (own ? 'release' : 'revoke') : null;
    const view = toGrantView(grant, { admin: deps.access.isAdmin(caller.principal) });
    return {
      title: `Grant of ${grant.resourceId} / ${grant.role}`,
      section: 'grants',
      notice,
      body: grantDetail(view, caller.viewer, ending),
    };
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
      return context.render(
        reply,
        caller,
        grantPage(caller, grant, doneNotice((request.query as Record<string, unknown>).done)),
      );
    });

    app.post('/grants/:id/revoke', { schema: { hide: true } }, async (request, reply) => {
      const { id } = parseForm(idParam, request.params);
      return context.act(
        request,
        reply,
        async (caller) => {
          const { reason } = parseForm(reasonForm, request.body);
          await deps.access.revoke(caller.principal, id, reason, caller.from);
          return `/console/grants/${encodeURIComponent(id)}?done=ended`;
        },
        async (caller) => grantPage(caller, await deps.access.getGrant(caller.principal, id)),
      );
    });
  };
}
