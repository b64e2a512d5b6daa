/**
 * The relay over a real store (SQLite and PostgreSQL): each channel's position and lease, delivery
 * at least once across a stop, one deliverer among replicas, and who is addressed. The channels
 * here record what they are given; the real webhook and SMTP channels are proven end to end in
 * src/server/notifications.test.ts.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import type { AccessRequest } from '../core/access-request.js';
import { ManualClock } from '../core/clock.js';
import type { AccessNotification, NotifiableEvent, NotificationAudience } from '../core/notification.js';
import type { NotificationChannel } from '../notifications/ports.js';
import { testEpoch, testPrincipal, testRequest } from '../storage/test-fixtures.js';
import { NotificationRelay } from './notification-relay.js';
import type { Store } from './ports.js';

class RecordingChannel implements NotificationChannel {
  readonly kind = 'webhook';
  readonly sent: { notification: AccessNotification; recipients: readonly string[] }[] = [];
  failuresLeft = 0;

  constructor(
    readonly name: string,
    readonly audiences: readonly NotificationAudience[] = [],
    readonly events: readonly NotifiableEvent[] = ['request.created', 'request.approved'],
  ) {}

  wants(event: NotifiableEvent): boolean {
    return this.events.includes(event);
  }

  async send(notification: AccessNotification, recipients: readonly string[]): Promise<void> {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('receiver answered HTTP 503');
    }
    this.sent.push({ notification, recipients });
  }
}

async function newRequest(store: Store, id: string, overrides: Partial<AccessRequest> = {}) {
  const request = testRequest(id, overrides);
  await store.transaction(async (tx) => {
    await tx.requests.insert(request);
    await tx.audit.append(
      { type: 'request.created', actor: request.requesterId, requestId: id, resourceId: request.resourceId },
      testEpoch,
    );
  });
  return request;
}

function relay(
  store: Store,
  channels: NotificationChannel[],
  owner: string,
  clock = new ManualClock(testEpoch),
) {
  return new NotificationRelay({
    store,
    channels,
    clock,
    owner,
    onError: (error) => {
      throw error;
    },
    baseDelayMs: 1,
    maxDelayMs: 2,
    maxAttempts: 3,
  });
}

forEachDialect('NotificationRelay', (ctx) => {
  it('starts a new channel at the end of the log, then delivers what follows, once', async () => {
    await newRequest(ctx.store, 'req-before');
    const channel = new RecordingChannel('feed');
    const r = relay(ctx.store, [channel], 'replica-a');
    await r.drain(channel);
    assert.equal(channel.sent.length, 0, 'history is not replayed');
    await newRequest(ctx.store, 'req-after');
    await r.drain(channel);
    await r.drain(channel);
    assert.deepEqual(
      channel.sent.map((s) => [s.notification.event, s.notification.requestId]),
      [['request.created', 'req-after']],
    );
  });

  it('loses nothing across a stop: the next holder resumes at the recorded position', async () => {
    const channel = new RecordingChannel('feed');
    const first = relay(ctx.store, [channel], 'replica-a');
    await first.drain(channel);
    await first.stop();
    await newRequest(ctx.store, 'req-1');
    await newRequest(ctx.store, 'req-2');
    const second = relay(ctx.store, [channel], 'replica-b');
    await second.drain(channel);
    assert.deepEqual(
      channel.sent.map((s) => s.notification.requestId),
      ['req-1', 'req-2'],
    );
  });

  it('lets one replica deliver while its lease runs, and another once it has lapsed', async () => {
    const channel = new RecordingChannel('feed');
    const clock = new ManualClock(testEpoch);
    const a = relay(ctx.store, [channel], 'replica-a', clock);
    const b = relay(ctx.store, [channel], 'replica-b', clock);
    await a.drain(channel);
    await newRequest(ctx.store, 'req-1');
    await b.drain(channel);
    assert.equal(channel.sent.length, 0, 'b waits: a holds the lease');
    await a.drain(channel);
    assert.equal(channel.sent.length, 1);
    // a dies without releasing; its lease lapses and b carries on from a's position.
    clock.advance(61_000);
    await newRequest(ctx.store, 'req-2');
    await b.drain(channel);
    await a.drain(channel);
    assert.deepEqual(
      channel.sent.map((s) => s.notification.requestId),
      ['req-1', 'req-2'],
    );
  });

  it('retries a failing channel with the same id, and gives up into the audit log', async () => {
    const flaky = new RecordingChannel('flaky');
    const dead = new RecordingChannel('dead');
    const r = relay(ctx.store, [flaky, dead], 'replica-a');
    await r.drain(flaky);
    await r.drain(dead);
    await newRequest(ctx.store, 'req-1');
    flaky.failuresLeft = 2;
    dead.failuresLeft = 99;
    await r.drain(flaky);
    await r.drain(dead);
    assert.equal(flaky.sent.length, 1, 'delivered on the third attempt');
    assert.equal(dead.sent.length, 0);
    const failed = (await ctx.store.auditLog.read(0, 1000)).filter((e) => e.type === 'notification.failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.data?.channel, 'dead');
    assert.equal(failed[0]?.data?.attempts, 3);
    assert.equal(failed[0]?.data?.error, 'receiver answered HTTP 503');
    assert.equal(failed[0]?.requestId, 'req-1');
    // Given up means moved on: the failure event itself is no request step, nothing is resent.
    await r.drain(dead);
    assert.equal(dead.failuresLeft, 99 - 3);
  });

  it('addresses the approver groups (not the requester, nobody disabled or locked) or the requester', async () => {
    const store = ctx.store;
    await store.principals.upsert(testPrincipal('alice', ['engineering', 'sre']), testEpoch);
    await store.principals.upsert(testPrincipal('bob', ['sre']), testEpoch);
    await store.principals.upsert(testPrincipal('sam', ['sre-contractors']), testEpoch);
    await store.principals.upsert(testPrincipal('dora', ['sre']), testEpoch);
    await store.principals.setDisabled('okta:dora', true, testEpoch);
    await store.principals.upsert(testPrincipal('lee', ['sre']), testEpoch);
    await store.principals.setLock(
      'okta:lee',
      { at: testEpoch, by: 'okta:admin', reason: 'incident' },
      testEpoch,
    );
    await store.principals.upsert({ ...testPrincipal('nomail', ['sre']), email: null }, testEpoch);
    await store.principals.upsert(testPrincipal('percent', ['s%e']), testEpoch);

    const mail = new RecordingChannel('mail', ['approvers', 'requester']);
    const r = relay(store, [mail], 'replica-a');
    await r.drain(mail);
    await newRequest(store, 'req-1');
    await store.transaction((tx) =>
      tx.audit.append(
        { type: 'request.approved', actor: 'okta:bob', requestId: 'req-1', resourceId: 'prod-db' },
        testEpoch,
      ),
    );
    await r.drain(mail);
    assert.deepEqual(
      mail.sent.map((s) => [s.notification.audience, s.recipients]),
      [
        ['approvers', ['bob@example.com']],
        ['requester', ['alice@example.com']],
      ],
    );
  });

  it('does not announce a request that needed no approval', async () => {
    const channel = new RecordingChannel('feed');
    const r = relay(ctx.store, [channel], 'replica-a');
    await r.drain(channel);
    await newRequest(ctx.store, 'req-auto', {
      route: {
        requiredApprovals: 0,
        approverGroups: [],
        maxDurationSeconds: 3600,
        autoApprove: true,
        policyId: 'p',
      },
    });
    await r.drain(channel);
    assert.equal(channel.sent.length, 0);
  });
});
