import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { sampleAlert } from '../../../test-support/break-glass-alert.js';
import { freePort } from '../../../test-support/free-port.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../../test-support/webhook-receiver.js';
import type { AlertChannel, AlertDeliveryReport } from '../ports.js';
import { backoffDelayMs, RetryingAlertDispatcher } from './dispatcher.js';
import { WebhookAlertChannel } from './webhook-channel.js';

const secret = 'dispatcher-test-secret-0123456789abcdef';
const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const receiver of receivers) await receiver.close();
});

async function receiver(options: Omit<Parameters<typeof startWebhookReceiver>[0], 'secret'> = {}) {
  const started = await startWebhookReceiver({ secret, ...options });
  receivers.push(started);
  return started;
}

function webhook(name: string, url: string, timeoutMs = 1000): WebhookAlertChannel {
  return new WebhookAlertChannel({ name, url, secret, timeoutMs });
}

const strip = (r: AlertDeliveryReport) => ({
  channel: r.channel,
  attempt: r.attempt,
  delivered: r.delivered,
  final: r.final,
  ...(r.error !== undefined ? { error: r.error } : {}),
});

describe('backoffDelayMs', () => {
  it('doubles from the base, caps, and jitters within [d/2, d]', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 1000, 5000, () => 0)),
      [500, 1000, 2000, 2500, 2500],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 1000, 5000, () => 0.999999)),
      [1000, 2000, 4000, 5000, 5000],
    );
  });
});

describe('RetryingAlertDispatcher', () => {
  it('retries a channel that refuses twice, then delivers; the caller is never held up', async () => {
    // A real receiver that answers 503 to the first two requests (an outage), then verifies.
    const flaky = await receiver({ respond: (n) => (n <= 2 ? 503 : undefined) });
    const steady = await receiver();
    const reports: AlertDeliveryReport[] = [];
    const dispatcher = new RetryingAlertDispatcher({
      channels: [webhook('flaky', flaky.url), webhook('steady', steady.url)],
      onReport: (report) => {
        reports.push(report);
      },
      baseDelayMs: 20,
      maxDelayMs: 100,
      maxAttempts: 5,
    });
    const alert = sampleAlert();
    const started = performance.now();
    dispatcher.dispatch(alert);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 20, `dispatch returned after ${elapsed} ms`);
    assert.equal(reports.length, 0, 'no attempt ran inside dispatch()');

    await dispatcher.settle();
    const flakyReports = reports.filter((r) => r.channel === 'flaky');
    assert.deepEqual(flakyReports.map(strip), [
      { channel: 'flaky', attempt: 1, delivered: false, final: false, error: 'webhook flaky: HTTP 503' },
      { channel: 'flaky', attempt: 2, delivered: false, final: false, error: 'webhook flaky: HTTP 503' },
      { channel: 'flaky', attempt: 3, delivered: true, final: false },
    ]);
    assert.deepEqual(reports.filter((r) => r.channel === 'steady').map(strip), [
      { channel: 'steady', attempt: 1, delivered: true, final: false },
    ]);
    assert.ok(reports.every((r) => r.alertId === alert.id));
    // Every attempt carried the same alert id, so the receiver could deduplicate.
    assert.equal(flaky.received.length, 3);
    assert.ok(flaky.received.every((r) => r.headers['portcullis-alert-id'] === alert.id));
    assert.equal(flaky.accepted().length, 1);
  });

  it('gives up on a dead channel after maxAttempts with a final report, backing off in between', async () => {
    const deadPort = await freePort();
    const reports: (AlertDeliveryReport & { at: number })[] = [];
    const dispatcher = new RetryingAlertDispatcher({
      channels: [webhook('dead', `http://127.0.0.1:${deadPort}/`)],
      onReport: (report) => {
        reports.push({ ...report, at: performance.now() });
      },
      baseDelayMs: 40,
      maxDelayMs: 1000,
      maxAttempts: 4,
      random: () => 0,
    });
    dispatcher.dispatch(sampleAlert());
    await dispatcher.settle();
    assert.deepEqual(
      reports.map(strip),
      [1, 2, 3, 4].map((attempt) => ({
        channel: 'dead',
        attempt,
        delivered: false,
        final: attempt === 4,
        error: 'webhook dead: connection failed: ECONNREFUSED',
      })),
    );
    // Waits of 20, 40 and 80 ms (random() = 0 takes the lower half of 40 · 2^(n-1)).
    const gaps = reports.slice(1).map((r, i) => r.at - (reports[i]?.at ?? 0));
    [20, 40, 80].forEach((minimum, i) => {
      assert.ok((gaps[i] ?? 0) >= minimum - 2, `gap ${i + 1} was ${gaps[i]} ms, expected ≥ ${minimum}`);
    });
  });

  it('never throws to the caller: a throwing channel, a throwing report callback, a hung channel', async () => {
    const hung = await receiver({ respond: () => 'hang' });
    const reports: AlertDeliveryReport[] = [];
    const reportErrors: unknown[] = [];
    const throwing: AlertChannel = {
      name: 'broken',
      kind: 'custom',
      send: () => {
        throw new Error('synchronous failure');
      },
    };
    const dispatcher = new RetryingAlertDispatcher({
      channels: [throwing, webhook('hung', hung.url, 60_000)],
      onReport: async (report) => {
        reports.push(report);
        throw new Error('audit log down');
      },
      onReportError: (error) => reportErrors.push(error),
      maxAttempts: 2,
      baseDelayMs: 10,
      attemptTimeoutMs: 200,
    });
    assert.doesNotThrow(() => dispatcher.dispatch(sampleAlert()));
    await dispatcher.settle();
    assert.deepEqual(
      reports.filter((r) => r.channel === 'broken').map((r) => [r.attempt, r.error, r.final]),
      [
        [1, 'synchronous failure', false],
        [2, 'synchronous failure', true],
      ],
    );
    assert.deepEqual(
      reports.filter((r) => r.channel === 'hung').map((r) => [r.attempt, r.error, r.final]),
      [
        [1, 'webhook hung: no answer within 200 ms', false],
        [2, 'webhook hung: no answer within 200 ms', true],
      ],
    );
    assert.equal(reportErrors.length, 4);
  });

  it('close() stops the retries and reports the deliveries given up', async () => {
    const deadPort = await freePort();
    const reports: AlertDeliveryReport[] = [];
    const dispatcher = new RetryingAlertDispatcher({
      channels: [webhook('dead', `http://127.0.0.1:${deadPort}/`)],
      onReport: (report) => {
        reports.push(report);
      },
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      maxAttempts: 10,
    });
    dispatcher.dispatch(sampleAlert());
    while (reports.length === 0) await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await dispatcher.close();
    assert.ok(performance.now() - started < 1000, 'close did not wait for the 60 s backoff');
    assert.deepEqual(reports.map(strip), [
      {
        channel: 'dead',
        attempt: 1,
        delivered: false,
        final: false,
        error: 'webhook dead: connection failed: ECONNREFUSED',
      },
      {
        channel: 'dead',
        attempt: 1,
        delivered: false,
        final: true,
        error: 'dispatcher closed after 1 attempt(s)',
      },
    ]);
    dispatcher.dispatch(sampleAlert());
    await dispatcher.settle();
    assert.equal(reports.at(-1)?.attempt, 0);
    assert.equal(reports.at(-1)?.final, true);
  });
});
