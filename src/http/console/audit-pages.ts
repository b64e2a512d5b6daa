/** The console's audit viewer: a page of events in sequence order, with links to move through the log. */
import type { AuditRecord } from '../../app/ports.js';
import { type Html, html } from './html.js';
import { time } from './layout.js';

/** How much of an event's `data` a row shows; the export has all of it. */
const dataPreviewLength = 400;

export interface AuditPageWindow {
  /** The events shown are those after this sequence number. */
  readonly after: number;
  readonly limit: number;
  /** The newest sequence number in the log. */
  readonly head: number;
}

export function auditTable(events: readonly AuditRecord[], window: AuditPageWindow): Html {
  const older = Math.max(0, window.after - window.limit);
  const newer = window.after + window.limit;
  const pager = html`<div class="pager">
${window.after > 0 ? html`<a href="/console/audit?after=${older}">← Older</a>` : html`<span class="muted">← Older</span>`}
${newer < window.head ? html`<a href="/console/audit?after=${newer}">Newer →</a>` : html`<span class="muted">Newer →</span>`}
<a href="/console/audit">Newest</a>
</div>`;
  if (events.length === 0) return html`<p class="muted">No events here.</p>${pager}`;
  return html`<p class="muted">Events ${events[0]?.seq} to ${events.at(-1)?.seq} of ${window.head}. The full, verifiable log: <code>portcullis audit export</code>, then <code>portcullis audit verify</code>.</p>
${pager}
<table>
<thead><tr><th>#</th><th>When</th><th>Event</th><th>Actor</th><th>Subject</th><th>Details</th></tr></thead>
<tbody>${events.map((e) => {
    const data = e.data && Object.keys(e.data).length > 0 ? JSON.stringify(e.data) : '';
    return html`<tr>
<td>${e.seq}</td>
<td>${time(new Date(e.at).toISOString())}</td>
<td class="severity-${e.severity ?? 'info'}">${e.type}</td>
<td>${e.actor}${e.sourceIp && html`<br><span class="muted">${e.sourceIp}</span>`}</td>
<td>${subject(e)}</td>
<td class="wrap">${e.reason && html`<div>${e.reason}</div>`}${data && html`<pre>${data.length > dataPreviewLength ? `${data.slice(0, dataPreviewLength)}…` : data}</pre>`}</td>
</tr>`;
  })}</tbody>
</table>
${pager}`;
}

function subject(event: AuditRecord): Html {
  return html`${event.resourceId && html`<div>${event.resourceId}</div>`}${
    event.requestId &&
    html`<div><a href="/console/requests/${encodeURIComponent(event.requestId)}">request</a></div>`
  }${event.grantId && html`<div><a href="/console/grants/${encodeURIComponent(event.grantId)}">grant</a></div>`}`;
}
