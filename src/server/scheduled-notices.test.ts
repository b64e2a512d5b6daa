/**
 * `notifications.remind_after` and `warn_before_expiry` in a running server: a request nobody has
 * approved yet is announced once to the channel, and once more as a reminder when it has waited
 * that long; an access about to end is announced once, that long before its end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { waitFor } from '../../test-support/wait-for.js';
import { checkSignature } from '../../test-support/webhook-receiver.js';
import { ManualClock } from '../core/clock.js';

const secret = 'reminder-webhook-secret-0123456789abcdef';
const policy = `
@id("operator-needs-sre")
@approvals("1")
@approver_groups("sre")
@max_duration("1h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/operator") when { context.reason != "" };

@id("reader-auto")
@auto_approve("true")
@approvals("0")
@max_duration("1h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/reader");
`;

interface Notified {
  event: string;
  text: string;
  notification: { request_id: string; grant_id: string | null };
}

describe('reminders and expiry warnings in a running server', () => {
  const clock = new ManualClock(Date.now());
  let h: Harness;
  let receiver: Server;
  let dir: string;
  /** Notifications whose signature checked out, as the channel's receiver got them. */
  const received: Notified[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-reminders-'));
    writeFileSync(join(dir, 'policy.cedar'), policy);
    writeFileSync(join(dir, 'hook-secret'), secret);
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks);
        // Channels sign with the system clock, not the server's (here moved by hand).
        const check = checkSignature(secret, request, raw);
        if (check.valid) received.push(JSON.parse(raw.toString('utf8')) as Notified);
        response.writeHead(check.valid ? 200 : 401).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    h = await startHarness({
      storage: 'sqlite',
      clock,
      policyFile: join(dir, 'policy.cedar'),
      // One session outlives the hours the clock is moved by.
      tokenOverrides: { session_ttl: '12h', rotation_overlap: '12h' },
      configOverrides: {
        notifications: {
          remind_after: '4h',
          warn_before_expiry: '10m',
          channels: [
            {
              name: 'approvers',
              type: 'webhook',
              url,
              secret: { file: join(dir, 'hook-secret') },
            },
          ],
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    await new Promise((resolve) => receiver?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a request still pending after 4 h is announced again, once', async () => {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: '30m',
      reason: 'INC-5 restart the consumer',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ours = () => received.filter((n) => n.notification.request_id === created.body.id);
    await waitFor('the new request announced', async () => (ours().length === 1 ? true : undefined), 10_000);

    clock.advance(4 * 3_600_000 + 60_000);
    const reminded = await waitFor(
      'the reminder',
      async () => ours().find((n) => n.event === 'request.reminded'),
      10_000,
    );
    assert.match(
      reminded.text,
      /^Reminder: demo:.* still waits for demo-api\/operator: 0 of 1 approval, lapses at /,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    clock.advance(3_600_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(
      ours().map((n) => n.event),
      ['request.created', 'request.reminded'],
      'reminded once',
    );
  });

  test('the requester hears once, 10 minutes before the end, that the access ends', async () => {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '30m',
      reason: 'read the dashboard',
    });
    assert.equal(created.body.state, 'active', JSON.stringify(created.body));
    const ours = () => received.filter((n) => n.notification.request_id === created.body.id);
    clock.advance(19 * 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.ok(!ours().some((n) => n.event === 'grant.expiring'), 'not 11 minutes before the end');
    clock.advance(60_000 + 1000);
    const warned = await waitFor(
      'the expiry warning',
      async () => ours().find((n) => n.event === 'grant.expiring'),
      10_000,
    );
    assert.equal(warned.notification.grant_id, created.body.grant_id);
    assert.match(warned.text, /^demo:alice's access to demo-api\/reader ends at .*Z: ask again to go on/);
  });
});
