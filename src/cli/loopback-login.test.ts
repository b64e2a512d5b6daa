/**
 * The CLI login protocol end to end against a small real HTTP server that implements the two
 * server endpoints (our own protocol: /auth/oidc/:idp/login and POST /api/v1/auth/cli/token) and,
 * for the scripted login, a page with the demo identity provider's real sign-in markup.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loginPage } from '../identity/demo-login-page.js';
import { ApiClient } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';
import { loopbackLogin } from './loopback-login.js';
import { findDemoLoginForm, scriptedDemoLogin } from './scripted-browser.js';

interface PendingLogin {
  readonly challenge: string;
  readonly redirectUri: string;
  readonly state: string;
}

/** What the test server saw and how it should behave. */
const world = {
  /** Where /auth/oidc/:idp/login sends the browser: straight back with a code, or to the demo-like IdP page. */
  idpPage: 'none' as 'none' | 'demo' | 'foreign',
  rejectExchange: false,
  pending: new Map<string, PendingLogin>(),
  codes: new Map<string, PendingLogin>(),
  passwordsPosted: 0,
  idpsAsked: [] as string[],
};

function problem(response: ServerResponse, status: number, code: string, detail: string) {
  response
    .writeHead(status, { 'content-type': 'application/problem+json' })
    .end(JSON.stringify({ status, code, detail }));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => resolve(body));
  });
}

function finishLogin(response: ServerResponse, login: PendingLogin) {
  const code = randomBytes(16).toString('base64url');
  world.codes.set(code, login);
  const target = new URL(login.redirectUri);
  target.searchParams.set('code', code);
  target.searchParams.set('state', login.state);
  response.writeHead(302, { location: target.toString() }).end();
}

async function handle(request: IncomingMessage, response: ServerResponse) {
  const url = new URL(request.url ?? '/', 'http://test.invalid');
  const login = /^\/auth\/oidc\/([^/]+)\/login$/.exec(url.pathname);
  if (login && request.method === 'GET') {
    world.idpsAsked.push(decodeURIComponent(login[1] ?? ''));
    const q = url.searchParams;
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!/^http:\/\/127\.0\.0\.1:\d+\/callback$/.test(redirectUri))
      return problem(response, 400, 'validation_failed', 'redirect_uri');
    if (
      q.get('code_challenge_method') !== 'S256' ||
      !/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? '')
    ) {
      return problem(response, 400, 'validation_failed', 'code_challenge');
    }
    const pending = { challenge: q.get('code_challenge') ?? '', redirectUri, state: q.get('state') ?? '' };
    if (world.idpPage === 'none') return finishLogin(response, pending);
    world.pending.set('uid1', pending);
    response
      .writeHead(302, { location: '/interaction/uid1', 'set-cookie': 'idp_session=s3cret; Path=/; HttpOnly' })
      .end();
    return;
  }
  if (url.pathname === '/interaction/uid1' && request.method === 'GET') {
    const html =
      world.idpPage === 'demo'
        ? loginPage({ uid: 'uid1', clientId: 'portcullis', demoUsers: [] })
        : '<html><title>Sign in to Okta</title><form method="post" action="/interaction/uid1/login"><input name="username"><input name="password" type="password"></form></html>';
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    return;
  }
  if (url.pathname === '/interaction/uid1/login' && request.method === 'POST') {
    world.passwordsPosted++;
    const form = new URLSearchParams(await readBody(request));
    const pending = world.pending.get('uid1');
    if (request.headers.cookie !== 'idp_session=s3cret' || !pending) {
      response.writeHead(400).end('no session cookie');
      return;
    }
    if (form.get('username') !== 'alice' || form.get('password') !== 'alice-demo-password') {
      response.writeHead(401, { 'content-type': 'text/html' }).end(
        loginPage({
          uid: 'uid1',
          clientId: 'portcullis',
          error: 'Unknown username or wrong password.',
          demoUsers: [],
        }),
      );
      return;
    }
    return finishLogin(response, pending);
  }
  if (url.pathname === '/api/v1/auth/cli/token' && request.method === 'POST') {
    const body = JSON.parse(await readBody(request)) as {
      code: string;
      code_verifier: string;
      redirect_uri: string;
    };
    const pending = world.codes.get(body.code);
    world.codes.delete(body.code);
    const challenge = createHash('sha256').update(body.code_verifier).digest('base64url');
    if (
      world.rejectExchange ||
      !pending ||
      pending.challenge !== challenge ||
      pending.redirectUri !== body.redirect_uri
    ) {
      return problem(response, 400, 'login_failed', 'The code verifier or redirect URI does not match');
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        session_token: 'session.token.value',
        expires_at: '2030-01-01T00:00:00.000Z',
        principal: { id: 'demo:alice', display_name: 'Alice <Example>', groups: ['engineering'] },
      }),
    );
    return;
  }
  problem(response, 404, 'not_found', url.pathname);
}

let server: Server;
let client: ApiClient;

before(async () => {
  server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new ApiClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  world.idpPage = 'none';
  world.rejectExchange = false;
  world.passwordsPosted = 0;
  world.idpsAsked = [];
});

/** A browser that follows redirects and remembers the last page it got. */
async function followRedirects(url: string): Promise<Response> {
  let response = await fetch(url, { redirect: 'manual' });
  for (let i = 0; i < 5 && response.status === 302; i++) {
    response = await fetch(new URL(response.headers.get('location') ?? '', url), { redirect: 'manual' });
  }
  return response;
}

