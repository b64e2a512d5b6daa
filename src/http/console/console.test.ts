/**
 * The web console through real HTTP: a browser sign-in at the demo IdP, pages read and forms sent
 * with the session cookie, and the request → approval → grant → early end path driven by clicks.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConsoleBrowser } from '../../../test-support/console-browser.js';
import { type Harness, startHarness } from '../../../test-support/portcullis-harness.js';
import { eventsOfRequest } from '../../../test-support/requests.js';

let h: Harness;

before(async () => {
  h = await startHarness({
    storage: 'sqlite',
    policyFile: join(import.meta.dirname, '../../../test-support/policies/console.cedar'),
  });
});
after(async () => {
  await h?.close();
});

/** The id of the request a console page's URL names. */
function requestIdOf(location: string | null): string {
  const id = /^\/console\/requests\/([A-Za-z0-9-]+)\?done=created$/.exec(location ?? '')?.[1];
  return id ?? assert.fail(`not a new request's page: ${location}`);
}

describe('signing in to the console', () => {
  test('a page without a session sends the browser to sign in, and back to that page afterwards', async () => {
    const anonymous = await fetch(`${h.url}/console/approvals`, { redirect: 'manual' });
    assert.equal(anonymous.status, 303);
    assert.equal(anonymous.headers.get('location'), '/auth/login?next=%2Fconsole%2Fapprovals');
    const signInPage = await (await fetch(`${h.url}/auth/login?next=%2Fconsole%2Fapprovals`)).text();
    assert.match(signInPage, /href="\/auth\/oidc\/demo\/login\?next=%2Fconsole%2Fapprovals"/);

    const { landing, setCookie } = await ConsoleBrowser.signIn(h, 'bob', { next: '/console/approvals' });
    assert.equal(landing, '/console/approvals');
    assert.match(
      setCookie,
      /^portcullis_session=[A-Za-z0-9._-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/,
    );
    const login = (await h.portcullis.store.auditLog.read(0, 10_000)).findLast(
      (e) => e.type === 'auth.login',
    );
    assert.equal(login?.actor, 'demo:bob');
    assert.equal(login?.data?.client, 'browser');
  });

  test('a sign-in cannot be made to land anywhere but a console page', async () => {
    for (const next of [
      'https://evil.example/',
      '//evil.example/console',
      '/console/../auth',
      '/api/v1/me',
    ]) {
      const start = await fetch(`${h.url}/auth/oidc/demo/login?next=${encodeURIComponent(next)}`, {
        redirect: 'manual',
      });
      assert.equal(start.status, 400, next);
      assert.equal(((await start.json()) as { code: string }).code, 'validation_failed');
      const page = await (await fetch(`${h.url}/auth/login?next=${encodeURIComponent(next)}`)).text();
      assert.doesNotMatch(page, /next=/, `the sign-in page drops ${next}`);
    }
  });

  test('pages are neither cached, framed nor allowed to run scripts', async () => {
    const { browser } = await ConsoleBrowser.signIn(h, 'alice');
    const page = await browser.get('/console');
    assert.equal(page.status, 200);
    assert.match(page.html, /Hello, /);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('referrer-policy'), 'same-origin');
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline/);
    assert.doesNotMatch(page.html, /<script|\son[a-z]+=/i);
    const style = await fetch(`${h.url}/console/style.css`);
    assert.equal(style.status, 200);
    assert.match(style.headers.get('content-type') ?? '', /^text\/css/);
  });
});

