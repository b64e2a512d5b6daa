/**
 * The parts of a browser that signing in at an identity provider's pages needs, over fetch and
 * without a browser: a cookie jar, one request at a time with redirects returned (not followed),
 * and reading the forms of a page. Shared by the CLI's scripted demo login
 * (src/cli/scripted-browser.ts) and the tests' sign-in browser (test-support/oidc-browser.ts); each
 * decides for itself which form to fill and with what.
 *
 * Limits: cookies are kept per origin (host and port, unlike a real browser, so two IdPs on
 * 127.0.0.1 do not see each other's cookies) with path matching and expiry; HTML is read with
 * regular expressions good enough for simple forms.
 *
 * @example
 * ```ts
 * const browser = new FormBrowser({ timeoutMs: 30_000 });
 * const response = await browser.fetch(authorizationUrl);
 * const next = await redirectTarget(response, authorizationUrl);
 * const forms = next ? [] : parseForms(await response.text());
 * ```
 */

/** A `<form>` of a page: its attribute values (entities decoded) and its `<input>` elements. */
export interface HtmlForm {
  readonly action: string;
  /** Upper case; `GET` when the form has no method. */
  readonly method: string;
  /** `type` is lower case, `text` when absent; a missing name or value is `''`. */
  readonly inputs: ReadonlyArray<{ readonly name: string; readonly type: string; readonly value: string }>;
}

export interface FormBrowserOptions {
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Abort each request after this many milliseconds. Default: no time limit. */
  readonly timeoutMs?: number;
}

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  readonly origin: string;
  readonly path: string;
  readonly expiresAt: number;
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
    if (name !== undefined)
      found.set(name.toLowerCase(), decodeEntities(match[2] ?? match[3] ?? match[4] ?? ''));
  }
  return found;
}

/** The forms of a page, read with regular expressions: enough for an IdP's simple markup. */
export function parseForms(html: string): HtmlForm[] {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((match) => {
    const form = attributes(match[1] ?? '');
    return {
      action: form.get('action') ?? '',
      method: (form.get('method') ?? 'get').toUpperCase(),
      inputs: [...(match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)].map((input) => {
        const attrs = attributes(input[1] ?? '');
        return {
          name: attrs.get('name') ?? '',
          type: (attrs.get('type') ?? 'text').toLowerCase(),
          value: attrs.get('value') ?? '',
        };
      }),
    };
  });
}

/** Whether two URLs name the same endpoint: same origin and path, whatever the query. */
export function sameEndpoint(candidate: URL, target: URL): boolean {
  return candidate.origin === target.origin && candidate.pathname === target.pathname;
}

/**
 * Where `response` redirects to, resolved against the URL it came from, with its body discarded;
 * undefined (body untouched) when it is not a 3xx with a `Location`.
 */
export async function redirectTarget(response: Response, from: URL): Promise<URL | undefined> {
  const location = response.headers.get('location');
  if (response.status < 300 || response.status >= 400 || location === null) return undefined;
  await response.body?.cancel();
  return new URL(location, from);
}

class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>();

  header(url: URL): string {
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

  store(url: URL, setCookies: readonly string[]): void {
    for (const header of setCookies) {
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

/** A cookie-keeping client that makes one request at a time, as a browser would. */
export class FormBrowser {
  readonly #jar = new CookieJar();
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number | undefined;

  constructor(options: FormBrowserOptions = {}) {
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * One request with this browser's cookies, keeping the cookies it sets; redirects are returned,
   * not followed. `method` defaults to POST with a body (sent form-encoded) and GET without.
   */
  async fetch(url: string | URL, init: { method?: string; body?: URLSearchParams } = {}): Promise<Response> {
    const target = new URL(url);
    const headers: Record<string, string> = { accept: 'text/html,application/json;q=0.9' };
    const cookie = this.#jar.header(target);
    if (cookie !== '') headers.cookie = cookie;
    if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const method = init.method ?? (init.body ? 'POST' : 'GET');
    let response: Response;
    try {
      response = await this.#fetch(target, {
        method,
        headers,
        ...(init.body ? { body: init.body.toString() } : {}),
        redirect: 'manual',
        ...(this.#timeoutMs !== undefined ? { signal: AbortSignal.timeout(this.#timeoutMs) } : {}),
      });
    } catch (error) {
      // fetch says only "fetch failed"; the page and the network error are what tell what broke.
      const cause = error instanceof TypeError ? error.cause : undefined;
      if (!(cause instanceof Error)) throw error;
      const detail = (cause as { code?: string }).code ?? cause.message;
      throw new TypeError(`${method} ${target.origin}${target.pathname}: ${detail}`, { cause });
    }
    this.#jar.store(target, response.headers.getSetCookie());
    return response;
  }
}