describe('loopback login', () => {
  it('trades the code and PKCE verifier for a session, and tells the browser', async () => {
    let browserPage: Promise<string> | undefined;
    let sentTo = '';
    const session = await loopbackLogin({
      client,
      idp: 'demo idp',
      present: (authorizationUrl, callbackUrl) => {
        sentTo = authorizationUrl;
        assert.match(callbackUrl, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
        browserPage = followRedirects(authorizationUrl).then(async (r) => `${r.status} ${await r.text()}`);
      },
    });
    assert.equal(session.session_token, 'session.token.value');
    assert.equal(session.principal.id, 'demo:alice');
    assert.deepEqual(world.idpsAsked, ['demo idp']);
    const params = new URL(sentTo).searchParams;
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.match(params.get('state') ?? '', /^[A-Za-z0-9_-]{22,}$/);
    const page = await browserPage;
    assert.match(page ?? '', /^200 .*Signed in as Alice &#60;Example&#62;/s, 'HTML-escaped name');
  });

  it("turns away a callback with someone else's state and keeps waiting for the real one", async () => {
    const session = await loopbackLogin({
      client,
      idp: 'demo',
      present: async (authorizationUrl, callbackUrl) => {
        const forged = await fetch(`${callbackUrl}?code=attacker-code&state=not-yours`);
        assert.equal(forged.status, 400);
        const elsewhere = await fetch(callbackUrl.replace('/callback', '/other'));
        assert.equal(elsewhere.status, 404);
        await followRedirects(authorizationUrl);
      },
    });
    assert.equal(session.session_token, 'session.token.value');
  });

  it('fails with exit 3 when the server refuses the exchange', async () => {
    world.rejectExchange = true;
    let browser: Promise<Response> | undefined;
    await assert.rejects(
      loopbackLogin({
        client,
        idp: 'demo',
        present: (authorizationUrl) => {
          browser = followRedirects(authorizationUrl);
        },
      }),
      { code: 'login_failed', exitCode: exitCodes.unauthenticated },
    );
    const page = await browser;
    assert.equal(page?.status, 400);
    assert.match((await page?.text()) ?? '', /Sign-in failed/);
  });

  it('reports an error the identity provider sent back', async () => {
    await assert.rejects(
      loopbackLogin({
        client,
        idp: 'demo',
        present: async (authorizationUrl, callbackUrl) => {
          const state = new URL(authorizationUrl).searchParams.get('state') ?? '';
          await fetch(`${callbackUrl}?error=access_denied&error_description=cancelled&state=${state}`);
        },
      }),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.exitCode, exitCodes.unauthenticated);
        assert.match(error.message, /access_denied \(cancelled\)/);
        return true;
      },
    );
  });

  it('gives up after the timeout', async () => {
    await assert.rejects(loopbackLogin({ client, idp: 'demo', present: () => {}, timeoutMs: 200 }), {
      code: 'login_timeout',
      exitCode: exitCodes.unauthenticated,
    });
  });
});

describe('scripted demo login', () => {
  const present = (username: string, password: string) => (authorizationUrl: string, callbackUrl: string) =>
    scriptedDemoLogin({ authorizationUrl, callbackUrl, credentials: { username, password } });

  it("recognises the demo identity provider's real sign-in page", () => {
    const form = findDemoLoginForm(loginPage({ uid: 'abc', clientId: 'c', demoUsers: [] }));
    assert.equal(form?.action, '/interaction/abc/login');
  });

  it('signs in at the demo IdP with cookies kept, headlessly', async () => {
    world.idpPage = 'demo';
    const session = await loopbackLogin({
      client,
      idp: 'demo',
      present: present('alice', 'alice-demo-password'),
    });
    assert.equal(session.principal.id, 'demo:alice');
    assert.equal(world.passwordsPosted, 1);
  });

  it('says the credentials were rejected (exit 3)', async () => {
    world.idpPage = 'demo';
    await assert.rejects(
      loopbackLogin({ client, idp: 'demo', present: present('alice', 'wrong') }),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.code, 'login_failed');
        assert.equal(error.exitCode, exitCodes.unauthenticated);
        assert.match(error.message, /rejected the username or password for "alice"/);
        return true;
      },
    );
  });

  it("never posts a password to a page that is not the demo IdP's form", async () => {
    world.idpPage = 'foreign';
    await assert.rejects(
      loopbackLogin({ client, idp: 'corp', present: present('alice', 'alice-demo-password') }),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.code, 'scripted_login_unsupported');
        assert.equal(error.exitCode, exitCodes.usage);
        assert.match(error.message, /works only with the built-in demo identity provider/);
        assert.match(error.hint ?? '', /without --username/);
        return true;
      },
    );
    assert.equal(world.passwordsPosted, 0);
  });

  it("passes the server's problem through (unknown identity provider)", async () => {
    const failing = new ApiClient({ server: client.server });
    await assert.rejects(
      scriptedDemoLogin({
        authorizationUrl: `${failing.server}/auth/oidc/x/nowhere`,
        callbackUrl: 'http://127.0.0.1:1/callback',
        credentials: { username: 'a', password: 'b' },
      }),
      { code: 'not_found', exitCode: exitCodes.notFound },
    );
  });
});
