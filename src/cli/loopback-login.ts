/**
 * CLI sign-in through a loopback redirect (RFC 8252 §7.3) with PKCE (RFC 7636):
 *
 * 1. listen on http://127.0.0.1:<random port>/callback;
 * 2. send the browser to `<server>/auth/{oidc|saml}/<idp>/login?redirect_uri=…&code_challenge=…&state=…`;
 *    Portcullis runs the identity provider's login and redirects back with a one-time `code`;
 * 3. check `state`, then trade `code` and the PKCE verifier for a session token at
 *    `POST /api/v1/auth/cli/token`, and tell the browser how it went.
 *
 * The code is useless without the verifier, which never leaves this process; the listener accepts
 * only its own `state`, so another page cannot inject a login.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sameSecret } from '../crypto/same-secret.js';
import { escapeHtml } from '../text/escape-html.js';
import type { ApiClient } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';

/** The body of `POST /api/v1/auth/cli/token`. */
export interface CliTokenResponse {
  readonly session_token: string;
  readonly expires_at: string;
  readonly principal: {
    readonly id: string;
    readonly display_name: string;
    readonly groups: readonly string[];
  };
}

export interface LoopbackLoginOptions {
  /** An unauthenticated client for the server. */
  readonly client: ApiClient;
  /** Identity provider id, as listed by `GET /api/v1/auth/providers`. */
  readonly idp: string;
  /** The provider's protocol from the same list; selects `/auth/oidc/…` or `/auth/saml/…`. Default oidc. */
  readonly protocol?: 'oidc' | 'saml';
  /**
   * Sends the user (or a scripted browser) to `authorizationUrl`. A rejection aborts the login;
   * resolving means nothing — the login ends when the callback arrives.
   */
  readonly present: (authorizationUrl: string, callbackUrl: string) => void | Promise<void>;
  /** How long to wait for the callback. Default 5 minutes. */
  readonly timeoutMs?: number;
}

/** A PKCE pair: a 32-byte random verifier (base64url) and its S256 challenge. */
export function createPkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The URL that starts a CLI login at the server. */
export function cliAuthorizationUrl(
  server: string,
  idp: string,
  params: { redirectUri: string; codeChallenge: string; state: string },
  protocol: 'oidc' | 'saml' = 'oidc',
): string {
  const query = new URLSearchParams({
    redirect_uri: params.redirectUri,
    code_challenge: params.codeChallenge,
    code_challenge_method: 'S256',
    state: params.state,
  });
  return `${server}/auth/${protocol}/${encodeURIComponent(idp)}/login?${query.toString()}`;
}

function page(title: string, message: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>${escapeHtml(title)}</title><body style="font-family:system-ui,sans-serif;margin:3rem"><h1 style="font-size:1.3rem">${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
}

function send(response: ServerResponse, status: number, html: string): Promise<void> {
  return new Promise((resolve) => {
    response.once('close', resolve);
    response.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      'referrer-policy': 'no-referrer',
      connection: 'close',
    });
    response.end(html);
  });
}

/**
 * Runs the loopback login and returns the new session.
 *
 * @throws CliError `login_failed` / `login_timeout` (exit 3), or the API's errors.
 */
export async function loopbackLogin(options: LoopbackLoginOptions): Promise<CliTokenResponse> {
  const { verifier, challenge } = createPkcePair();
  const state = randomBytes(16).toString('base64url');
  const listener = createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const redirectUri = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/callback`;

  let receiveCode: (code: string) => void = () => {};
  let refuse: (error: CliError) => void = () => {};
  const codeReceived = new Promise<string>((resolve, reject) => {
    receiveCode = resolve;
    refuse = reject;
  });
  const exchanged = codeReceived.then((code) =>
    options.client.post<CliTokenResponse>('/api/v1/auth/cli/token', {
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
    }),
  );
  exchanged.catch(() => {}); // observed below; this keeps an early failure from being "unhandled"

  let callbackTaken = false;
  let browserAnswered: Promise<void> = Promise.resolve();
  listener.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', redirectUri);
    if (url.pathname !== '/callback') {
      void send(response, 404, page('Not found', 'This address only receives the Portcullis sign-in.'));
      return;
    }
    if (request.method !== 'GET') {
      void send(response, 405, page('Not allowed', 'Only GET is accepted here.'));
      return;
    }
    if (!sameSecret(url.searchParams.get('state') ?? '', state)) {
      // Not ours (another tab, or a forged link): refuse it and keep waiting for the real one.
      void send(
        response,
        400,
        page('Not this sign-in', 'This response does not belong to the sign-in in progress.'),
      );
      return;
    }
    if (callbackTaken) {
      void send(response, 409, page('Already done', 'This sign-in has already been completed.'));
      return;
    }
    callbackTaken = true;
    const code = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    if (!code || error) {
      const description = url.searchParams.get('error_description');
      refuse(
        new CliError(
          'login_failed',
          `The sign-in did not complete: ${error ?? 'no code in the callback'}${description ? ` (${description})` : ''}`,
          exitCodes.unauthenticated,
        ),
      );
      browserAnswered = send(response, 400, page('Sign-in failed', 'Return to the terminal for details.'));
      return;
    }
    receiveCode(code);
    browserAnswered = exchanged.then(
      (session) =>
        send(
          response,
          200,
          page(
            'Signed in to Portcullis',
            `Signed in as ${session.principal.display_name}. You can close this tab and return to the terminal.`,
          ),
        ),
      (failure: unknown) =>
        send(
          response,
          400,
          page(
            'Sign-in failed',
            failure instanceof Error ? failure.message : 'Return to the terminal for details.',
          ),
        ),
    );
  });

  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new CliError(
            'login_timeout',
            `No sign-in arrived within ${Math.round(timeoutMs / 1000)}s`,
            exitCodes.unauthenticated,
            { hint: 'run `portcullis login` again and finish signing in in the browser' },
          ),
        ),
      timeoutMs,
    );
  });
  const authorizationUrl = cliAuthorizationUrl(
    options.client.server,
    options.idp,
    { redirectUri, codeChallenge: challenge, state },
    options.protocol,
  );
  const presented = Promise.resolve()
    .then(() => options.present(authorizationUrl, redirectUri))
    .then(() => exchanged);
  try {
    return await Promise.race([exchanged, presented, timedOut]);
  } finally {
    clearTimeout(timer);
    // Let the browser get its page, but not forever.
    await Promise.race([browserAnswered, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    listener.close();
    listener.closeAllConnections();
  }
}
