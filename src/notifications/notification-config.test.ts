import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Secret } from '../config/secret.js';
import { resolveNotifications } from './notification-config.js';

const secrets: Record<string, string> = {
  GOOD: 'a-webhook-signing-secret-of-40-characters!',
  SHORT: 'too-short',
  URL: 'https://hooks.example.com/services/T000/B000/XXXXSECRET',
};
const context = {
  resourceIds: new Set(['orders-db', 'demo-api']),
  publicUrl: 'https://portcullis.example.com',
  resolveSecret: (ref: { env?: string; file?: string }, path: string) =>
    new Secret(secrets[ref.env ?? ''] ?? '', path),
  readFile: () => 'PEM',
};

function resolve(section: unknown) {
  return resolveNotifications(section, context as Parameters<typeof resolveNotifications>[1]);
}

describe('notifications configuration', () => {
  it('is off without the section, and builds each channel with its filters', () => {
    assert.deepEqual(resolve(undefined).settings.channels, []);
    const { settings, issues } = resolve({
      channels: [
        {
          name: 'feed',
          type: 'webhook',
          url: { env: 'URL' },
          secret: { env: 'GOOD' },
          resources: ['orders-db'],
        },
        {
          name: 'mail',
          type: 'smtp',
          host: 'smtp.example.com',
          from: 'portcullis@example.com',
          recipients: ['approvers'],
          events: ['request.created'],
        },
      ],
    });
    assert.deepEqual(issues, []);
    const [feed, mail] = settings.channels;
    assert.equal(feed?.wants('request.created', 'orders-db'), true);
    assert.equal(feed?.wants('request.created', 'demo-api'), false, 'other resources are filtered out');
    assert.equal(feed?.wants('grant.expired', 'orders-db'), false, 'not among the default events');
    assert.deepEqual(mail?.audiences, ['approvers']);
    assert.equal(mail?.wants('request.approved', 'demo-api'), false);
    assert.equal(settings.maxAttempts, 6);
  });

  it('reports every problem with its path, never repeating a secret URL', () => {
    const { issues } = resolve({
      channels: [
        { name: 'feed', type: 'webhook', url: 'http://hooks.example.com/x', secret: { env: 'SHORT' } },
        { name: 'feed', type: 'webhook', url: { env: 'URL' }, secret: { env: 'GOOD' }, resources: ['nope'] },
        { name: 'mail', type: 'smtp', host: 'smtp.example.com', from: 'portcullis@example.com' },
        {
          name: 'plain',
          type: 'smtp',
          host: 'smtp.example.com',
          starttls: false,
          from: 'portcullis@example.com',
          to: ['ops@example.com'],
          auth: { user: 'u', pass: { env: 'GOOD' } },
        },
        {
          name: 'odd',
          type: 'webhook',
          url: { env: 'URL' },
          secret: { env: 'GOOD' },
          events: ['break_glass.activated'],
        },
      ],
    });
    const paths = issues.map((i) => i.path).sort();
    assert.ok(paths.includes('notifications.channels[2].to'), 'an e-mail channel needs someone to write to');
    assert.ok(paths.includes('notifications.channels[3].auth'), 'credentials never without TLS');
    assert.ok(paths.some((p) => p.startsWith('notifications.channels[4].events')));
    const second = resolve({
      channels: [
        { name: 'feed', type: 'webhook', url: 'http://hooks.example.com/x', secret: { env: 'SHORT' } },
        { name: 'feed', type: 'webhook', url: { env: 'URL' }, secret: { env: 'GOOD' }, resources: ['nope'] },
      ],
    }).issues;
    assert.deepEqual(second.map((i) => i.path).sort(), [
      'notifications.channels[0].secret',
      'notifications.channels[0].url',
      'notifications.channels[1].name',
      'notifications.channels[1].resources',
    ]);
    assert.ok(!JSON.stringify([...issues, ...second]).includes('XXXXSECRET'));
  });
});
