/** The frame of every console page: header, navigation, the sign-out form, notices. */
import { type Html, html } from './html.js';

/** Who is looking, and what the navigation should offer them. */
export interface ConsoleViewer {
  readonly id: string;
  readonly displayName: string;
  /** The CSRF token every form on the page carries. */
  readonly csrf: string;
  readonly mayViewAudit: boolean;
  /** An administrator or break-glass reviewer, where emergency accounts are configured. */
  readonly mayReviewBreakGlass: boolean;
}

export type ConsoleSection = 'home' | 'new' | 'requests' | 'approvals' | 'grants' | 'audit' | 'break-glass';

export interface Notice {
  readonly kind: 'info' | 'error';
  readonly text: string;
}

const sections: readonly {
  id: ConsoleSection;
  label: string;
  href: string;
  audit?: true;
  breakGlass?: true;
}[] = [
  { id: 'home', label: 'Overview', href: '/console' },
  { id: 'new', label: 'Request access', href: '/console/requests/new' },
  { id: 'requests', label: 'Requests', href: '/console/requests' },
  { id: 'approvals', label: 'Approvals', href: '/console/approvals' },
  { id: 'grants', label: 'Grants', href: '/console/grants' },
  { id: 'audit', label: 'Audit log', href: '/console/audit', audit: true },
  { id: 'break-glass', label: 'Break-glass', href: '/console/break-glass/reviews', breakGlass: true },
];

/** The hidden field that proves a form came from a console page (console-session.ts). */
export function csrfField(viewer: ConsoleViewer): Html {
  return html`<input type="hidden" name="csrf" value="${viewer.csrf}">`;
}

function document(title: string, header: Html, main: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Portcullis</title>
<link rel="icon" href="/console/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/style.css">
</head>
<body>
${header}
<main>
${main}
</main>
</body>
</html>
`.toString();
}

export function consolePage(input: {
  readonly title: string;
  readonly section: ConsoleSection | null;
  readonly viewer: ConsoleViewer;
  readonly body: Html;
  readonly notice?: Notice | null;
}): string {
  const { viewer } = input;
  const nav = sections
    .filter((s) => (!s.audit || viewer.mayViewAudit) && (!s.breakGlass || viewer.mayReviewBreakGlass))
    .map(
      (s) =>
        html`<a href="${s.href}"${s.id === input.section ? html` aria-current="page"` : ''}>${s.label}</a>`,
    );
  const header = html`<header>
<a class="brand" href="/console">Portcullis</a>
<nav>${nav}</nav>
<span class="who" title="${viewer.id}">${viewer.displayName}</span>
<form class="inline" method="post" action="/console/logout">${csrfField(viewer)}<button class="secondary" type="submit">Sign out</button></form>
</header>`;
  return document(
    input.title,
    header,
    html`<h1>${input.title}</h1>${input.notice && noticeBox(input.notice)}${input.body}`,
  );
}

function noticeBox(notice: Notice): Html {
  return html`<p class="notice${notice.kind === 'error' ? ' error' : ''}" role="${notice.kind === 'error' ? 'alert' : 'status'}">${notice.text}</p>`;
}

/** A page for someone not signed in (or whose session ended): where to sign in. */
export function signedOutPage(title: string, text: string, signInHref: string): string {
  return document(
    title,
    html`<header><a class="brand" href="/console">Portcullis</a></header>`,
    html`<h1>${title}</h1><p>${text}</p><p><a href="${signInHref}">Sign in</a></p>`,
  );
}

/** An instant as `2026-11-24 14:30:05 UTC`, machine-readable in `datetime`. */
export function time(iso: string | null): Html {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}</time>`;
}

/** A duration in seconds as `45 min`, `2 h`, `1 h 30 min`, `90 s`. */
export function duration(seconds: number): string {
  if (seconds < 60 || seconds % 60 !== 0) return `${seconds} s`;
  const minutes = seconds / 60;
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

export function stateBadge(state: string): Html {
  return html`<span class="state state-${state}">${state}</span>`;
}
