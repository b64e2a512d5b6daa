/**
 * Session reports of `portcullis ssh-guard` over HTTP (POST /ssh/{resource}/session-events): only
 * with one of the resource's bearer secrets, checked before the body; each event only for a grant of
 * that resource with its certificate serial; recorded as the grant's audit events.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Harness } from '../../test-support/portcullis-harness.js';
import { requestHostsGrant, startSshHostsHarness } from '../../test-support/ssh-fixtures.js';

const secret = 'guard-secret-0123456789abcdef-0123456789';
const nextSecret = 'guard-secret-next-0123456789abcdef-01234';

describe('ssh-guard session reports', () => {
  let h: Harness;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-ssh-reports-'));
    writeFileSync(join(dir, 'report-token'), secret);
    writeFileSync(join(dir, 'report-token-next'), nextSecret);
    h = await startSshHostsHarness(dir, {
      session_report_tokens: [{ file: join(dir, 'report-token') }, { file: join(dir, 'report-token-next') }],
    });
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function report(body: unknown, token: string | null = secret, resource = 'hosts') {
    const response = await fetch(`${h.url}/ssh/${resource}/session-events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      body: (await response.json()) as Record<string, unknown>,
    };
  }

  async function grantOfAlice(): Promise<{ grantId: string; serial: string; principal: string }> {
    const { alice, grantId } = await requestHostsGrant(h, 'INC-92 reports');
    const grant = await h.api(alice, 'GET', `/api/v1/grants/${grantId}`);
    const artefacts = grant.body.artefacts as Record<string, string>;
    return { grantId, serial: String(artefacts.serial), principal: String(grant.body.principal) };
  }

  /** The grant's ssh.session_* audit events, read as an admin. */
  async function sessionEventsOf(grantId: string): Promise<Record<string, unknown>[]> {
    const dave = await h.login('dave');
    const events = (await h.api(dave, 'GET', '/api/v1/audit/events?limit=1000')).body.events as Record<
      string,
      unknown
    >[];
    return events.filter((e) => e.grantId === grantId && String(e.type).startsWith('ssh.session_'));
  }

  const started = (grantId: string, serial: string) => ({
    type: 'started',
    grant_id: grantId,
    serial,
    account: 'root',
    pid: 4242,
    at: new Date().toISOString(),
  });

  test('a report is recorded as the grant’s audit events; events of other grants or serials are rejected', async () => {
    const { grantId, serial, principal } = await grantOfAlice();
    const otherSerial = serial === '1' ? '2' : '1';
    const outcome = await report({
      host: 'web-1.prod',
      events: [
        started(grantId, serial),
        {
          ...started(grantId, serial),
          type: 'ended',
          reason: 'revoked',
          connection_open: false,
          processes: 3,
        },
        started(grantId, otherSerial),
        started('no-such-grant', serial),
      ],
    });
    assert.equal(outcome.status, 200, JSON.stringify(outcome.body));
    assert.deepEqual(outcome.body.recorded, 2);
    assert.deepEqual(
      (outcome.body.rejected as { index: number; code: string }[]).map((r) => [r.index, r.code]),
      [
        [2, 'serial_mismatch'],
        [3, 'unknown_grant'],
      ],
    );
    // The next secret of a rotation is as good.
    assert.equal(
      (await report({ host: 'web-2', events: [started(grantId, serial)] }, nextSecret)).status,
      200,
    );

    const mine = await sessionEventsOf(grantId);
    assert.deepEqual(
      mine.map((e) => [e.type, (e.data as Record<string, unknown>).host]),
      [
        ['ssh.session_started', 'web-1.prod'],
        ['ssh.session_ended', 'web-1.prod'],
        ['ssh.session_started', 'web-2'],
      ],
    );
    const ended = mine[1] as Record<string, unknown>;
    assert.equal(ended.actor, principal);
    assert.equal(ended.resourceId, 'hosts');
    assert.equal(ended.reason, 'revoked');
    assert.equal(ended.sourceIp, '127.0.0.1');
    assert.deepEqual(
      {
        ...(ended.data as Record<string, unknown>),
        hostTime: typeof (ended.data as Record<string, unknown>).hostTime,
      },
      {
        reportedBy: 'ssh-guard',
        host: 'web-1.prod',
        account: 'root',
        pid: 4242,
        serial,
        hostTime: 'number',
        connectionOpen: false,
        processes: 3,
      },
    );
  });

  test('an event reported again for the same login (a restarted guard, a retried batch) is recorded once', async () => {
    const { grantId, serial } = await grantOfAlice();
    const login = (pid: number, connectionStart: string, type = 'started') => ({
      ...started(grantId, serial),
      type,
      pid,
      connection_start: connectionStart,
    });
    const first = await report({ host: 'web-1', events: [login(7, '900'), login(7, '900')] });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual([first.body.recorded, first.body.duplicates], [1, 1]);
    const again = await report({
      host: 'web-1',
      // The same login again, its close, another login with a reused pid, the same on another host.
      events: [login(7, '900'), login(7, '900', 'closed'), login(7, '1200'), login(7, '900')],
    });
    assert.deepEqual([again.body.recorded, again.body.duplicates], [2, 2]);
    const elsewhere = await report({ host: 'web-2', events: [login(7, '900')] });
    assert.deepEqual([elsewhere.body.recorded, elsewhere.body.duplicates], [1, 0]);

    const events = await sessionEventsOf(grantId);
    assert.deepEqual(
      events.map((e) => {
        const data = e.data as Record<string, unknown>;
        return [e.type, data.host, data.connectionStart];
      }),
      [
        ['ssh.session_started', 'web-1', '900'],
        ['ssh.session_closed', 'web-1', '900'],
        ['ssh.session_started', 'web-1', '1200'],
        ['ssh.session_started', 'web-2', '900'],
      ],
    );
  });

  test('no secret, a wrong one, a resource that takes no reports: refused before the body is read', async () => {
    const missing = await report({ garbage: true }, null);
    assert.equal(missing.status, 401);
    assert.match(missing.contentType, /application\/problem\+json/);
    assert.equal(missing.body.code, 'unauthenticated');
    const wrong = await report({ garbage: true }, `${secret}x`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.code, 'invalid_token');
    assert.equal((await report({ garbage: true }, secret, 'other-hosts')).status, 404);

    const dave = await h.login('dave');
    const events = (await h.api(dave, 'GET', '/api/v1/audit/events?limit=1000')).body.events as Record<
      string,
      unknown
    >[];
    const refused = events.filter(
      (e) => e.type === 'auth.token_rejected' && (e.data as Record<string, unknown>).client === 'ssh-guard',
    );
    assert.deepEqual(
      refused.map((e) => (e.data as Record<string, unknown>).code),
      ['unauthenticated', 'invalid_token'],
    );
    assert.ok(!JSON.stringify(refused).includes(secret), 'the presented secret is not recorded');
  });

  test('bad reports get 400 validation_failed and record nothing', async () => {
    const { grantId, serial } = await grantOfAlice();
    const cases: unknown[] = [
      { host: 'web-1', events: [] },
      { host: 'web 1', events: [started(grantId, serial)] },
      { host: 'web-1', events: [{ ...started(grantId, serial), serial: '0x10' }] },
      { host: 'web-1', events: [{ ...started(grantId, serial), type: 'ended' }] },
      { host: 'web-1', events: [{ ...started(grantId, serial), extra: 1 }] },
      { host: 'web-1', events: [{ ...started(grantId, serial), connection_start: '12ab' }] },
      { host: 'web-1', events: Array.from({ length: 101 }, () => started(grantId, serial)) },
    ];
    for (const body of cases) {
      const outcome = await report(body);
      assert.equal(outcome.status, 400, JSON.stringify(body).slice(0, 200));
      assert.equal(outcome.body.code, 'validation_failed');
    }
    const events = await sessionEventsOf(grantId);
    assert.equal(events.length, 0);
  });
});
