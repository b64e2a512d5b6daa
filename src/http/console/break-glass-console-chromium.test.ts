/**
 * The break-glass console in a real browser (Debian's Chromium, driven by playwright-core) with a
 * virtual security key (the DevTools WebAuthn authenticator, user verification included): with
 * every identity provider down, one custodian enrols a key, another starts an activation with a
 * TOTP code, the first confirms it with the key, and the initiator takes the credentials and ends
 * the access — all through the page's script, under its Content Security Policy. Skipped without
 * Chromium; with CI=true a missing Chromium is a failure (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import {
  demoDbEmergencyAccount,
  enrolInHarness,
  type TestCustodian,
  webhookChannelConfig,
} from '../../../test-support/break-glass-fixtures.js';
import { chromiumPath, chromiumSkipReason } from '../../../test-support/chromium.js';
import { type Harness, startHarness } from '../../../test-support/portcullis-harness.js';

const account = 'api-emergency';

const skip = chromiumSkipReason();
let h: Harness;
let browser: Browser;
let custodians: Record<string, TestCustodian>;

before(async () => {
  if (skip) return;
  h = await startHarness({
    storage: 'sqlite',
    publicHost: 'localhost',
    configOverrides: {
      break_glass: {
        accounts: [
          demoDbEmergencyAccount(account, ['alice', 'bob', 'carol'], {
            scope: { resource: 'demo-api', roles: ['reader'] },
          }),
        ],
        // Nothing listens there: an alert outage never blocks break-glass.
        alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
      },
    },
  });
  custodians = await enrolInHarness(h, account, ['alice', 'bob', 'carol']);
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await h?.close();
});

/** A fresh profile on the break-glass page, with a virtual security key plugged in. */
async function custodianAt(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const response = await page.goto(`${h.url}/console/break-glass`);
  assert.equal(response?.status(), 200);
  assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'; connect-src 'self'/);
  return { page, problems };
}

async function fillProof(
  page: Page,
  form: string,
  custodian: TestCustodian,
  factor: 'totp' | 'security_key',
) {
  await page.fill(`#${form} input[name=custodian]`, custodian.id);
  await page.fill(`#${form} input[name=passphrase]`, custodian.passphrase);
  await page.check(`#${form} input[name=factor][value=${factor}]`);
  if (factor === 'totp') await page.fill(`#${form} input[name=totp]`, await custodian.code(10_000));
}

describe('the break-glass console in Chromium', { skip }, () => {
  test('enrol a key, start with a code, confirm with the key, take the credentials, end', async () => {
    const alice = custodians.alice as TestCustodian;
    const bob = custodians.bob as TestCustodian;
    await h.idp.stop();

    const { page: bobPage, problems: bobProblems } = await custodianAt();
    await bobPage.fill('#enrol input[name=account]', account);
    await bobPage.fill('#enrol input[name=custodian]', bob.id);
    await bobPage.fill('#enrol input[name=passphrase]', bob.passphrase);
    await bobPage.fill('#enrol input[name=totp]', await bob.code(10_000));
    await bobPage.click('#enrol button[type=submit]');
    await bobPage.waitForSelector('#enrol-result:not([hidden])');
    assert.match((await bobPage.textContent('#enrol-result')) ?? '', /^Security key enrolled \(/);
    assert.equal(await bobPage.inputValue('#enrol input[name=passphrase]'), '', 'secrets are cleared');

    const { page: alicePage, problems: aliceProblems } = await custodianAt();
    // A wrong passphrase: the stable code, and nothing started.
    await alicePage.fill('#initiate input[name=account]', account);
    await fillProof(alicePage, 'initiate', alice, 'totp');
    await alicePage.fill('#initiate input[name=passphrase]', 'not the passphrase');
    await alicePage.fill('#initiate input[name=incident]', 'INC-7');
    await alicePage.fill('#initiate textarea[name=reason]', 'IdP outage, the API needs a restart');
    await alicePage.click('#initiate button[type=submit]');
    await alicePage.waitForSelector('#initiate-result.error');
    assert.match((await alicePage.textContent('#initiate-result')) ?? '', /^break_glass_auth_failed: /);
    assert.equal(await alicePage.isHidden('#activation'), true);

    await alicePage.fill('#initiate input[name=account]', account);
    await fillProof(alicePage, 'initiate', alice, 'totp');
    await alicePage.fill('#initiate input[name=incident]', 'INC-7');
    await alicePage.fill('#initiate textarea[name=reason]', 'IdP outage, the API needs a restart');
    await alicePage.fill('#initiate input[name=duration_minutes]', '20');
    await alicePage.click('#initiate button[type=submit]');
    await alicePage.waitForSelector('#activation:not([hidden])');
    const id = (await alicePage.textContent('#activation-id')) ?? assert.fail('no activation id');
    assert.equal(await alicePage.textContent('#activation-state'), 'awaiting quorum');
    assert.equal(await alicePage.isVisible('#show-credentials'), false);

    // A reload keeps the activation (its handle is in this tab's sessionStorage).
    await alicePage.reload();
    await alicePage.waitForSelector('#activation:not([hidden])');
    assert.equal(await alicePage.textContent('#activation-id'), id);

    await bobPage.fill('#confirm input[name=activation]', id);
    await bobPage.fill('#confirm input[name=account]', account);
    await fillProof(bobPage, 'confirm', bob, 'security_key');
    await bobPage.click('#confirm button[type=submit]');
    await bobPage.waitForSelector('#confirm-result:not([hidden])');
    assert.equal(await bobPage.textContent('#confirm-result'), 'Confirmed. The activation is active.');

    await alicePage.waitForSelector('#activation-state.state-active', { timeout: 10_000 });
    assert.match(
      (await alicePage.textContent('#activation-confirmers')) ?? '',
      /^bob \(2 of 2 custodians\)$/,
    );
    await alicePage.click('#show-credentials');
    await alicePage.waitForSelector('#credentials:not([hidden])');
    const credentials = (await alicePage.textContent('#credentials-text')) ?? '';
    assert.match(credentials, /^reader \(grant [0-9a-f-]+, until .+ UTC\)\n {2}token: ey/);

    alicePage.once('dialog', (dialog) => void dialog.accept());
    await alicePage.click('#end-access');
    await alicePage.waitForSelector('#activation-state.state-ended');
    assert.equal(await alicePage.isHidden('#credentials'), true);

    const activation = await h.portcullis.store.breakGlass.getActivation(id);
    assert.deepEqual([activation?.activation.state, activation?.activation.confirmerIds], ['ended', ['bob']]);
    const events = await h.portcullis.store.auditLog.read(0, 1000);
    const enrolled = events.find((e) => e.type === 'break_glass.enrolled' && e.data?.securityKey);
    assert.equal(enrolled?.data?.custodianId, 'bob', 'the key enrolment is audited');
    assert.ok(events.some((e) => e.type === 'break_glass.confirmed' && e.data?.activationId === id));
    assert.deepEqual(
      [...bobProblems, ...aliceProblems].filter((p) => !/status of 401/.test(p)),
      [],
    );
  });

  test('is not there when no emergency account is configured', async () => {
    const plain = await startHarness({ storage: 'sqlite' });
    try {
      assert.equal((await fetch(`${plain.url}/console/break-glass`)).status, 404);
      assert.equal((await fetch(`${plain.url}/console/break-glass.js`)).status, 404);
    } finally {
      await plain.close();
    }
  });
});
