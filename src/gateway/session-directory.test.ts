import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryEphemeralStore } from '../../test-support/oidc-fixtures.js';
import { allLiveSessions, liveSessionsKind, requestSessionEnd } from '../app/live-session-store.js';
import { ManualClock } from '../core/clock.js';
import { SessionDirectory } from './session-directory.js';
import type { TerminationReason } from './session-registry.js';

const start = Date.UTC(2026, 10, 23, 12);

function session(id: string) {
  return {
    id,
    grantId: `grant-${id}`,
    principalId: 'demo:alice',
    resourceId: 'demo-db',
    requestId: `request-${id}`,
    clientAddress: '127.0.0.1',
    applicationName: null,
    tls: false,
    startedAt: start,
  };
}

function directory(store: MemoryEphemeralStore, clock: ManualClock, replica = 'replica-a') {
  const errors: unknown[] = [];
  const dir = new SessionDirectory({
    store,
    replica,
    clock,
    checkIntervalMs: 1000,
    onError: (e) => errors.push(e),
  });
  return { dir, errors };
}

describe('SessionDirectory', () => {
  it('publishes its sessions for other replicas and withdraws them on stop', async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const { dir, errors } = directory(store, clock);
    const remove = dir.add(session('s1'), () => {});
    await dir.tick();
    assert.deepEqual(
      (await allLiveSessions(store, clock.now())).map((s) => [s.id, s.replica]),
      [['s1', 'replica-a']],
    );

    remove();
    clock.advance(600);
    await dir.tick();
    assert.deepEqual(await allLiveSessions(store, clock.now()), []);

    dir.add(session('s2'), () => {});
    clock.advance(600);
    await dir.tick();
    await dir.stop();
    assert.deepEqual(await allLiveSessions(store, clock.now()), []);
    assert.deepEqual(errors, []);
  });

  it("a crashed replica's row lapses after 30 s", async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const { dir } = directory(store, clock);
    dir.add(session('s1'), () => {});
    await dir.tick();
    assert.equal((await store.list(liveSessionsKind, clock.now() + 29_999)).length, 1);
    assert.equal((await store.list(liveSessionsKind, clock.now() + 30_000)).length, 0);
  });

  it('takes end requests for its own sessions only, and ends them', async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const { dir } = directory(store, clock);
    const ended: TerminationReason[] = [];
    dir.add(session('mine'), (reason) => ended.push(reason));
    await requestSessionEnd(store, 'mine', { by: 'demo:dave', reason: 'stop' }, clock.now());
    await requestSessionEnd(store, 'elsewhere', { by: 'demo:dave', reason: 'not here' }, clock.now());
    await dir.tick();
    assert.deepEqual(ended, [{ kind: 'ended_by', by: 'demo:dave', reason: 'stop' }]);
    assert.deepEqual(
      (await store.list('gateway_session_end', clock.now())).map((r) => r.key),
      ['elsewhere'],
      "another replica's request is left for it",
    );
  });

  it('lists this replica live and the others as published, oldest first', async () => {
    const store = new MemoryEphemeralStore();
    const clock = new ManualClock(start);
    const a = directory(store, clock, 'replica-a').dir;
    const b = directory(store, clock, 'replica-b').dir;
    b.add({ ...session('b1'), startedAt: start - 10 }, () => {});
    await b.tick();
    a.add(session('a1'), () => {});
    // replica-a's own session is listed before it has published it.
    assert.deepEqual(
      (await allLiveSessions(store, clock.now(), a)).map((s) => s.id),
      ['b1', 'a1'],
    );
  });
});
