/**
 * A person at the web console, for tests: signs in through the real browser login (the demo IdP's
 * pages, the Portcullis callback) and then reads pages and sends forms with the session cookie, as
 * a browser does, but with every header under the test's control (Origin, Sec-Fetch-Site) so
 * cross-site forgeries can be sent too.
 *
 * - `ConsoleBrowser.signIn(h, 'alice', { next })` → a signed-in browser and the page it landed on.
 * - `browser.get(path)`, `browser.post(path, fields, headers?)` → `{ status, location, html, headers }`;
 *   redirects are returned, not followed.
 * - `browser.csrf` — the CSRF token of the last page read (from its hidden `csrf` field).
 * - `browser.cookie` — the session cookie (`name=value`), to replay it elsewhere.
 */
import assert from 'node:assert/strict';
import { signInThroughBrowser } from './oidc-browser.js';
import type { Harness } from './portcullis-harness.js';

export interface ConsolePage {
  readonly status: number;
  readonly location: string | null;
  readonly html: string;
  readonly headers: Headers;
}

/** The value of the first hidden `csrf` field of a page. */
export function csrfOf(html: string): string | undefined {
  return /<input type="hidden" name="csrf" value="([^"]+)">/.exec(html)?.[1];
}

export class ConsoleBrowser {
  csrf = '';

  private constructor(
    private readonly baseUrl: string,
    public cookie: string,
  ) {}

  static async signIn(
    h: Harness,
    username: string,
    options: { next?: string } = {},
  ): Promise<{ browser: ConsoleBrowser; landing: string; setCookie: string }> {
    const user = h.idp.users.find((u) => u.username === username) ?? assert.fail(`no demo user ${username}`);
    const next = options.next ? `?next=${encodeURIComponent(options.next)}` : '';
    const start = await fetch(`${h.url}/auth/oidc/demo/login${next}`, { redirect: 'manual' });
    assert.equal(start.status, 302, await start.text());
    const loginCookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const callback = await signInThroughBrowser(start.headers.get('location') ?? assert.fail(), {
      username,
      password: user.password,
    });
    const finished = await fetch(callback, { redirect: 'manual', headers: { cookie: loginCookie } });
    assert.equal(finished.status, 302, await finished.text());
    const setCookie =
      finished.headers.getSetCookie().find((c) => c.startsWith('portcullis_session=')) ??
      assert.fail('no session cookie');
    const browser = new ConsoleBrowser(h.url, setCookie.split(';')[0] ?? '');
    return { browser, landing: finished.headers.get('location') ?? '', setCookie };
  }

  /** Another browser holding the same cookie (a stolen or replayed one). */
  static withCookie(baseUrl: string, cookie: string): ConsoleBrowser {
    return new ConsoleBrowser(baseUrl, cookie);
  }

  async get(path: string): Promise<ConsolePage> {
    return this.#send('GET', path, undefined, {});
  }

  /**
   * Sends a form as a same-origin page would (`Origin`, `Sec-Fetch-Site: same-origin`); `headers`
   * replaces those, an empty value leaves a header out. `csrf` comes from the last page read unless
   * `fields` sets it (`null` leaves it out).
   */
  async post(
    path: string,
    fields: Record<string, string | null> = {},
    headers: Record<string, string> = {},
  ): Promise<ConsolePage> {
    const body = new URLSearchParams();
    const all = { csrf: this.csrf, ...fields };
    for (const [key, value] of Object.entries(all)) if (value !== null) body.set(key, value);
    return this.#send('POST', path, body, {
      origin: this.baseUrl,
      'sec-fetch-site': 'same-origin',
      ...headers,
    });
  }

  async #send(
    method: string,
    path: string,
    body: URLSearchParams | undefined,
    headers: Record<string, string>,
  ): Promise<ConsolePage> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== '')),
      },
      ...(body ? { body: body.toString() } : {}),
    });
    const html = await response.text();
    const csrf = csrfOf(html);
    if (csrf) this.csrf = csrf;
    return {
      status: response.status,
      location: response.headers.get('location'),
      html,
      headers: response.headers,
    };
  }
}
