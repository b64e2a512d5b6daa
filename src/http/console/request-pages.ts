/** Console pages of requests: the list, one request with its reviews and actions, the new-request form. */
import type { ResourceDefinition } from '../../core/resource.js';
import type { RequestView } from '../views.js';
import { type Html, html } from './html.js';
import { type ConsoleViewer, csrfField, duration, stateBadge, time } from './layout.js';

const requestHref = (id: string) => `/console/requests/${encodeURIComponent(id)}`;
export const grantHref = (id: string) => `/console/grants/${encodeURIComponent(id)}`;

export function requestTable(requests: readonly RequestView[], empty: string): Html {
  if (requests.length === 0) return html`<p class="muted">${empty}</p>`;
  return html`<table>
<thead><tr><th>Requested</th><th>By</th><th>Access</th><th>For</th><th>State</th><th>Reason</th></tr></thead>
<tbody>${requests.map(
    (r) => html`<tr>
<td><a href="${requestHref(r.id)}">${time(r.created_at)}</a></td>
<td>${r.requester}</td>
<td>${r.resource} / ${r.role}</td>
<td>${duration(r.duration_seconds)}</td>
<td>${stateBadge(r.state)}</td>
<td class="wrap">${r.reason}${r.ticket && html` <span class="muted">(${r.ticket})</span>`}</td>
</tr>`,
  )}</tbody>
</table>`;
}

/** What the viewer may do with a request, as decided by the access service. */
export interface RequestActions {
  readonly review: boolean;
  readonly cancel: boolean;
}

export function requestDetail(request: RequestView, viewer: ConsoleViewer, actions: RequestActions): Html {
  const approvals = request.reviews.filter((r) => r.verdict === 'approve').length;
  return html`<dl>
<dt>State</dt><dd>${stateBadge(request.state)}${request.end_reason && html` <span class="muted">— ${request.end_reason}</span>`}</dd>
<dt>Requester</dt><dd>${request.requester}</dd>
<dt>Access</dt><dd>${request.resource} / ${request.role}</dd>
<dt>Duration</dt><dd>${duration(request.duration_seconds)}</dd>
<dt>Reason</dt><dd>${request.reason || html`<span class="muted">none given</span>`}</dd>
<dt>Ticket</dt><dd>${request.ticket ?? html`<span class="muted">none</span>`}</dd>
<dt>Approvals</dt><dd>${approvals} of ${request.approvals_required}${
    request.approver_groups.length > 0 &&
    html` <span class="muted">from ${request.approver_groups.join(', ')}</span>`
  }</dd>
<dt>Policy</dt><dd><code>${request.policy_id}</code></dd>
<dt>Requested</dt><dd>${time(request.created_at)}</dd>
${request.state === 'pending' && html`<dt>Review by</dt><dd>${time(request.review_by)}</dd>`}
${request.activated_at && html`<dt>Active from</dt><dd>${time(request.activated_at)}</dd>`}
${request.expires_at && html`<dt>Ends</dt><dd>${time(request.expires_at)}</dd>`}
${request.ended_at && html`<dt>Ended</dt><dd>${time(request.ended_at)}</dd>`}
${request.grant_id && html`<dt>Grant</dt><dd><a href="${grantHref(request.grant_id)}">${request.grant_id}</a></dd>`}
<dt>Id</dt><dd><code>${request.id}</code></dd>
</dl>
${actions.review && reviewForms(request, viewer)}
${actions.cancel && html`<div class="actions"><form method="post" action="${requestHref(request.id)}/cancel">${csrfField(viewer)}<button class="secondary" type="submit">Withdraw this request</button></form></div>`}
<h2>Reviews</h2>
${
  request.reviews.length === 0
    ? html`<p class="muted">No reviews yet.</p>`
    : html`<table><thead><tr><th>When</th><th>Reviewer</th><th>Verdict</th><th>Reason</th></tr></thead><tbody>${request.reviews.map(
        (r) =>
          html`<tr><td>${time(r.at)}</td><td>${r.reviewer}</td><td>${r.verdict === 'approve' ? 'approved' : 'denied'}</td><td class="wrap">${r.reason}</td></tr>`,
      )}</tbody></table>`
}`;
}

function reviewForms(request: RequestView, viewer: ConsoleViewer): Html {
  const action = requestHref(request.id);
  return html`<div class="actions">
<form method="post" action="${action}/approve">${csrfField(viewer)}
<label>Comment <input name="reason" maxlength="1000"></label>
<button type="submit">Approve</button></form>
<form method="post" action="${action}/deny">${csrfField(viewer)}
<label>Why <input name="reason" maxlength="1000" required></label>
<button class="danger" type="submit">Deny</button></form>
</div>`;
}

/** What the new-request form holds when it is shown again after a refusal. */
export interface RequestFormValues {
  readonly target?: string;
  readonly duration?: string;
  readonly reason?: string;
  readonly ticket?: string;
}

/** `resource/role`, the value of one option of the form's access list. */
export const accessOption = (resource: string, role: string) => `${resource}/${role}`;

export function newRequestForm(
  resources: readonly ResourceDefinition[],
  viewer: ConsoleViewer,
  values: RequestFormValues = {},
): Html {
  const groups = resources.map(
    (resource) =>
      html`<optgroup label="${resource.id}${resource.description ? ` — ${resource.description}` : ''} (${resource.sensitivity})">${[
        ...resource.roles.values(),
      ].map((role) => {
        const value = accessOption(resource.id, role.name);
        return html`<option value="${value}"${value === values.target ? html` selected` : ''}>${resource.id} / ${role.name}${role.description ? ` — ${role.description}` : ''}</option>`;
      })}</optgroup>`,
  );
  return html`<form class="stack" method="post" action="/console/requests">${csrfField(viewer)}
<label>Access <select name="target" required>${groups}</select></label>
<label>Duration <input name="duration" required maxlength="32" placeholder="e.g. 30m, 2h" value="${values.duration ?? '1h'}"></label>
<label>Reason <textarea name="reason" rows="3" maxlength="1000">${values.reason ?? ''}</textarea></label>
<label>Ticket <input name="ticket" maxlength="200" placeholder="optional, e.g. INC-1234" value="${values.ticket ?? ''}"></label>
<div><button type="submit">Ask for access</button></div>
<p class="muted">The policy decides who must approve, for how long at most, and whether a reason or ticket is needed.</p>
</form>`;
}
