import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { sampleAlert } from '../../../test-support/break-glass-alert.js';
import { createSelfSignedCertificate } from '../../../test-support/self-signed-certificate.js';
import { Secret } from '../../config/secret.js';
import { SmtpAlertChannel } from './smtp-channel.js';

const password = 'smtp-pa55word-never-in-mail';

interface Received {
  readonly raw: string;
  readonly from: string;
  readonly to: string[];
  readonly secure: boolean;
}

interface Mailbox {
  readonly port: number;
  readonly mails: Received[];
  readonly authAttempts: { user: string; secure: boolean }[];
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-smtp-'));
let cert = '';
let key = '';

before(() => {
  ({ cert, key } = createSelfSignedCertificate(dir));
});

const servers: Mailbox[] = [];
after(async () => {
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A real SMTP server (smtp-server) on 127.0.0.1 that accepts `alerts`/`password` after TLS only. */
async function mailbox(options: Partial<SMTPServerOptions> = {}): Promise<Mailbox> {
  const mails: Received[] = [];
  const authAttempts: { user: string; secure: boolean }[] = [];
  const server = new SMTPServer({
    key,
    cert,
    logger: false,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, session, callback) {
      authAttempts.push({ user: auth.username ?? '', secure: session.secure });
      if (auth.username === 'alerts' && auth.password === password) return callback(null, { user: 'alerts' });
      return callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({
          raw: Buffer.concat(chunks).toString('utf8'),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          secure: session.secure,
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  const box = { port, mails, authAttempts, close: () => new Promise<void>((r) => server.close(() => r())) };
  servers.push(box);
  return box;
}

function channel(port: number, overrides: Partial<ConstructorParameters<typeof SmtpAlertChannel>[0]> = {}) {
  return new SmtpAlertChannel({
    name: 'security-mail',
    host: '127.0.0.1',
    port,
    secure: false,
    starttls: true,
    ca: cert,
    auth: { user: 'alerts', pass: new Secret(password, 'SMTP_PASS') },
    from: 'portcullis@example.com',
    to: ['security@example.com', 'oncall@example.com'],
    timeoutMs: 3000,
    ...overrides,
  });
}

/** Headers (unfolded) and the decoded body of a raw message. */
function parse(raw: string): { headers: Map<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const headerText = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers.get('content-transfer-encoding') ?? '')) {
    body = Buffer.from(
      body
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
      'latin1',
    ).toString('utf8');
  }
  return { headers, body: body.replace(/\r\n/g, '\n') };
}

describe('SmtpAlertChannel', () => {
  it('sends one plain-text mail over STARTTLS, authenticated only after TLS, without secrets', async () => {
    const box = await mailbox();
    const alert = sampleAlert();
    await channel(box.port).send(alert);

    assert.equal(box.mails.length, 1);
    const mail = box.mails[0];
    assert.ok(mail);
    assert.equal(mail.secure, true, 'the message travelled inside TLS');
    assert.deepEqual(box.authAttempts, [{ user: 'alerts', secure: true }]);
    assert.equal(mail.from, 'portcullis@example.com');
    assert.deepEqual(mail.to, ['security@example.com', 'oncall@example.com']);

    const { headers, body } = parse(mail.raw);
    assert.equal(headers.get('subject'), '[Portcullis] Break-glass activated: prod-db-emergency');
    assert.equal(headers.get('from'), 'portcullis@example.com');
    assert.equal(headers.get('to'), 'security@example.com, oncall@example.com');
    assert.equal(headers.get('x-portcullis-alert-id'), alert.id);
    assert.equal(headers.get('x-portcullis-event'), 'break_glass.activated');
    assert.equal(headers.get('message-id'), `<${alert.id}.security-mail@portcullis.alerts>`);
    assert.equal(headers.get('x-priority'), '1 (Highest)');
    assert.match(headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(body, /^Break-glass ACTIVE on prod-db-emergency until 14:05 UTC\n/);
    assert.match(body, /\nAccount: {5}prod-db-emergency\n/);
    assert.match(body, /\nActivation: {2}act_01HZX3\n/);
    assert.match(body, /\nCustodians: {2}alice, bob\n/);
    assert.match(body, /\nIncident: {4}INC-4242\n/);
    assert.match(body, /\nAt: {10}2026-11-23T13:20:00.000Z\n/);
    assert.match(body, /carries no credentials/);
    assert.ok(!mail.raw.includes(password), 'the SMTP password is not in the mail');
  });

  it('marks drills in the subject and sends them at normal priority', async () => {
    const box = await mailbox();
    await channel(box.port).send(sampleAlert({ drill: true, kind: 'drill_completed' }));
    const { headers, body } = parse(box.mails[0]?.raw ?? '');
    assert.equal(
      headers.get('subject'),
      '[Portcullis] [DRILL] Break-glass drill completed: prod-db-emergency',
    );
    assert.equal(headers.get('x-priority'), undefined);
    assert.match(body, /^\[DRILL\] /);
  });

  it('refuses to send when the server does not offer STARTTLS (no credentials, no mail in clear)', async () => {
    // hideSTARTTLS alone is not enough: nodemailer with requireTLS tries STARTTLS anyway (and succeeds).
    const box = await mailbox({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    await assert.rejects(channel(box.port).send(sampleAlert()), (error: Error) => {
      assert.match(error.message, /^smtp security-mail: ETLS/);
      return true;
    });
    assert.deepEqual(box.authAttempts, []);
    assert.equal(box.mails.length, 0);
  });

  it('refuses a server certificate it does not trust', async () => {
    const box = await mailbox();
    const untrusting = channel(box.port, { ca: undefined });
    await assert.rejects(untrusting.send(sampleAlert()), /^Error: smtp security-mail: /);
    assert.deepEqual(box.authAttempts, []);
    assert.equal(box.mails.length, 0);
  });

  it('reports a refused login by code, without the password', async () => {
    const box = await mailbox();
    const wrong = channel(box.port, { auth: { user: 'alerts', pass: new Secret('not-the-password', 'X') } });
    const error = await wrong.send(sampleAlert()).then(
      () => assert.fail('sent with a wrong password'),
      (e: Error) => e,
    );
    assert.equal(error.message, 'smtp security-mail: EAUTH at AUTH reply 535');
    assert.equal(box.mails.length, 0);
  });

  it('works with implicit TLS (secure) too', async () => {
    const box = await mailbox({ secure: true });
    await channel(box.port, { secure: true, starttls: false }).send(sampleAlert());
    assert.equal(box.mails.length, 1);
    assert.equal(box.mails[0]?.secure, true);
  });
});
