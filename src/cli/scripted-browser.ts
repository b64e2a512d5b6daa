/**
 * `portcullis login --username U --password-stdin`: drives the browser half of the loopback login
 * without a browser, for the built-in demo identity provider ONLY (scripts, CI, the README tour).
 * It follows redirects with a cookie jar, submits the demo IdP's sign-in form, and delivers the
 * final redirect to the CLI's own loopback listener.
 *
 * The password is only ever posted to a page that is recognisably the demo IdP's sign-in form; any
 * other page (a real IdP, a proxy's login) stops the login with a clear message instead, because
 * scripting a real IdP's login page would bypass its MFA and phishing protections.
 *
 * Adapted from test-support/oidc-browser.ts (cookie jar, form reading), which tests use for any
 * IdP; this one is deliberately narrower.
 */
import { errorFromResponse } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';

export interface DemoCredentials {
  readonly username: string;
  readonly password: string;
}

export interface ScriptedLoginOptions {
  /** Where the login starts: the server's `/auth/oidc/<idp>/login?…` URL. */
  readonly authorizationUrl: string;
  /** The CLI's loopback callback; the redirect to it ends the chain and is delivered there. */
  readonly callbackUrl: string;
  readonly credentials: DemoCredentials;
  readonly fetch?: typeof fetch;
  /** Requests to make before giving up. Default 20. */
  readonly maxSteps?: number;
}

interface HtmlForm {
  readonly action: string;
  readonly method: string;
  readonly inputs: ReadonlyArray<{ readonly name: string; readonly type: string; readonly value: string }>;
}

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  readonly origin: string;
  readonly path: string;
  readonly expiresAt: number;
}

/** How the demo IdP's page and form look (src/identity/demo-login-page.ts). */
const demoPageTitle = /<title>[^<]*Portcullis demo identity provider[^<]*<\/title>/i;
const demoLoginAction = /^\/interaction\/[A-Za-z0-9_-]+\/login$/;

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

/** The forms of a page, read with regular expressions: enough for the demo IdP's simple markup. */
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

/** The demo IdP's sign-in form on `html`, or undefined when the page is anything else. */
export function findDemoLoginForm(html: string): HtmlForm | undefined {
  if (!demoPageTitle.test(html)) return undefined;
  return parseForms(html).find(
    (form) =>
      form.method === 'POST' &&
      demoLoginAction.test(form.action) &&
      form.inputs.some((input) => input.name === 'username') &&
      form.inputs.some((input) => input.name === 'password' && input.type === 'password'),
  );
}

function pageExcerpt(html: string): string {
  return html
    .replace(/<(style|script)[\s\S]*?<\/\1>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

function sameEndpoint(candidate: URL, target: URL): boolean {
  return candidate.origin === target.origin && candidate.pathname === target.pathname;
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

function notDemoPage(url: URL, status: number, html: string): CliError {
  return new CliError(
    'scripted_login_unsupported',
    `Scripted login (--username) works only with the built-in demo identity provider, but ${url.origin}${url.pathname} answered HTTP ${status} with a page that is not its sign-in form${html ? `: "${pageExcerpt(html)}"` : ''}`,
    exitCodes.usage,
    { hint: 'sign in with a browser instead: run `portcullis login` without --username' },
  );
}

/**
 * Follows the login from `authorizationUrl` to the loopback callback, signing in at the demo IdP
 * on the way, and requests the callback URL so the CLI's listener receives the code. Resolves once
 * the listener has answered (the listener reports the outcome of the login itself).
 *
 * @throws CliError `scripted_login_unsupported` (exit 2) for a page that is not the demo IdP's
 *   form; `login_failed` (exit 3) when the credentials are rejected; the server's problem as is.
 */
export async function scriptedDemoLogin(options: ScriptedLoginOptions): Promise<void> {
  const fetchPage = options.fetch ?? fetch;
  const jar = new CookieJar();
  const callback = new URL(options.callbackUrl);
  const maxSteps = options.maxSteps ?? 20;
  let next: { url: URL; method: string; body?: URLSearchParams } = {
    url: new URL(options.authorizationUrl),
    method: 'GET',
  };
  let credentialsSent = false;

  for (let step = 0; step < maxSteps; step++) {
    const headers: Record<string, string> = { accept: 'text/html,application/json;q=0.9' };
    const cookie = jar.header(next.url);
    if (cookie !== '') headers.cookie = cookie;
    if (next.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    let response: Response;
    try {
      response = await fetchPage(next.url, {
        method: next.method,
        headers,
        ...(next.body ? { body: next.body.toString() } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new CliError(
        'unavailable',
        `Cannot reach ${next.url.origin}: ${(error as Error).message}`,
        exitCodes.unavailable,
        { cause: error },
      );
    }
    jar.store(next.url, response.headers.getSetCookie());

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      const target = new URL(location, next.url);
      if (sameEndpoint(target, callback)) {
        // Deliver the code to our own listener, as a browser would; it answers once the login is done.
        const delivered = await fetchPage(target, { redirect: 'manual' });
        await delivered.body?.cancel();
        return;
      }
      next = { url: target, method: 'GET' };
      continue;
    }
    if (/problem\+json/i.test(response.headers.get('content-type') ?? '')) {
      throw await errorFromResponse(response);
    }
    const html = await response.text();
    const form = findDemoLoginForm(html);
    if (!form) throw notDemoPage(next.url, response.status, html);
    if (credentialsSent) {
      throw new CliError(
        'login_failed',
        `The demo identity provider rejected the username or password for ${JSON.stringify(options.credentials.username)}`,
        exitCodes.unauthenticated,
      );
    }
    credentialsSent = true;
    const body = new URLSearchParams();
    for (const input of form.inputs) {
      if (input.name === '' || input.type === 'submit' || input.type === 'button') continue;
      if (input.name === 'username') body.append('username', options.credentials.username);
      else if (input.name === 'password') body.append('password', options.credentials.password);
      else body.append(input.name, input.value);
    }
    next = { url: new URL(form.action, next.url), method: 'POST', body };
  }
  throw new CliError(
    'login_failed',
    `The sign-in did not come back to the CLI after ${maxSteps} requests`,
    exitCodes.unauthenticated,
  );
}