describe('asking, approving and ending access in the console', () => {
  test('alice asks, bob approves from his inbox, alice ends her access early', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    const form = await alice.get('/console/requests/new');
    assert.match(form.html, /<option value="demo-api\/operator">/);
    const sent = await alice.post('/console/requests', {
      target: 'demo-api/operator',
      duration: '30m',
      reason: 'rotate the <b>orders</b> cache',
      ticket: 'OPS-1',
    });
    assert.equal(sent.status, 303, sent.html);
    const id = requestIdOf(sent.location);
    const mine = await alice.get(sent.location ?? '');
    assert.match(mine.html, /Your request was sent/);
    assert.match(mine.html, /rotate the &#60;b&#62;orders&#60;\/b&#62; cache/);
    assert.doesNotMatch(mine.html, /action="[^"]*\/approve"/, 'no approve button for the requester');

    const { browser: bob } = await ConsoleBrowser.signIn(h, 'bob');
    const inbox = await bob.get('/console/approvals');
    assert.match(inbox.html, new RegExp(`href="/console/requests/${id}"`));
    await bob.get(`/console/requests/${id}`);
    const approved = await bob.post(`/console/requests/${id}/approve`, { reason: 'ok for OPS-1' });
    assert.equal(approved.status, 303, approved.html);
    assert.equal(approved.location, `/console/requests/${id}?done=approved`);
    const after = await bob.get(approved.location ?? '');
    assert.match(after.html, /state-active/);
    assert.match(after.html, /ok for OPS-1/);

    const request = await h.api(await h.login('alice'), 'GET', `/api/v1/requests/${id}`);
    assert.equal(request.body.state, 'active');
    const grantId = request.body.grant_id as string;
    const grantPage = await alice.get(`/console/grants/${grantId}`);
    assert.match(grantPage.html, /End my access now/);
    assert.match(grantPage.html, new RegExp(`portcullis creds ${grantId}`));
    const ended = await alice.post(`/console/grants/${grantId}/revoke`, { reason: 'done early' });
    assert.equal(ended.status, 303, ended.html);
    assert.equal(
      (await h.api(await h.login('alice'), 'GET', `/api/v1/grants/${grantId}`)).body.status,
      'revoked',
    );

    const types: string[] = (await eventsOfRequest(h.portcullis.store, id)).map((e) => e.type);
    for (const type of ['request.created', 'request.approved', 'grant.activated', 'grant.released'])
      assert.ok(types.includes(type), `${type} in ${types.join(', ')}`);
  });

  test('a refused request shows the form again with why, and what was typed, escaped', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console/requests/new');
    const refused = await alice.post('/console/requests', {
      target: 'demo-api/operator',
      duration: 'forever',
      reason: '"><img src=x>',
    });
    assert.equal(refused.status, 400);
    assert.match(refused.html, /role="alert"/);
    assert.match(refused.html, /Duration must be/);
    assert.match(refused.html, /&#34;&#62;&#60;img src=x&#62;<\/textarea>/);
    assert.match(refused.html, /<option value="demo-api\/operator" selected>/);
    const byPolicy = await alice.post('/console/requests', { target: 'demo-api/operator', duration: '1h' });
    assert.equal(byPolicy.status, 403);
    assert.match(byPolicy.html, /policy/i);
  });

  test('policies see the console as the source of its requests', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console/requests/new');
    const refused = await alice.post('/console/requests', { target: 'demo-api/reader', duration: '1h' });
    assert.equal(refused.status, 403, refused.html);
    assert.match(refused.html, /reader-not-from-console/);
    const viaApi = await h.api(await h.login('alice'), 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 600,
    });
    assert.equal(viaApi.status, 201, JSON.stringify(viaApi.body));
  });

  test('approve buttons follow the policy as it sees the console', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console/requests/new');
    const id = requestIdOf(
      (
        await alice.post('/console/requests', {
          target: 'demo-api/operator',
          duration: '1h',
          reason: 'schema change [cli-only]',
        })
      ).location,
    );
    const { browser: bob } = await ConsoleBrowser.signIn(h, 'bob');
    const page = await bob.get(`/console/requests/${id}`);
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.html, /action="[^"]*\/approve"/);
    const forced = await bob.post(`/console/requests/${id}/approve`, { reason: 'from the browser' });
    assert.equal(forced.status, 403, forced.html);
    const viaApi = await h.api(await h.login('bob'), 'POST', `/api/v1/requests/${id}/approve`, {});
    assert.equal(viaApi.status, 200, JSON.stringify(viaApi.body));
  });

  test('a requester cannot approve their own request, even by sending the form', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console/requests/new');
    const id = requestIdOf(
      (await alice.post('/console/requests', { target: 'demo-api/operator', duration: '1h', reason: 'mine' }))
        .location,
    );
    const forced = await alice.post(`/console/requests/${id}/approve`, { reason: 'me' });
    assert.equal(forced.status, 403);
    assert.match(forced.html, /Nobody may/);
    const state = await h.api(await h.login('alice'), 'GET', `/api/v1/requests/${id}`);
    assert.equal(state.body.state, 'pending');
  });
});

