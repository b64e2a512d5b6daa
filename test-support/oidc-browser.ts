/**
 * A tiny cookie-keeping "browser" over fetch that signs a user in at a real OpenID Connect provider
 * (the demo IdP in tests) so tests can finish a real authorization code flow without mocks.
 *
 * API:
 * - `new OidcTestBrowser()` — an empty browser (no cookies).
 * - `browser.signIn(authorizationUrl, { username, password }, { redirectUri?, maxSteps? })` →
 *   `Promise<URL>`: opens the authorization URL, follows redirects, fills and submits the sign-in
 *   form (and a consent form if one is shown), and resolves with the URL the IdP finally redirects
 *   to under `redirectUri` (by default the `redirect_uri` parameter of the authorization URL),
 *   **without requesting it**. That URL carries `code`, `state` and `iss` (or `error`); hand it to
 *   `OidcLogin.complete` or to the Portcullis callback route. If the browser already has a session
 *   at the IdP, no form is shown and the credentials are not used.
 * - `browser.fetch(url, { method?, body? })` — one request with this browser's cookies, redirects
 *   not followed; for tests that drive pages by hand.
 * - `signInThroughBrowser(authorizationUrl, credentials, options?)` — `signIn` with a fresh browser.
 * - Failures throw {@link BrowserLoginError} (`kind`: `credentials_rejected`, `unexpected_page`,
 *   `too_many_steps`) with the HTTP status and the start of the page text.
 *
 * Limits: those of src/identity/form-browser.ts (which keeps the cookies and reads the forms:
 * cookies per origin, host and port, so two test IdPs on 127.0.0.1 do not see each other's
 * cookies; HTML read with regular expressions good enough for simple forms); only the `query`
 * response mode is followed.
 */
import {
  FormBrowser,
  type HtmlForm,
  parseForms,
  redirectTarget,
  sameEndpoint,
} from '../src/identity/form-browser.js';

export interface SignInCredentials {
  readonly username: string;
  readonly password: string;
}

export interface SignInOptions {
  /** Stop at the first redirect to this URL (origin and path). Default: the authorization URL's redirect_uri. */
  readonly redirectUri?: string;
  /** Requests to make before giving up. Default 20. */
  readonly maxSteps?: number;
}

export class BrowserLoginError extends Error {
  constructor(
    readonly kind: 'credentials_rejected' | 'unexpected_page' | 'too_many_steps',
    message: string,
    readonly status?: number,
    readonly page?: string,
  ) {
    super(message);
    this.name = 'BrowserLoginError';
  }
}

function pageExcerpt(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

/** A {@link FormBrowser} (cookies kept, redirects returned by `fetch`) that can sign in. */
export class OidcTestBrowser extends FormBrowser {
  /** Signs in and returns the final redirect to the relying party's redirect URI (not requested). */
  async signIn(
    authorizationUrl: string | URL,
    credentials: SignInCredentials,
    options: SignInOptions = {},
  ): Promise<URL> {
    const start = new URL(authorizationUrl);
    const redirectParameter = options.redirectUri ?? start.searchParams.get('redirect_uri');
    if (!redirectParameter) throw new TypeError('no redirectUri given and none in the authorization URL');
    const redirectUri = new URL(redirectParameter);
    const maxSteps = options.maxSteps ?? 20;

    let next: { url: URL; method: string; body?: URLSearchParams } = { url: start, method: 'GET' };
    let credentialsSent = false;
    let consentSent = false;
    for (let step = 0; step < maxSteps; step++) {
      const response = await this.fetch(next.url, { method: next.method, body: next.body });
      const target = await redirectTarget(response, next.url);
      if (target) {
        if (sameEndpoint(target, redirectUri)) return target;
        next = { url: target, method: 'GET' };
        continue;
      }
      const html = await response.text();
      const forms = parseForms(html);
      const loginForm = forms.find((form) => form.inputs.some((input) => input.type === 'password'));
      if (loginForm) {
        if (credentialsSent) {
          throw new BrowserLoginError(
            'credentials_rejected',
            'the identity provider rejected the credentials',
            response.status,
            pageExcerpt(html),
          );
        }
        credentialsSent = true;
        next = this.#submission(loginForm, next.url, credentials);
        continue;
      }
      const consentForm = forms.find((form) => form.method === 'POST');
      if (consentForm && !consentSent && response.ok) {
        consentSent = true;
        next = this.#submission(consentForm, next.url, undefined);
        continue;
      }
      throw new BrowserLoginError(
        'unexpected_page',
        `unexpected page from ${next.url.origin}${next.url.pathname} (HTTP ${response.status})`,
        response.status,
        pageExcerpt(html),
      );
    }
    throw new BrowserLoginError(
      'too_many_steps',
      `no redirect to ${redirectUri.href} after ${maxSteps} requests`,
    );
  }

  #submission(
    form: HtmlForm,
    page: URL,
    credentials: SignInCredentials | undefined,
  ): { url: URL; method: string; body: URLSearchParams } {
    const body = new URLSearchParams();
    let usernameFilled = false;
    for (const input of form.inputs) {
      if (input.name === '' || input.type === 'submit' || input.type === 'button') continue;
      if (credentials && input.type === 'password') {
        body.append(input.name, credentials.password);
      } else if (credentials && !usernameFilled && ['text', 'email'].includes(input.type)) {
        body.append(input.name, credentials.username);
        usernameFilled = true;
      } else {
        body.append(input.name, input.value);
      }
    }
    return { url: new URL(form.action || page.href, page), method: form.method, body };
  }
}

