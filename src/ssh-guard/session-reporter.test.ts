/**
 * The guard's session reports on their way to Portcullis, with a scripted server: batches of at
 * most 100, kept and retried with a growing pause while the server cannot take them, dropped only
 * when it refuses them as malformed, a bounded queue, and never an event of a certificate that is
 * not a grant's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionReporter } from './session-reporter.js';
import type { GuardSessionEvent } from './ssh-session-guard.js';

const event = (n: number, keyId = `portcullis grant g-${n} for demo:alice`): GuardSessionEvent => ({
  type: 'started',
  keyId,
  serial: BigInt(1000 + n),
  account: 'ops',
  pid: 100 + n,
  connectionStart: String(5000 + n),
  at: Date.parse('2026-11-25T10:00:00Z'),
});

type Answer = { status: number; body?: unknown } | 'network-error';

function scripted(answers: Answer[], options: { maxQueued?: number } = {}) {
  let now = 0;
  const sent: { host: string; events: Record<string, unknown>[] }[] = [];
  const headers: Record<string, string>[] = [];
  const log: string[] = [];
  const reporter = new SessionReporter({
    url: 'https://access.example.com/ssh/hosts/session-events',
    token: 'secret-0123456789abcdef-0123456789abcdef',
    host: 'web-1',
    fetch: (async (_url: string, init: RequestInit) => {
      sent.push(JSON.parse(String(init.body)));
      headers.push(init.headers as Record<string, string>);
      const answer = answers.shift() ?? { status: 200, body: { recorded: 0, rejected: [] } };
      if (answer === 'network-error') throw new TypeError('fetch failed');
      return new Response(JSON.stringify(answer.body ?? {}), { status: answer.status });
    }) as typeof fetch,
    now: () => now,
    log: {
      info: (_f, m) => log.push(m),
      warn: (_f, m) => log.push(m),
      error: (_f, m) => log.push(m),
    },
    ...options,
  });
  const send = async () => {
    reporter.sendInBackground();
    await reporter.settled();
  };
  return { reporter, sent, headers, log, send, advance: (ms: number) => (now += ms) };
}

describe('SessionReporter', () => {
  test('sends in batches of 100 with the bearer secret; only events of grants', async () => {
    const s = scripted([]);
    for (let n = 0; n < 150; n++) s.reporter.add(event(n));
    s.reporter.add(event(999, 'short-lived'));
    await s.send();
    assert.deepEqual(
      s.sent.map((b) => b.events.length),
      [100, 50],
    );
    assert.equal(s.headers[0]?.authorization, 'Bearer secret-0123456789abcdef-0123456789abcdef');
    assert.deepEqual(s.sent[0]?.events[0], {
      type: 'started',
      grant_id: 'g-0',
      serial: '1000',
      account: 'ops',
      pid: 100,
      connection_start: '5000',
      at: '2026-11-25T10:00:00.000Z',
    });
    assert.equal(s.sent[0]?.host, 'web-1');
    assert.equal(s.reporter.queued, 0);
  });

  test('kept while the server cannot take them, retried after a growing pause', async () => {
    const s = scripted(['network-error', { status: 503, body: { code: 'audit_unavailable' } }]);
    s.reporter.add(event(1));
    await s.send();
    assert.equal(s.reporter.queued, 1);
    await s.send();
    assert.equal(s.sent.length, 1, 'not again before the pause (1 s) is over');
    s.advance(1000);
    await s.send();
    assert.equal(s.sent.length, 2);
    assert.equal(s.reporter.queued, 1, 'a 503 keeps it too');
    s.advance(1000);
    await s.send();
    assert.equal(s.sent.length, 2, 'the second pause is 2 s');
    s.advance(1000);
    await s.send();
    assert.equal(s.sent.length, 3);
    assert.equal(s.reporter.queued, 0);
  });

  test('a 401 keeps them; a 400 drops the batch; rejected events are logged', async () => {
    const s = scripted([
      { status: 401, body: { code: 'invalid_token' } },
      { status: 400, body: { code: 'validation_failed', detail: 'bad' } },
      { status: 200, body: { recorded: 0, rejected: [{ index: 0, code: 'serial_mismatch', detail: 'x' }] } },
    ]);
    s.reporter.add(event(1));
    await s.send();
    assert.equal(s.reporter.queued, 1);
    assert.ok(s.log.some((m) => m.includes('does not take session reports with this secret')));
    s.advance(1000);
    await s.send();
    assert.equal(s.reporter.queued, 0);
    assert.ok(s.log.some((m) => m.includes('refused a batch of session reports as malformed')));
    s.reporter.add(event(2));
    await s.send();
    assert.ok(s.log.includes('ssh-guard: Portcullis rejected a session report'));
  });

  test('a full queue drops the oldest and says so', async () => {
    const s = scripted([], { maxQueued: 3 });
    for (let n = 0; n < 5; n++) s.reporter.add(event(n));
    assert.equal(s.reporter.queued, 3);
    await s.send();
    assert.deepEqual(
      s.sent[0]?.events.map((e) => e.grant_id),
      ['g-2', 'g-3', 'g-4'],
    );
    assert.ok(s.log.some((m) => m.includes('the oldest session events were dropped')));
  });
});
