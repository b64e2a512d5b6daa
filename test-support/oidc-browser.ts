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
 * Limits: cookies are kept per origin (host and port, unlike a real browser, so two test IdPs on
 * 127.0.0.1 do not see each other's cookies) with path matching and expiry; HTML is read with
 * regular expressions good enough for simple forms; only the `query` response mode is followed.
 */

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

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  readonly origin: string;
  readonly path: string;
  readonly expiresAt: number;
}

interface HtmlForm {
  readonly action: string;
  readonly method: string;
  readonly inputs: ReadonlyArray<{ readonly name: string; readonly type: string; readonly value: string }>;
}

function decodeEntities(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCodePoint(Number.parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of tag.matchAll(/([a-zA-Z_:][\w:.-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    const name = match[1];
    if (name === undefined) continue;
    found.set(name.toLowerCase(), decodeEntities(match[2] ?? match[3] ?? match[4] ?? ''));
  }
  return found;
}

function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttributes = attributes(match[1] ?? '');
    const inputs = [...(match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)].map((input) => {
      const attrs = attributes(input[1] ?? '');
      return {
        name: attrs.get('name') ?? '',
        type: (attrs.get('type') ?? 'text').toLowerCase(),
        value: attrs.get('value') ?? '',
      };
    });
    forms.push({
      action: formAttributes.get('action') ?? '',
      method: (formAttributes.get('method') ?? 'get').toUpperCase(),
      inputs,
    });
  }
  return forms;
}

function pageExcerpt(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

function sameEndpoint(candidate: URL, target: URL): boolean {
  return candidate.origin === target.origin && candidate.pathname === target.pathname;
}

export class OidcTestBrowser {
  readonly #cookies = new Map<string, StoredCookie>();

  /** One request with this browser's cookies; redirects are returned, not followed. */
  async fetch(url: string | URL, init: { method?: string; body?: URLSearchParams } = {}): Promise<Response> {
    const target = new URL(url);
    const headers: Record<string, string> = { accept: 'text/html,application/json;q=0.9' };
    const cookie = this.#cookieHeader(target);
    if (cookie !== '') headers.cookie = cookie;
    if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(target, {
      method: init.method ?? (init.body ? 'POST' : 'GET'),
      headers,
      body: init.body?.toString(),
      redirect: 'manual',
    });
    this.#storeCookies(target, response.headers.getSetCookie());
    return response;
  }

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
      const response = await this.fetch(next.url, {
        method: next.method,
        ...(next.body ? { body: next.body } : {}),
      });
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel();
        const target = new URL(location, next.url);
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

  #cookieHeader(url: URL): string {
    const now = Date.now();
    const sent: string[] = [];
    for (const [key, cookie] of this.#cookies) {
      if (cookie.expiresAt <= now) {
        this.#cookies.delete(key);
        continue;
      }
      const pathMatches =
        url.pathname === cookie.path ||
        (url.pathname.startsWith(cookie.path) &&
          (cookie.path.endsWith('/') || url.pathname[cookie.path.length] === '/'));
      if (cookie.origin === url.origin && pathMatches) sent.push(`${cookie.name}=${cookie.value}`);
    }
    return sent.join('; ');
  }

  #storeCookies(url: URL, headers: readonly string[]): void {
    for (const header of headers) {
      const [pair = '', ...attributeParts] = header.split(';');
      const separator = pair.indexOf('=');
      if (separator <= 0) continue;
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      let path = url.pathname.slice(0, url.pathname.lastIndexOf('/')) || '/';
      let expiresAt = Number.POSITIVE_INFINITY;
      for (const part of attributeParts) {
        const [rawKey = '', ...rest] = part.split('=');
        const key = rawKey.trim().toLowerCase();
        const attributeValue = rest.join('=').trim();
        if (key === 'path' && attributeValue.startsWith('/')) path = attributeValue;
        if (key === 'max-age') expiresAt = Date.now() + Number(attributeValue) * 1000;
        if (key === 'expires' && expiresAt === Number.POSITIVE_INFINITY)
          expiresAt = Date.parse(attributeValue);
      }
      const key = `${url.origin} ${path} ${name}`;
      if (!(expiresAt > Date.now())) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, origin: url.origin, path, expiresAt });
    }
  }
}

/** {@link OidcTestBrowser.signIn} with a fresh browser (no IdP session). */
export function signInThroughBrowser(
  authorizationUrl: string | URL,
  credentials: SignInCredentials,
  options: SignInOptions = {},
): Promise<URL> {
  return new OidcTestBrowser().signIn(authorizationUrl, credentials, options);
}
