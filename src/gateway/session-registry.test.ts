import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../core/clock.js';
import {
  type RegisteredSession,
  SessionRegistry,
  type TerminationReason,
  terminationMessage,
} from './session-registry.js';

function session(grantId: string): RegisteredSession & { reasons: TerminationReason[] } {
  const reasons: TerminationReason[] = [];
  return { grantId, reasons, terminate: (reason) => reasons.push(reason) };
}

function registry(live: (grantId: string) => boolean = () => true, intervalMs = 20): SessionRegistry {
  return new SessionRegistry({
    clock: systemClock,
    isGrantLive: async (grantId) => live(grantId),
    livenessCheckIntervalMs: intervalMs,
    onError: (error) => assert.fail(String(error)),
  });
}

describe('SessionRegistry', () => {
  test("a grant's sessions end at its expires_at, not at a time relative to when they began", async () => {
    const r = registry();
    const expiresAt = Date.now() + 400;
    const endedAt: number[] = [];
    const timed = (grantId: string) => {
      const s = session(grantId);
      const terminate = s.terminate;
      return {
        ...s,
        terminate: (reason: TerminationReason) => {
          endedAt.push(Date.now());
          terminate(reason);
        },
      };
    };
    const first = timed('g1');
    r.add(first, expiresAt);
    await sleep(100);
    const second = timed('g1');
    r.add(second, expiresAt);
    // Only meaningful while the deadline is still ahead (a loaded machine may sleep longer).
    if (Date.now() < expiresAt - 20) assert.equal(first.reasons.length, 0);
    const deadline = Date.now() + 5000;
    while ((first.reasons.length === 0 || second.reasons.length === 0) && Date.now() < deadline)
      await sleep(10);
    assert.deepEqual(first.reasons, [{ kind: 'expired', grantId: 'g1', at: expiresAt }]);
    assert.deepEqual(second.reasons, [{ kind: 'expired', grantId: 'g1', at: expiresAt }]);
    // Timers may fire a millisecond early against the wall clock; never earlier than that.
    for (const at of endedAt) assert.ok(at >= expiresAt - 5, `ended ${expiresAt - at} ms before expires_at`);
    assert.equal(r.size, 0);
    r.stop();
  });

  test('endGrant closes exactly that grant, and a session admitted right after is closed too', async () => {
    const r = registry();
    const a = session('a');
    const b = session('b');
    r.add(a, Date.now() + 60_000);
    r.add(b, Date.now() + 60_000);
    r.endGrant('a', 'revoked');
    assert.deepEqual(a.reasons, [{ kind: 'revoked', grantId: 'a' }]);
    assert.equal(b.reasons.length, 0);
    const late = session('a');
    r.add(late, Date.now() + 60_000);
    await sleep(0);
    assert.deepEqual(late.reasons, [{ kind: 'revoked', grantId: 'a' }]);
    assert.equal(r.size, 1);
    r.stop();
  });

  test('the liveness check ends grants another replica revoked', async () => {
    const revoked = new Set<string>();
    const r = registry((g) => !revoked.has(g));
    const a = session('a');
    r.add(a, Date.now() + 60_000);
    r.start();
    await sleep(50);
    assert.equal(a.reasons.length, 0);
    revoked.add('a');
    const deadline = Date.now() + 3000;
    while (a.reasons.length === 0 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(a.reasons, [{ kind: 'ended', grantId: 'a' }]);
    r.stop();
  });

  test('an unregistered session is not terminated; messages say why', () => {
    const r = registry();
    const a = session('a');
    const remove = r.add(a, Date.now() + 60_000);
    remove();
    r.terminateAll({ kind: 'shutdown' });
    assert.equal(a.reasons.length, 0);
    assert.match(
      terminationMessage({ kind: 'expired', grantId: 'g', at: Date.UTC(2030, 0, 1) }),
      /access grant g expired at 2030-01-01T00:00:00.000Z/,
    );
    assert.match(terminationMessage({ kind: 'revoked', grantId: 'g' }), /access grant g was revoked/);
    r.stop();
  });
});
