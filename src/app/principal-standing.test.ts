import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PortcullisError } from '../core/errors.js';
import { assertMayAct } from './principal-standing.js';

const lock = { at: 1_700_000_000_500, by: 'okta:admin', reason: 'stolen laptop' };
const enabled = { disabled: false, lock: null, sessionsValidAfter: null };
const relocked = { disabled: false, lock: null, sessionsValidAfter: lock.at };

function refusal(run: () => void): [string, unknown] | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    assert.ok(error instanceof PortcullisError);
    return [error.code, error.details.reason];
  }
}

describe('assertMayAct', () => {
  it('refuses a locked principal before a deactivated one, and never names the lock reason', () => {
    assert.deepEqual(
      refusal(() => assertMayAct({ disabled: true, lock, sessionsValidAfter: lock.at })),
      ['principal_locked', 'principal_locked'],
    );
    assert.deepEqual(
      refusal(() => assertMayAct({ disabled: true, lock: null, sessionsValidAfter: lock.at })),
      ['principal_disabled', 'principal_disabled'],
    );
    assert.equal(
      refusal(() => assertMayAct(enabled)),
      undefined,
    );
    assert.equal(
      refusal(() => assertMayAct(undefined)),
      undefined,
    );
  });

  it('refuses a session issued before the last lock, and accepts one issued after it', () => {
    const session = (sessionsValidAfter: number | null) => ({ kind: 'session' as const, sessionsValidAfter });
    assert.deepEqual(
      refusal(() => assertMayAct(relocked, session(null))),
      ['invalid_token', 'session_revoked'],
    );
    assert.deepEqual(
      refusal(() => assertMayAct(relocked, session(lock.at - 1))),
      ['invalid_token', 'session_revoked'],
    );
    assert.equal(
      refusal(() => assertMayAct(relocked, session(lock.at))),
      undefined,
    );
    assert.equal(
      refusal(() => assertMayAct(enabled, session(null))),
      undefined,
    );
  });

  it('judges an IdP token by its iat (seconds: the lock second itself is refused), or without one by its expiry', () => {
    const idp = (issuedAt: number | null, expiresAt: number) => ({
      kind: 'idp' as const,
      issuedAt,
      expiresAt,
    });
    const lockSecond = Math.floor(lock.at / 1000) * 1000;
    assert.deepEqual(
      refusal(() => assertMayAct(relocked, idp(lockSecond, lockSecond + 3_600_000))),
      ['invalid_token', 'session_revoked'],
    );
    assert.equal(
      refusal(() => assertMayAct(relocked, idp(lockSecond + 1000, lockSecond + 3_601_000))),
      undefined,
    );
    const day = 24 * 3_600_000;
    assert.deepEqual(
      refusal(() => assertMayAct(relocked, idp(null, lock.at + day))),
      ['invalid_token', 'session_revoked'],
    );
    assert.equal(
      refusal(() => assertMayAct(relocked, idp(null, lock.at + day + 1))),
      undefined,
    );
  });
});
