/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core): the sign-in at
 * the demo IdP's pages, the cookies, the Content Security Policy and the forms as a browser really
 * sends them (its own Origin, Sec-Fetch-Site and Referrer-Policy behaviour, which a fetch-based
 * test chooses for itself). Skipped without Chromium; with CI=true a missing Chromium is a failure
 * (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { chromiumPath, chromiumSkipReason } from '../../../test-support/chromium.js';
import { type Harness, startHarness } from '../../../test-support/portcullis-harness.js';

const skip = chromiumSkipReason();
let h: Harness;
let browser: Browser;

before(async () => {
  if (skip) return;
  h = await startHarness({
    storage: 'sqlite',
    policyFile: join(import.meta.dirname, '../../../test-support/policies/console.cedar'),
  });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await h?.close();
});

/** A fresh browser profile that opens `path` and signs in at the demo IdP's own pages. */
async function signedIn(username: string, path: string): Promise<{ page: Page; problems: string[] }> {
  const user = h.idp.users.find((u) => u.username === username) ?? assert.fail();
  const context = await browser.newContext();
  const page = await context.newPage();
  // A stylesheet or form the CSP blocks shows up only as a console message.
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(`${h.url}${path}`);
  assert.equal(new URL(page.url()).pathname, '/auth/login');
  await page.click('text=Demo');
  await page.fill('#username', username);
  await page.fill('#password', user.password);
  await Promise.all([page.waitForURL(`${h.url}${path}`), page.click('button[type=submit]')]);
  return { page, problems };
}

describe('the console in Chromium', { skip }, () => {
  test('sign in, ask, approve in another browser, end the access; styled, and nothing blocked', async () => {
    const { page: alice, problems } = await signedIn('alice', '/console/requests/new');
    const cookies = await alice.context().cookies(h.url);
    const session = cookies.find((c) => c.name === 'portcullis_session') ?? assert.fail('no session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    // The stylesheet loaded under the CSP: the header is laid out as a flex row.
    assert.equal(
      await alice.locator('header').evaluate((e) => e.ownerDocument.defaultView?.getComputedStyle(e).display),
      'flex',
    );

    await alice.selectOption('select[name=target]', 'demo-api/operator');
    await alice.fill('input[name=duration]', '45m');
    await alice.fill('textarea[name=reason]', 'rotate the <orders> keys');
    await alice.click('text=Ask for access');
    await alice.waitForURL(/\/console\/requests\/[0-9a-f-]+\?done=created$/);
    assert.match((await alice.textContent('main')) ?? '', /rotate the <orders> keys/);
    const requestPath = new URL(alice.url()).pathname;

    const { page: bob } = await signedIn('bob', '/console/approvals');
    await bob.click(`a[href="${requestPath}"]`);
    await bob.fill('form[action$="/approve"] input[name=reason]', 'fine');
    await bob.click('text=Approve');
    await bob.waitForURL(/\?done=approved$/);
    assert.match((await bob.textContent('.state')) ?? '', /active/);

    await alice.goto(`${h.url}/console`);
    await alice.click('text=demo-api / operator');
    await alice.fill('form[action$="/revoke"] input[name=reason]', 'done');
    await alice.click('text=End my access now');
    await alice.waitForURL(/\?done=ended$/);
    assert.match((await alice.textContent('.state')) ?? '', /revoked/);

    await alice.click('text=Sign out');
    await alice.waitForURL(/\/auth\/login$/);
    await alice.goto(`${h.url}/console`);
    assert.equal(new URL(alice.url()).pathname, '/auth/login', 'signed out');
    assert.deepEqual(problems, []);
  });
});
