import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, describe, it } from 'node:test';
import { sampleAlert } from '../../../test-support/break-glass-alert.js';
import { freePort } from '../../../test-support/free-port.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../../test-support/webhook-receiver.js';
import { signWebhookPayload, verifyWebhookSignature } from '../../webhooks/signed-webhook.js';
import { WebhookAlertChannel } from './webhook-channel.js';

const secret = 'whsec-3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e';
const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const receiver of receivers) await receiver.close();
});

async function receiver(options: Omit<Parameters<typeof startWebhookReceiver>[0], 'secret'> = {}) {
  const started = await startWebhookReceiver({ secret, ...options });
  receivers.push(started);
  return started;
}

/** Sends a captured request again, byte for byte (what an eavesdropper would replay). */
function resend(url: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('WebhookAlertChannel', () => {
  it('POSTs the alert as JSON, signed over timestamp and body as documented', async () => {
    const hook = await receiver();
    const alert = sampleAlert();
    const channel = new WebhookAlertChannel({
      name: 'soc',
      url: `${hook.url}/hooks/bg`,
      secret,
      timeoutMs: 2000,
    });
    await channel.send(alert);

    assert.equal(hook.received.length, 1);
    const got = hook.received[0];
    assert.ok(got?.accepted, got?.refusal);
    assert.equal(got.path, '/hooks/bg');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['portcullis-alert-id'], alert.id);
    // The documented recipe, computed here independently of the library code.
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(got.headers['portcullis-signature']));
    assert.ok(match, 'signature header shape');
    const expected = createHmac('sha256', secret).update(`${match[1]}.${got.rawBody}`).digest('hex');
    assert.equal(match[2], expected);
    assert.ok(Math.abs(Number(match[1]) - Date.now() / 1000) < 5);

    const body = JSON.parse(got.rawBody);
    assert.equal(body.id, alert.id);
    assert.equal(body.event, 'break_glass.activated');
    assert.equal(body.text, alert.summary);
    assert.deepEqual(body.alert, {
      id: alert.id,
      kind: 'activated',
      account_id: 'prod-db-emergency',
      activation_id: 'act_01HZX3',
      drill: false,
      custodians: ['alice', 'bob'],
      reason: alert.reason,
      incident: 'INC-4242',
      at: '2026-11-23T13:20:00.000Z',
      summary: alert.summary,
    });
    assert.ok(!JSON.stringify(got.headers).includes(secret) && !got.rawBody.includes(secret));
  });

  it('a drill is marked in the Slack text', async () => {
    const hook = await receiver();
    const channel = new WebhookAlertChannel({ name: 'soc', url: hook.url, secret, timeoutMs: 2000 });
    await channel.send(sampleAlert({ drill: true, kind: 'drill_completed' }));
    const [body] = hook.accepted() as { text: string; alert: { drill: boolean } }[];
    assert.match(body?.text ?? '', /^\[DRILL\] /);
    assert.equal(body?.alert.drill, true);
  });

  it('a receiver refuses a replay, a stale timestamp, a tampered body and a wrong secret', async () => {
    const hook = await receiver();
    const alert = sampleAlert();
    await new WebhookAlertChannel({ name: 'soc', url: hook.url, secret, timeoutMs: 2000 }).send(alert);
    const first = hook.received[0];
    assert.ok(first?.accepted);
    const headers = {
      'content-type': 'application/json',
      'portcullis-alert-id': alert.id,
      'portcullis-signature': String(first.headers['portcullis-signature']),
    };
    // Byte-for-byte replay inside the window: the id was seen.
    assert.equal(await resend(hook.url, headers, first.rawBody), 409);
    // Same signature, body altered.
    assert.equal(await resend(hook.url, headers, first.rawBody.replace('INC-4242', 'INC-0000')), 401);
    assert.equal(hook.received.at(-1)?.refusal, 'mismatch');

    // Signed ten minutes ago (a captured request replayed later, or a sender clock far off).
    const old = new WebhookAlertChannel({
      name: 'soc',
      url: hook.url,
      secret,
      timeoutMs: 2000,
      now: () => Date.now() - 600_000,
    });
    await assert.rejects(old.send(sampleAlert()), /webhook soc: HTTP 401/);
    assert.equal(hook.received.at(-1)?.refusal, 'stale');

    const wrong = new WebhookAlertChannel({
      name: 'soc',
      url: hook.url,
      secret: `${secret}x`,
      timeoutMs: 2000,
    });
    await assert.rejects(wrong.send(sampleAlert()), /HTTP 401/);
    assert.equal(hook.received.at(-1)?.refusal, 'mismatch');
    assert.equal(hook.accepted().length, 1);
  });

  it('does not follow redirects', async () => {
    const hook = await receiver({ respond: (_n, req) => (req.url === '/moved' ? 302 : undefined) });
    const channel = new WebhookAlertChannel({
      name: 'soc',
      url: `${hook.url}/moved`,
      secret,
      timeoutMs: 2000,
    });
    await assert.rejects(channel.send(sampleAlert()), /HTTP 302/);
    assert.equal(hook.received.length, 1);
  });

  it('gives up on a receiver that never answers after the timeout', async () => {
    const hook = await receiver({ respond: () => 'hang' });
    const channel = new WebhookAlertChannel({ name: 'soc', url: hook.url, secret, timeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(channel.send(sampleAlert()), /webhook soc: timed out after 300 ms/);
    assert.ok(Date.now() - started < 2000);
  });

  it('a refused connection names the channel, never the URL (which may hold a token)', async () => {
    const port = await freePort();
    const channel = new WebhookAlertChannel({
      name: 'slack',
      url: `http://127.0.0.1:${port}/services/T000/B000/tok3n-in-path`,
      secret,
      timeoutMs: 2000,
    });
    const error = await channel.send(sampleAlert()).then(
      () => assert.fail('delivered to nobody'),
      (e: Error) => e,
    );
    assert.match(error.message, /^webhook slack: connection failed: ECONNREFUSED$/);
  });
});

describe('verifyWebhookSignature', () => {
  const body = '{"id":"a"}';
  const now = 1_800_000_000;

  it('accepts a fresh signature, also among several v1 values (secret rotation)', () => {
    const header = signWebhookPayload(secret, now - 10, body);
    assert.deepEqual(verifyWebhookSignature({ secret, header, body, nowSeconds: now }), {
      valid: true,
      timestamp: now - 10,
    });
    const other = signWebhookPayload('another-secret-another-secret-xx', now, body).split(',')[1];
    const rotated = `${header},${other}`;
    assert.equal(verifyWebhookSignature({ secret, header: rotated, body, nowSeconds: now }).valid, true);
  });

  it('refuses malformed headers, stale or future timestamps and mismatches', () => {
    const cases: [string | undefined, number, string][] = [
      [undefined, now, 'malformed'],
      ['v1=abc', now, 'malformed'],
      [`t=${now}`, now, 'malformed'],
      [`t=abc,${signWebhookPayload(secret, now, body).split(',')[1]}`, now, 'malformed'],
      [signWebhookPayload(secret, now - 301, body), now, 'stale'],
      [signWebhookPayload(secret, now + 301, body), now, 'stale'],
      [signWebhookPayload(secret, now, `${body} `), now, 'mismatch'],
      [signWebhookPayload(secret, now, body).replace(`t=${now}`, `t=${now - 1}`), now, 'mismatch'],
    ];
    for (const [header, nowSeconds, reason] of cases) {
      assert.deepEqual(
        verifyWebhookSignature({ secret, header, body, nowSeconds }),
        { valid: false, reason },
        header,
      );
    }
  });
});
