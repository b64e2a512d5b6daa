/**
 * The expiry loop's timer: a grant activated while the loop is between two passes (reading the
 * next deadline) must still be ended on time, not at the next safety-net poll.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../core/clock.js';
import type { AccessService } from './access-service.js';
import { ExpiryLoop } from './expiry-loop.js';
import type { Store } from './ports.js';

describe('ExpiryLoop', () => {
  it('keeps a deadline announced while it reads the next one', async () => {
    let passes = 0;
    const service = {
      expireDue: async () => {
        passes++;
        return 0;
      },
      processDueRevocations: async () => 0,
      resumeActivations: async () => 0,
      lapseDue: async () => 0,
    } as unknown as AccessService;
    let releaseRead: (() => void) | undefined;
    let reads = 0;
    const store = {
      requests: {
        // The first read is slow: it started before the new grant was committed, so it misses it.
        nextReviewDeadline: async () => null,
        nextExpiry: async () => {
          reads++;
          if (reads === 1) await new Promise<void>((resolve) => (releaseRead = resolve));
          return null;
        },
      },
      grants: { nextRevocationAttempt: async () => null },
    } as unknown as Store;
    const errors: unknown[] = [];
    const loop = new ExpiryLoop(service, store, systemClock, {
      pollIntervalMs: 60_000,
      onError: (error) => errors.push(error),
    });
    loop.start();
    try {
      while (!releaseRead) await sleep(5);
      assert.equal(passes, 1);
      // A grant becomes active now and ends in 50 ms, while the loop is still reading.
      loop.nudge(systemClock.now() + 50);
      releaseRead();
      const deadline = Date.now() + 2000;
      while (passes < 2 && Date.now() < deadline) await sleep(10);
      assert.equal(passes, 2, 'the announced deadline was dropped until the next poll');
      assert.deepEqual(errors, []);
    } finally {
      await loop.stop();
    }
  });

  it('stop() waits for a pass under way, including its read of the next deadline', async () => {
    let release: (() => void) | undefined;
    let finished = false;
    const service = {
      expireDue: async () => 0,
      processDueRevocations: async () => 0,
      resumeActivations: async () => 0,
      lapseDue: async () => 0,
    } as unknown as AccessService;
    const store = {
      requests: {
        nextReviewDeadline: async () => null,
        nextExpiry: async () => {
          await new Promise<void>((resolve) => (release = resolve));
          finished = true;
          return null;
        },
      },
      grants: { nextRevocationAttempt: async () => null },
    } as unknown as Store;
    const loop = new ExpiryLoop(service, store, systemClock, { pollIntervalMs: 60_000, onError: () => {} });
    loop.start();
    while (!release) await sleep(5);
    let stoppedEarly = false;
    const stopped = loop.stop().then(() => {
      stoppedEarly = !finished;
    });
    await sleep(50);
    release();
    await stopped;
    // The store may be closed once stop() resolves: nothing of the loop may still be using it.
    assert.equal(stoppedEarly, false);
  });
});
