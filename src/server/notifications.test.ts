/**
 * Request notifications end to end, on PostgreSQL storage: people sign in through the real OIDC
 * IdP, a request and its approval go through the HTTP API, and the relay delivers to a real SMTP
 * server (STARTTLS, certificate checked) and a signed webhook receiver. A channel that is down is
 * retried and then given up with a `notification.failed` audit event.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
import { createSelfSignedCertificate } from '../../test-support/self-signed-certificate.js';
import { verifyWebhookSignature } from '../webhooks/signed-webhook.js';

const webhookSecret = 'notify-webhook-secret-0123456789abcdef';

interface Mail {
  readonly to: readonly string[];
  readonly raw: string;
  readonly secure: boolean;
}

interface Hook {
  readonly id: string;
  readonly body: Record<string, unknown>;
  readonly signatureValid: boolean;
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  waitMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('request notifications', () => {
  let h: Harness;
  let skip: string | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-notify-'));
  const mails: Mail[] = [];
  const hooks: Hook[] = [];
  let smtp: SMTPServer;
  let receiver: Server;
  let deadPort = 0;

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    const certificate = createSelfSignedCertificate(dir);
    smtp = new SMTPServer({
      key: certificate.key,
      cert: certificate.cert,
      logger: false,
      authOptional: true,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          mails.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            secure: session.secure,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks);
        const check = verifyWebhookSignature({
          secret: webhookSecret,
          header: request.headers['portcullis-signature'] as string | undefined,
          body: raw,
          nowSeconds: Math.floor(Date.now() / 1000),
        });
        hooks.push({
          id: String(request.headers['portcullis-notification-id']),
          body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
          signatureValid: check.valid,
        });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    // A port nobody listens on: the channel that is down.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const secretFile = join(dir, 'webhook-secret');
    writeFileSync(secretFile, webhookSecret, { mode: 0o600 });
    h = await startHarness({
      storage: 'postgres',
      policyFile: join(import.meta.dirname, '../../test-support/policies/review.cedar'),
      configOverrides: {
        notifications: {
          max_attempts: 2,
          channels: [
            {
              name: 'people',
              type: 'smtp',
              host: 'localhost',
              port: (smtp.server.address() as AddressInfo).port,
              starttls: true,
              ca_file: certificate.certFile,
              from: 'portcullis@example.com',
              recipients: ['approvers', 'requester'],
              timeout: '5s',
            },
            {
              name: 'access-feed',
              type: 'webhook',
              url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/access`,
              secret: { file: secretFile },
              events: ['request.created', 'request.approved', 'grant.revoked'],
              resources: ['demo-api'],
            },
            {
              name: 'down',
              type: 'webhook',
              url: `http://127.0.0.1:${deadPort}/nobody`,
              secret: { file: secretFile },
              events: ['request.created'],
              timeout: '1s',
            },
          ],
        },
      },
    });
  });

  after(async () => {
    await h?.close();
    await new Promise((resolve) => (smtp ? smtp.close(() => resolve(undefined)) : resolve(undefined)));
    await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  test('approvers hear of a request, the requester of its outcome, the feed of both', async (t) => {
    if (skip) return t.skip(skip);
    // Addresses are known from sign-in: bob (sre) approves demo-api, carol (dba) does not.
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    await h.login('carol');

    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: 1800,
      reason: 'rotate the API keys',
    });
    assert.equal(created.status, 201);
    const requestId = String(created.body.id);

    const ask = await until('the approvers mail', () =>
      mails.find((m) => m.raw.includes(requestId) && m.raw.includes('needs 1 approval')),
    );
    assert.deepEqual(ask.to, ['bob@demo.portcullis.test'], 'only the sre approver, never the requester');
    assert.equal(ask.secure, true, 'mail travels inside TLS');
    assert.match(ask.raw, new RegExp(`portcullis approve ${requestId}`));
    assert.match(ask.raw, /rotate the API keys/);

    const feed = await until('the request.created webhook', () =>
      hooks.find((hook) => hook.body.event === 'request.created'),
    );
    assert.equal(feed.signatureValid, true);
    const payload = feed.body.notification as Record<string, unknown>;
    assert.equal(payload.request_id, requestId);
    assert.equal(payload.requester, 'demo:alice');
    assert.deepEqual(payload.approver_groups, ['sre']);
    assert.match(String(feed.body.text), /demo:alice requests demo-api\/operator for 30m/);
    assert.equal(feed.id, feed.body.id, 'the id header is the payload id');
    // The link opens the request in the console, where bob acts on it (after signing in).
    const link = (payload.links as { request: string }).request;
    assert.equal(link, `${h.url}/console/requests/${requestId}`);
    // Quoted-printable: soft line breaks (`=` at a line's end) joined again.
    assert.ok(ask.raw.replace(/=\r\n/g, '').includes(`See it: ${link}`));
    const opened = await fetch(link, { redirect: 'manual' });
    assert.equal(opened.status, 303);
    assert.equal(
      opened.headers.get('location'),
      `/auth/login?next=${encodeURIComponent(`/console/requests/${requestId}`)}`,
    );

    const approved = await h.api(bob, 'POST', `/api/v1/requests/${requestId}/approve`, {});
    assert.equal(approved.status, 200);
    const told = await until('the requester mail', () =>
      mails.find((m) => m.raw.includes(requestId) && m.raw.includes('was approved by demo:bob')),
    );
    assert.deepEqual(told.to, ['alice@demo.portcullis.test']);
    await until('the request.approved webhook', () =>
      hooks.find((hook) => hook.body.event === 'request.approved'),
    );

    // No notification carries a credential: not the session tokens, not an access token.
    for (const text of [...mails.map((m) => m.raw), ...hooks.map((hook) => JSON.stringify(hook.body))]) {
      assert.ok(!text.includes(alice) && !text.includes(bob));
      assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}\./);
    }
    // Each notification went out once to each channel that wanted it.
    assert.equal(hooks.filter((hook) => hook.body.event === 'request.created').length, 1);
  });

  test('a channel that stays down is given up after its attempts, in the audit log', async (t) => {
    if (skip) return t.skip(skip);
    const failed = await until('notification.failed', async () =>
      (await h.portcullis.store.auditLog.read(0, 10_000)).find((e) => e.type === 'notification.failed'),
    );
    assert.equal(failed.data?.channel, 'down');
    assert.equal(failed.data?.event, 'request.created');
    assert.equal(failed.data?.attempts, 2);
    assert.match(String(failed.data?.error), /connection failed/);
    assert.ok(!String(failed.data?.error).includes(String(deadPort)), 'the URL is never repeated');
    // The other channels were not held back by it.
    assert.ok(hooks.some((hook) => hook.body.event === 'request.approved'));
  });
});
