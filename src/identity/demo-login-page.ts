/**
 * The demo identity provider's pages: a sign-in form and a plain message page. Self-contained
 * HTML (no external fonts or scripts) so the demo works offline and under a strict CSP.
 */
import { escapeHtml } from '../text/escape-html.js';

/** Headers for every page: not cacheable, not frameable, no scripts. */
export const pageHeaders: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0;padding:3rem 1rem}
main{max-width:22rem;margin:0 auto;background:#fff;padding:1.5rem 2rem;border-radius:6px;box-shadow:0 1px 3px #0002}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}
.error{color:#b91c1c}.hint{font-size:.85rem;color:#52525b}
</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

export interface LoginPageInput {
  readonly uid: string;
  readonly clientId: string;
  readonly username?: string;
  readonly error?: string;
  /** Shown under the form so people trying the demo know how to sign in. */
  readonly demoUsers: ReadonlyArray<{
    readonly username: string;
    readonly password: string;
    readonly groups: readonly string[];
  }>;
}

export function loginPage(input: LoginPageInput): string {
  const uid = encodeURIComponent(input.uid);
  const users = input.demoUsers
    .map(
      (u) =>
        `<li><code>${escapeHtml(u.username)}</code> / <code>${escapeHtml(u.password)}</code> (${escapeHtml(u.groups.join(', '))})</li>`,
    )
    .join('');
  return layout(
    'Sign in — Portcullis demo identity provider',
    `<h1>Sign in</h1>
<p>to <strong>${escapeHtml(input.clientId)}</strong> at the Portcullis <em>demo</em> identity provider</p>
${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login" autocomplete="off">
<label for="username">Username</label>
<input id="username" name="username" required autofocus value="${escapeHtml(input.username ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>
<p class="hint">Demo users — these passwords are public and for the demo only:</p>
<ul class="hint">${users}</ul>`,
  );
}

export function messagePage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}

/**
 * A device-flow page (RFC 8628): `form` is oidc-provider's own form (hidden CSRF and code fields,
 * already escaped by it), `buttons` submit it.
 */
export function deviceCodePage(message: string, form: string, buttons: string): string {
  return layout(
    'Device sign-in — Portcullis demo identity provider',
    `<h1>Device sign-in</h1><p>${escapeHtml(message)}</p>${form}${buttons}`,
  );
}
