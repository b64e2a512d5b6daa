import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideRefusalLog,
  type RefusalLogVerdict,
  type RefusalThrottleState,
} from './refusal-log-throttle.js';

const policy = { limit: 3, windowMs: 60_000, maxSources: 2 };

function run(
  calls: readonly { source: string; at: number }[],
  start: RefusalThrottleState = new Map(),
): { verdicts: RefusalLogVerdict[]; state: RefusalThrottleState } {
  let state = start;
  const verdicts: RefusalLogVerdict[] = [];
  for (const { source, at } of calls) {
    const decided = decideRefusalLog(state, source, at, policy);
    state = decided.state;
    verdicts.push(decided.verdict);
  }
  return { verdicts, state };
}

describe('refusal log throttle', () => {
  it('writes `limit` events per source and window, then one marker, then nothing', () => {
    const { verdicts } = run(Array.from({ length: 7 }, (_, i) => ({ source: 'a', at: 1_000 + i })));
    assert.deepEqual(
      verdicts.map((v) => v.write),
      ['event', 'event', 'event', 'suppressing', 'nothing', 'nothing', 'nothing'],
    );
    assert.deepEqual(verdicts[3], { write: 'suppressing', until: 61_000 });
  });

  it('reports how many were left out with the first event of the next window', () => {
    const flood = Array.from({ length: 6 }, (_, i) => ({ source: 'a', at: 1_000 + i }));
    const { verdicts } = run([...flood, { source: 'a', at: 61_000 }, { source: 'a', at: 61_001 }]);
    assert.deepEqual(verdicts[6], { write: 'event', suppressedBefore: 3 });
    assert.deepEqual(verdicts[7], { write: 'event', suppressedBefore: 0 });
  });

  it('counts each source on its own', () => {
    const flood = Array.from({ length: 5 }, (_, i) => ({ source: 'a', at: 1_000 + i }));
    const { verdicts } = run([...flood, { source: 'b', at: 1_010 }]);
    assert.deepEqual(verdicts.at(-1), { write: 'event', suppressedBefore: 0 });
  });

  it('forgets the oldest source beyond maxSources (bounded memory)', () => {
    const { state } = run([
      { source: 'a', at: 1 },
      { source: 'b', at: 2 },
      { source: 'c', at: 3 },
    ]);
    assert.deepEqual([...state.keys()], ['b', 'c']);
  });
});
