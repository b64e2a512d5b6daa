/**
 * `notifications.remind_after` in a running server: a request nobody has approved yet is announced
 * once to the approvers' channel, and once more as a reminder when it has waited that long.
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
`;

interface Notified {
  event: string;
  text: string;
  notification: { request_id: string };
}

describe('request reminders in a running server', () => {
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
      configOverrides: {
        notifications: {
          remind_after: '4h',
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
});
