/** Console pages of grants: the list and one grant with its end-now form. */
import type { GrantView } from '../views.js';
import { type Html, html } from './html.js';
import { type ConsoleViewer, csrfField, stateBadge, time } from './layout.js';
import { grantHref } from './request-pages.js';

export function grantTable(grants: readonly GrantView[], empty: string): Html {
  if (grants.length === 0) return html`<p class="muted">${empty}</p>`;
  return html`<table>
<thead><tr><th>Access</th><th>Holder</th><th>Status</th><th>From</th><th>Ends</th></tr></thead>
<tbody>${grants.map(
    (g) => html`<tr>
<td><a href="${grantHref(g.id)}">${g.resource} / ${g.role}</a></td>
<td>${g.principal}</td>
<td>${stateBadge(g.status)}</td>
<td>${time(g.not_before)}</td>
<td>${time(g.revoked_at ?? g.expires_at)}</td>
</tr>`,
  )}</tbody>
</table>`;
}

/** Whether the page offers to end the grant, and in whose words: the holder releases, others revoke. */
export type GrantEnding = 'release' | 'revoke' | null;

export function grantDetail(grant: GrantView, viewer: ConsoleViewer, ending: GrantEnding): Html {
  const artefacts = Object.entries(grant.artefacts);
  return html`<dl>
<dt>Status</dt><dd>${stateBadge(grant.status)}</dd>
<dt>Holder</dt><dd>${grant.principal}</dd>
<dt>Access</dt><dd>${grant.resource} / ${grant.role}</dd>
<dt>From</dt><dd>${time(grant.not_before)}</dd>
<dt>Ends</dt><dd>${time(grant.expires_at)}</dd>
${grant.revoked_at && html`<dt>Ended early</dt><dd>${time(grant.revoked_at)}</dd>`}
${grant.last_error && html`<dt>Last error</dt><dd class="wrap">${grant.last_error}</dd>`}
<dt>Request</dt><dd><a href="/console/requests/${encodeURIComponent(grant.request_id)}">${grant.request_id}</a></dd>
<dt>Id</dt><dd><code>${grant.id}</code></dd>
${artefacts.map(([key, value]) => html`<dt>${key}</dt><dd><code>${String(value)}</code></dd>`)}
</dl>
${
  grant.status === 'active' &&
  html`<p>Credentials are shown once, to the holder, by the CLI: <code>portcullis creds ${grant.id}</code>.</p>`
}
${ending && endForm(grant, viewer, ending)}`;
}

function endForm(grant: GrantView, viewer: ConsoleViewer, ending: 'release' | 'revoke'): Html {
  return html`<div class="actions"><form method="post" action="${grantHref(grant.id)}/revoke">${csrfField(viewer)}
<label>Reason <input name="reason" maxlength="1000"${ending === 'revoke' ? html` required` : ''}></label>
<button class="danger" type="submit">${ending === 'release' ? 'End my access now' : 'Revoke now'}</button>
</form></div>`;
}