/**
 * Plays the person at the device flow's verification page (RFC 8628): opens
 * `verification_uri_complete`, confirms the code (or aborts with `abort: true`), signs in, and
 * resolves with the text of the final page. A fresh browser, so there is no IdP session.
 */
export async function approveDeviceCode(
  verificationUriComplete: string,
  credentials: SignInCredentials,
  options: { readonly abort?: boolean; readonly maxSteps?: number } = {},
): Promise<string> {
  const browser = new FormBrowser({ timeoutMs: 10_000 });
  let next: { url: URL; method: string; body?: URLSearchParams } = {
    url: new URL(verificationUriComplete),
    method: 'GET',
  };
  let credentialsSent = false;
  let aborted = false;
  for (let step = 0; step < (options.maxSteps ?? 20); step++) {
    const response = await browser.fetch(next.url, { method: next.method, body: next.body });
    const target = await redirectTarget(response, next.url);
    if (target) {
      next = { url: target, method: 'GET' };
      continue;
    }
    const html = await response.text();
    if (aborted) return pageExcerpt(html);
    const forms = parseForms(html);
    const fields = (form: HtmlForm) =>
      new URLSearchParams(form.inputs.map((i): [string, string] => [i.name, i.value]));
    const confirm = forms.find((form) => form.inputs.some((input) => input.name === 'confirm'));
    const login = forms.find((form) => form.inputs.some((input) => input.type === 'password'));
    if (confirm) {
      const body = fields(confirm);
      if (options.abort) {
        body.delete('confirm');
        body.set('abort', 'yes');
        aborted = true;
      }
      next = { url: new URL(confirm.action || next.url.href, next.url), method: 'POST', body };
    } else if (login && !credentialsSent) {
      credentialsSent = true;
      const body = new URLSearchParams({ username: credentials.username, password: credentials.password });
      next = { url: new URL(login.action || next.url.href, next.url), method: 'POST', body };
    } else if (forms[0]?.method === 'POST' && !login) {
      // oidc-provider's self-submitting "Submitting Callback" page (a script posts it in a browser).
      const form = forms[0];
      next = { url: new URL(form.action || next.url.href, next.url), method: 'POST', body: fields(form) };
    } else {
      return pageExcerpt(html);
    }
  }
  throw new BrowserLoginError('too_many_steps', 'the device sign-in did not finish');
}

/** {@link OidcTestBrowser.signIn} with a fresh browser (no IdP session). */
export function signInThroughBrowser(
  authorizationUrl: string | URL,
  credentials: SignInCredentials,
  options: SignInOptions = {},
): Promise<URL> {
  return new OidcTestBrowser().signIn(authorizationUrl, credentials, options);
}
