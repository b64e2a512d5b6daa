/**
 * The reviewers' side of break-glass in the (signed-in, script-free) console: the state of every
 * emergency account, and each ended activation whose review is owed, with the form that records
 * it. Who may look and review is the service's rule (administrators and `reviewer_groups`), and a
 * participant's review is refused by it, as over the API. Custodians act on the page without SSO
 * (break-glass-page.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AccountOverview } from '../../app/break-glass-admin.js';
import type { Activation } from '../../break-glass/activation.js';
import { PortcullisError } from '../../core/errors.js';
import { safeText } from '../input.js';
import {
  type ConsoleCaller,
  type ConsoleContext,
  type ConsolePageContent,
  doneNotice,
} from './console-routes.js';
import { parseForm } from './forms.js';
import { type Html, html } from './html.js';
import { csrfField, type Notice, stateBadge, time } from './layout.js';

const reviewForm = z.object({ csrf: z.string(), notes: safeText(4000) });
const activationParam = z.object({ id: z.string().min(1).max(128) }).strict();

const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());

function accountsTable(accounts: readonly AccountOverview[]): Html {
  const rows = accounts.map(
    (a) => html`<tr>
<td>${a.accountId}</td>
<td>${a.resourceId} / ${a.roles.join(', ')}</td>
<td>${a.enrolled.length} of ${a.custodians.length} (quorum ${a.quorum})</td>
<td>${time(iso(a.lastPassedDrillAt))}${a.drillOverdue ? html` <span class="state state-failed">overdue</span>` : ''}</td>
<td>${a.openActivations}</td>
<td>${a.awaitingReview > 0 ? html`<span class="state state-failed">${a.awaitingReview}</span>` : '0'}</td>
<td>${a.rotationOwed > 0 ? html`<span class="state state-failed">${a.rotationOwed}</span>` : '0'}</td>
</tr>`,
  );
  return html`<table>
<thead><tr><th>Account</th><th>Scope</th><th>Enrolled</th><th>Last passed drill</th><th>Open</th><th>Reviews owed</th><th>Rotations owed</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

function reviewCard(activation: Activation, caller: ConsoleCaller): Html {
  const action = `/console/break-glass/activations/${encodeURIComponent(activation.id)}/review`;
  return html`<section class="review">
<h3>${activation.accountId}${activation.drill ? ' (drill)' : ''} · <code>${activation.id}</code></h3>
<dl>
<dt>State</dt><dd>${stateBadge(activation.state)}${activation.endReason ? ` — ${activation.endReason}` : ''}</dd>
<dt>Initiator</dt><dd>${activation.initiatorId}</dd>
<dt>Confirmed by</dt><dd>${activation.confirmerIds.join(', ') || '—'}</dd>
<dt>Incident</dt><dd>${activation.incident}</dd>
<dt>Reason</dt><dd>${activation.reason}</dd>
<dt>Scope</dt><dd>${activation.scope.resourceId} / ${activation.scope.roles.join(', ')}</dd>
<dt>Active</dt><dd>${time(iso(activation.activatedAt))} – ${time(iso(activation.endedAt))}</dd>
</dl>
<p class="muted">The evidence: <code>portcullis break-glass report ${activation.id}</code>. Someone who took part cannot review it.</p>
<form class="stack" method="post" action="${action}">
${csrfField(caller.viewer)}
<label>Review notes <textarea name="notes" rows="4" maxlength="4000" required placeholder="What was done, whether it was needed, what follows"></textarea></label>
<div><button type="submit">Record the review</button></div>
</form>
</section>`;
}

export function consoleBreakGlassReviewPages(context: ConsoleContext) {
  const { deps } = context;

  const reviewsPage = async (caller: ConsoleCaller, notice: Notice | null): Promise<ConsolePageContent> => {
    const service = deps.breakGlass;
    if (!service || service.settings.accounts.length === 0) throw new PortcullisError('not_found');
    if (!caller.viewer.mayReviewBreakGlass) {
      throw new PortcullisError(
        'forbidden',
        'Only administrators and break-glass reviewers may see this page',
      );
    }
    const [accounts, owed] = await Promise.all([service.overview(), service.awaitingReview()]);
    return {
      title: 'Break-glass',
      section: 'break-glass',
      notice,
      body: html`<h2>Emergency accounts</h2>
${accountsTable(accounts)}
<h2>Reviews owed</h2>
${owed.length === 0 ? html`<p>None: every ended activation has its review.</p>` : owed.map((a) => reviewCard(a, caller))}
<p class="muted">Custodians start and confirm activations on <a href="/console/break-glass">the break-glass page</a>, which needs no sign-in.</p>`,
    };
  };

  return async (app: FastifyInstance) => {
    app.get('/break-glass/reviews', { schema: { hide: true } }, async (request, reply) => {
      const caller = context.caller(request);
      const page = await reviewsPage(caller, doneNotice((request.query as Record<string, unknown>).done));
      return context.render(reply, caller, page);
    });

    app.post('/break-glass/activations/:id/review', { schema: { hide: true } }, async (request, reply) => {
      const { id } = parseForm(activationParam, request.params);
      return context.act(
        request,
        reply,
        async (caller) => {
          const service = deps.breakGlass;
          if (!service) throw new PortcullisError('not_found');
          const { notes } = parseForm(reviewForm, request.body);
          await service.review(id, caller.principal, notes, caller.from);
          return '/console/break-glass/reviews?done=reviewed';
        },
        (caller) => reviewsPage(caller, null),
      );
    });
  };
}
