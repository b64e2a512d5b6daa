/** The console's overview (what waits for you, your requests, your access) and the audit viewer. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import { toGrantView, toRequestView } from '../views.js';
import { auditTable } from './audit-pages.js';
import type { ConsoleContext } from './console-routes.js';
import { parseForm } from './forms.js';
import { grantTable } from './grant-pages.js';
import { html } from './html.js';
import { requestTable } from './request-pages.js';

const auditQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export function consoleOverviewPages(context: ConsoleContext) {
  const { deps } = context;
  const view = async (request: Parameters<typeof toRequestView>[0]) =>
    toRequestView(request, (await deps.access.grantIdOf(request.id)) ?? null);

  return async (app: FastifyInstance) => {
    app.get('/', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const [waiting, mine, live] = await Promise.all([
        deps.access.listRequests(caller.principal, { scope: 'reviewable', limit: 20 }),
        deps.access.listRequests(caller.principal, { scope: 'mine', limit: 10 }),
        deps.access.listGrants(caller.principal, 'mine', ['active']),
      ]);
      const admin = { admin: deps.access.isAdmin(caller.principal) };
      return context.render(reply, caller, {
        title: `Hello, ${caller.viewer.displayName}`,
        section: 'home',
        body: html`<h2>Waiting for your review</h2>
${requestTable(await Promise.all(waiting.requests.map(view)), 'Nothing is waiting for you.')}
${waiting.next && html`<p><a href="/console/approvals">All waiting for you →</a></p>`}
<h2>Your access now</h2>
${grantTable(
  live.map((g) => toGrantView(g, admin)),
  'You hold no access now. That is how it should be most of the time.',
)}
<p><a href="/console/requests/new">Request access →</a></p>
<h2>Your latest requests</h2>
${requestTable(await Promise.all(mine.requests.map(view)), 'You have not asked for anything yet.')}
${mine.next && html`<p><a href="/console/requests">All your requests →</a></p>`}`,
      });
    });

    app.get('/audit', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      if (!caller.viewer.mayViewAudit)
        throw new PortcullisError('forbidden', 'The policy does not let you view the audit log');
      const query = parseForm(auditQuery, request.query);
      const head = await deps.auditHead();
      const after = Math.min(query.after ?? Math.max(0, head - query.limit), head);
      // Reading the log is itself audited, as through the API.
      await deps.recordAuditView(caller.principal, caller.from, 'events');
      const events = await deps.readAudit(after, query.limit);
      return context.render(reply, caller, {
        title: 'Audit log',
        section: 'audit',
        body: auditTable(events, { after, limit: query.limit, head }),
      });
    });
  };
}
