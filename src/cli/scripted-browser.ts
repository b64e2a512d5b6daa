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
 * The cookie jar and form reading are src/identity/form-browser.ts, which the tests' browser
 * (test-support/oidc-browser.ts) also uses for any IdP; this login is deliberately narrower.
 */
import {
  FormBrowser,
  type HtmlForm,
  parseForms,
  redirectTarget,
  sameEndpoint,
} from '../identity/form-browser.js';
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

/** How the demo IdP's page and form look (src/identity/demo-login-page.ts). */
const demoPageTitle = /<title>[^<]*Portcullis demo identity provider[^<]*<\/title>/i;
const demoLoginAction = /^\/interaction\/[A-Za-z0-9_-]+\/login$/;

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
  const browser = new FormBrowser({ fetch: fetchPage, timeoutMs: 30_000 });
  const callback = new URL(options.callbackUrl);
  const maxSteps = options.maxSteps ?? 20;
  let next: { url: URL; method: string; body?: URLSearchParams } = {
    url: new URL(options.authorizationUrl),
    method: 'GET',
  };
  let credentialsSent = false;

  for (let step = 0; step < maxSteps; step++) {
    let response: Response;
    try {
      response = await browser.fetch(next.url, { method: next.method, body: next.body });
    } catch (error) {
      throw new CliError(
        'unavailable',
        `Cannot reach ${next.url.origin}: ${(error as Error).message}`,
        exitCodes.unavailable,
        { cause: error },
      );
    }

    const target = await redirectTarget(response, next.url);
    if (target) {
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
