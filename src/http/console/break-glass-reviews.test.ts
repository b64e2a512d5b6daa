/**
 * The reviewers' break-glass page of the console, over HTTP with the real sign-in: an ended
 * activation shows as a review owed; a custodian who took part cannot review it; an administrator
 * records the review with the page's form (CSRF-checked), and it is audited.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { confirmActivation, initiateActivation } from '../../../test-support/break-glass-activation.js';
import {
  demoDbEmergencyAccount,
  enrolInHarness,
  type TestCustodian,
  webhookChannelConfig,
} from '../../../test-support/break-glass-fixtures.js';
import { ConsoleBrowser } from '../../../test-support/console-browser.js';
import { type Harness, startHarness } from '../../../test-support/portcullis-harness.js';

const account = 'api-emergency';

describe('break-glass reviews in the console', () => {
  let h: Harness;
  let activationId: string;

  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      configOverrides: {
        break_glass: {
          accounts: [
            demoDbEmergencyAccount(account, ['alice', { id: 'bob', principal: 'demo:bob' }, 'carol'], {
              scope: { resource: 'demo-api', roles: ['reader'] },
            }),
          ],
          reviewer_groups: ['sre'],
          alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
        },
      },
    });
    const custodians = await enrolInHarness(h, account, ['alice', 'bob', 'carol']);
    const started = await initiateActivation(h, account, custodians.alice as TestCustodian, {
      reason: 'IdP outage',
      incident: 'INC-9',
      duration_minutes: 10,
    });
    activationId = started.id;
    assert.equal(await confirmActivation(h, activationId, custodians.bob as TestCustodian), 'active');
    const ended = await h.api(
      null,
      'POST',
      `/api/v1/break-glass/activations/${activationId}/end`,
      undefined,
      {
        'x-break-glass-handle': started.handle,
      },
    );
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
  });
  after(() => h?.close());

  test('shows the review owed; a participant is refused, an administrator records it', async () => {
    const { browser: alice } = await ConsoleBrowser.signIn(h, 'alice');
    const home = await alice.get('/console');
    assert.doesNotMatch(home.html, /href="\/console\/break-glass\/reviews"/, 'no link for a requester');
    assert.equal((await alice.get('/console/break-glass/reviews')).status, 403);

    // bob reviews (sre) but confirmed this activation himself.
    const { browser: bob } = await ConsoleBrowser.signIn(h, 'bob');
    const bobs = await bob.get('/console/break-glass/reviews');
    assert.equal(bobs.status, 200);
    assert.match(bobs.html, /href="\/console\/break-glass\/reviews"/);
    assert.ok(bobs.html.includes(activationId));
    assert.match(bobs.html, /Reviews owed/);
    const refused = await bob.post(`/console/break-glass/activations/${activationId}/review`, {
      notes: 'looks fine to me',
    });
    assert.ok(refused.status >= 400 && refused.status < 500, String(refused.status));
    assert.match(refused.html, /class="notice error"/);

    const { browser: dave } = await ConsoleBrowser.signIn(h, 'dave');
    await dave.get('/console/break-glass/reviews');
    const forged = await dave.post(
      `/console/break-glass/activations/${activationId}/review`,
      { notes: 'x' },
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(forged.status, 403, 'a cross-site form is refused');
    const recorded = await dave.post(`/console/break-glass/activations/${activationId}/review`, {
      notes: 'IdP outage confirmed by the vendor; access used for the restart only',
    });
    assert.equal(recorded.status, 303, recorded.html.slice(0, 300));
    assert.equal(recorded.location, '/console/break-glass/reviews?done=reviewed');
    const after = await dave.get('/console/break-glass/reviews?done=reviewed');
    assert.match(after.html, /The review was recorded\./);
    assert.match(after.html, /None: every ended activation has its review\./);

    const events = await h.portcullis.store.auditLog.read(0, 1000);
    const reviewed = events.filter((e) => e.type === 'break_glass.reviewed');
    assert.equal(reviewed.length, 1);
    assert.equal(reviewed[0]?.actor, 'demo:dave');
  });
});