describe('forged forms', () => {
  async function pendingRequest(): Promise<string> {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console/requests/new');
    return requestIdOf(
      (await alice.post('/console/requests', { target: 'demo-api/operator', duration: '1h', reason: 'csrf' }))
        .location,
    );
  }

  test('an approval without the page token, with another session token or from another site is refused', async () => {
    const id = await pendingRequest();
    const { browser: bob } = await ConsoleBrowser.signIn(h, 'bob');
    await bob.get(`/console/requests/${id}`);
    const { browser: carol } = await ConsoleBrowser.signIn(h, 'carol');
    await carol.get('/console');
    const forgeries: [string, Record<string, string | null>, Record<string, string>][] = [
      ['no token', { csrf: null }, {}],
      ['a wrong token', { csrf: 'x'.repeat(43) }, {}],
      ["another session's token", { csrf: carol.csrf }, {}],
      ['another origin', {}, { origin: 'https://evil.example' }],
      ['another site', {}, { 'sec-fetch-site': 'cross-site' }],
      ['another site hiding its origin', {}, { origin: 'null', 'sec-fetch-site': 'cross-site' }],
      ['no token and no origin headers', { csrf: null }, { origin: '', 'sec-fetch-site': '' }],
    ];
    for (const [what, fields, headers] of forgeries) {
      const sent = await bob.post(
        `/console/requests/${id}/approve`,
        { reason: 'forged', ...fields },
        headers,
      );
      assert.equal(sent.status, 403, what);
      assert.match(sent.html, /csrf_rejected/, what);
    }
    const state = await h.api(await h.login('bob'), 'GET', `/api/v1/requests/${id}`);
    assert.equal(state.body.state, 'pending');
    assert.deepEqual(state.body.reviews, []);
  });

  test('a form from a console page is accepted without origin headers, or with a hidden origin', async () => {
    const id = await pendingRequest();
    const { browser: bob } = await ConsoleBrowser.signIn(h, 'bob');
    await bob.get(`/console/requests/${id}`);
    // Older browsers send neither header; a no-referrer privacy setting turns Origin into "null".
    const hidden = await bob.post(`/console/requests/${id}/approve`, { reason: 'x' }, { origin: 'null' });
    assert.equal(hidden.status, 303, hidden.html);
    const id2 = await pendingRequest();
    await bob.get(`/console/requests/${id2}`);
    const denied = await bob.post(
      `/console/requests/${id2}/deny`,
      { reason: 'not now' },
      { origin: '', 'sec-fetch-site': '' },
    );
    assert.equal(denied.status, 303, denied.html);
    assert.equal((await h.api(await h.login('bob'), 'GET', `/api/v1/requests/${id}`)).body.state, 'active');
    assert.equal((await h.api(await h.login('bob'), 'GET', `/api/v1/requests/${id2}`)).body.state, 'denied');
  });
});

describe('sessions and the audit viewer', () => {
  test('signing out ends the session on the server: the old cookie only leads to the sign-in page', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    await alice.get('/console');
    const out = await alice.post('/console/logout');
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /^portcullis_session=; .*Max-Age=0/);
    const replayed = await ConsoleBrowser.withCookie(h.url, alice.cookie).get('/console');
    assert.equal(replayed.status, 303);
    assert.equal(replayed.location, '/auth/login?next=%2Fconsole');
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    assert.ok(events.some((e) => e.type === 'auth.logout' && e.actor === 'demo:alice'));
  });

  test('a made-up cookie is not a session', async () => {
    const page = await ConsoleBrowser.withCookie(h.url, 'portcullis_session=abc.def.ghi').get(
      '/console/grants',
    );
    assert.equal(page.status, 303);
    assert.match(page.headers.get('set-cookie') ?? '', /Max-Age=0/);
  });

  test('the audit log is shown to those the policy lets view it, and the viewing is audited', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    const refused = await alice.get('/console/audit');
    assert.equal(refused.status, 403);
    assert.doesNotMatch((await alice.get('/console')).html, /href="\/console\/audit"/);

    const { browser: dave } = await ConsoleBrowser.signIn(h, 'dave');
    const page = await dave.get('/console/audit');
    assert.equal(page.status, 200, page.html);
    assert.match(page.html, /auth\.login/);
    const viewed = (await h.portcullis.store.auditLog.read(0, 100_000)).findLast(
      (e) => e.type === 'audit.viewed',
    );
    assert.equal(viewed?.actor, 'demo:dave');
    const first = await dave.get('/console/audit?after=0&limit=5');
    assert.match(first.html, /Events 1 to 5 of/);
    assert.match(first.html, /href="\/console\/audit\?after=5"/);
    assert.equal((await dave.get('/console/audit?after=-1')).status, 400);
  });

  test('an unknown page or id is a console page, not a problem document', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    const missing = await alice.get('/console/requests/00000000-0000-0000-0000-000000000000');
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(missing.html, /not_found/);
    const nowhere = await alice.get('/console/nowhere');
    assert.equal(nowhere.status, 404);
    assert.match(nowhere.headers.get('content-type') ?? '', /^text\/html/);
  });
});
