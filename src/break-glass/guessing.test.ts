import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Attempt,
  backoffDelay,
  checkAttempt,
  emptyGuessingState,
  type GuessingState,
  defaultGuessingPolicy as policy,
  recordFailure,
  recordSuccess,
} from './guessing.js';

const t0 = Date.UTC(2025, 0, 6, 3, 0, 0);
const attacker: Attempt = { custodianId: 'ana', source: '203.0.113.9' };
const anaAtDesk: Attempt = { custodianId: 'ana', source: '10.0.0.5' };

function fail(state: GuessingState, a: Attempt, times: number, now = t0): GuessingState {
  let s = state;
  for (let i = 0; i < times; i++) s = recordFailure(s, a, policy, now);
  return s;
}

describe('guessing resistance', () => {
  it('allows the free failures, then backs off exponentially up to the cap', () => {
    assert.deepEqual(
      [0, 3, 4, 5, 6].map((n) => backoffDelay(n, policy)),
      [0, 1000, 2000, 4000, 8000],
    );
    assert.equal(backoffDelay(500, policy), policy.maxDelayMs);
  });

  it('locks the attacking (custodian, source) pair after repeated failures', () => {
    const s = fail(emptyGuessingState(policy, t0), attacker, 5);
    const v = checkAttempt(s, attacker, policy, t0 + 1);
    assert.equal(v.allowed, false);
    assert.equal(v.allowed === false && v.limit, 'pair');
  });

  it('does not lock the real custodian at another source', () => {
    const s = fail(emptyGuessingState(policy, t0), attacker, 10);
    assert.deepEqual(checkAttempt(s, anaAtDesk, policy, t0 + 1), { allowed: true });
  });

  it('blocks one source spraying every custodian', () => {
    let s = emptyGuessingState(policy, t0);
    for (const c of ['ana', 'ben', 'cho', 'dev', 'eve'])
      s = fail(s, { custodianId: c, source: '203.0.113.9' }, 1);
    const v = checkAttempt(s, { custodianId: 'fay', source: '203.0.113.9' }, policy, t0 + 1);
    assert.equal(v.allowed === false && v.limit, 'source');
  });

  it('a source block spares a custodian who succeeded from that source before, not a new one', () => {
    const shared = '192.0.2.50';
    let s = recordSuccess(emptyGuessingState(policy, t0), { custodianId: 'ana', source: shared }, t0);
    for (const c of ['ben', 'cho', 'dev', 'eve']) s = fail(s, { custodianId: c, source: shared }, 1);
    const stranger = checkAttempt(s, { custodianId: 'fay', source: shared }, policy, t0 + 1);
    assert.equal(stranger.allowed === false && stranger.limit, 'source');
    assert.deepEqual(checkAttempt(s, { custodianId: 'ana', source: shared }, policy, t0 + 1), {
      allowed: true,
    });
    // Ana's own failures there still lock her pair.
    const own = fail(s, { custodianId: 'ana', source: shared }, 4);
    const v = checkAttempt(own, { custodianId: 'ana', source: shared }, policy, t0 + 1);
    assert.equal(v.allowed === false && v.limit, 'pair');
  });

  it('throttles a distributed attack account-wide, but exempts custodians at known places', () => {
    let s = recordSuccess(emptyGuessingState(policy, t0), anaAtDesk, t0);
    for (let i = 0; i < policy.accountBurst; i++)
      s = fail(s, { custodianId: 'ben', source: `198.51.100.${i}` }, 1);
    const stranger = checkAttempt(s, { custodianId: 'ben', source: '192.0.2.1' }, policy, t0 + 1);
    assert.equal(stranger.allowed === false && stranger.limit, 'account');
    assert.ok(
      stranger.allowed === false && stranger.retryAfterMs <= policy.accountRefillMs,
      'a delay, not a lockout',
    );
    assert.deepEqual(checkAttempt(s, anaAtDesk, policy, t0 + 1), { allowed: true });
    assert.deepEqual(
      checkAttempt(s, { custodianId: 'ben', source: '192.0.2.1' }, policy, t0 + policy.accountRefillMs),
      {
        allowed: true,
      },
    );
  });

  it('clears the pair after a success and expires the lock with time', () => {
    const s = fail(emptyGuessingState(policy, t0), attacker, 4);
    assert.equal(checkAttempt(s, attacker, policy, t0 + 1).allowed, false);
    assert.equal(checkAttempt(s, attacker, policy, t0 + 2000).allowed, true);
    assert.equal(checkAttempt(recordSuccess(s, attacker, t0), attacker, policy, t0 + 1).allowed, true);
  });
});
