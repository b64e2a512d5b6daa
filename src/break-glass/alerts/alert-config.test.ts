import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Secret } from '../../config/secret.js';
import { PortcullisError } from '../../core/errors.js';
import { type AlertChannelConfig, alertChannelsSchema, createAlertChannels } from './alert-config.js';
import { SmtpAlertChannel } from './smtp-channel.js';
import { WebhookAlertChannel } from './webhook-channel.js';

const env: Record<string, string> = {
  HOOK_SECRET: 'a-webhook-secret-of-at-least-32-chars',
  SHORT: 'too-short',
  SLACK_URL: 'https://hooks.slack.example/services/T0/B0/xoxb-secret-token',
  PLAIN_URL: 'http://hooks.example.com/services/xoxb-secret-token',
  SMTP_PASS: 'smtp-password',
};
const resolveSecret = (ref: { env: string } | { file: string }, path: string) => {
  if (!('env' in ref)) throw new Error(`unexpected file ref at ${path}`);
  return new Secret(env[ref.env] ?? '', ref.env);
};

const webhook = {
  name: 'soc',
  type: 'webhook',
  url: 'https://soc.example.com/hook',
  secret: { env: 'HOOK_SECRET' },
};
const smtp = {
  name: 'mail',
  type: 'smtp',
  host: 'smtp.example.com',
  auth: { user: 'portcullis', pass: { env: 'SMTP_PASS' } },
  from: 'portcullis@example.com',
  to: ['security@example.com'],
};

function issues(input: unknown): string[] {
  const result = alertChannelsSchema.safeParse(input);
  assert.equal(result.success, false, 'should be refused');
  return result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
}

describe('alertChannelsSchema', () => {
  it('fills the defaults: timeouts, port 587 with STARTTLS required', () => {
    assert.deepEqual(alertChannelsSchema.parse([webhook, smtp]), [
      { ...webhook, timeout: 5 },
      { ...smtp, port: 587, secure: false, starttls: true, timeout: 10 },
    ]);
    assert.deepEqual(alertChannelsSchema.parse(undefined), []);
  });

  it('refuses inline secrets, unknown keys, plain-text auth, ambiguous TLS and duplicate names', () => {
    assert.match(issues([{ ...webhook, secret: 'inline' }]).join('\n'), /0\.secret: .*never written inline/);
    assert.match(issues([{ ...webhook, method: 'GET' }]).join('\n'), /Unrecognized key/);
    assert.match(
      issues([{ ...smtp, starttls: false }]).join('\n'),
      /0\.auth: SMTP credentials are never sent without TLS/,
    );
    assert.match(issues([{ ...smtp, secure: true }]).join('\n'), /0\.starttls: .*exclude each other/);
    assert.match(
      issues([webhook, { ...smtp, name: 'soc' }]).join('\n'),
      /1\.name: duplicate channel name soc/,
    );
    assert.match(issues([{ ...smtp, to: [] }]).join('\n'), /0\.to/);
    assert.match(issues([{ ...smtp, to: ['not an address'] }]).join('\n'), /0\.to\.0/);
    assert.match(
      issues([{ ...webhook, timeout: '10m' }]).join('\n'),
      /0\.timeout: must be a duration from 1s to 2m/,
    );
    assert.match(issues([{ ...webhook, type: 'pager' }]).join('\n'), /0\.type/);
  });
});

describe('createAlertChannels', () => {
  it('builds one channel per entry, resolving secret refs (URL included)', () => {
    const config = alertChannelsSchema.parse([
      webhook,
      { ...webhook, name: 'slack', url: { env: 'SLACK_URL' } },
      smtp,
    ]);
    const channels = createAlertChannels(config, resolveSecret);
    assert.deepEqual(
      channels.map((c) => [c.name, c.kind]),
      [
        ['soc', 'webhook'],
        ['slack', 'webhook'],
        ['mail', 'smtp'],
      ],
    );
    assert.ok(channels[0] instanceof WebhookAlertChannel && channels[2] instanceof SmtpAlertChannel);
  });

  it('reports every problem together, never echoing a secret URL or secret', () => {
    const config: AlertChannelConfig[] = alertChannelsSchema.parse([
      { ...webhook, secret: { env: 'SHORT' } },
      { ...webhook, name: 'plain', url: { env: 'PLAIN_URL' } },
      { ...smtp, ca_file: '/nonexistent/ca.pem' },
    ]);
    let caught: unknown;
    try {
      createAlertChannels(config, resolveSecret);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof PortcullisError);
    assert.equal(caught.code, 'config_invalid');
    const listed = caught.details.issues as { path: string; message: string }[];
    assert.deepEqual(
      listed.map((i) => i.path),
      [
        'break_glass.alert_channels[0].secret',
        'break_glass.alert_channels[1].url',
        'break_glass.alert_channels[2].ca_file',
      ],
    );
    assert.match(listed[2]?.message ?? '', /ENOENT/);
    const text = JSON.stringify(caught.details);
    assert.ok(!text.includes('xoxb-secret-token') && !text.includes(env.SHORT ?? '?'));
  });
});
