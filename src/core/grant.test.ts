import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PortcullisError } from './errors.js';
import {
  beginRevocation,
  type Grant,
  type GrantStatus,
  grantStatuses,
  lastErrorNotice,
  markApplied,
  markApplyFailed,
  markRevoked,
  markRevokeFailed,
  needsRevocation,
  newGrant,
  revocationBackoff,
  revocationDelayMs,
} from './grant.js';

const t0 = Date.UTC(2025, 0, 6, 9, 0, 0);
const second = 1000;
const minute = 60 * second;

function fresh(): Grant {
  return newGrant({
    id: 'grant-1',
    requestId: 'req-1',
    principalId: 'okta:alice',
    resourceId: 'orders-db',
    role: 'read',
    notBefore: t0,
    expiresAt: t0 + 30 * minute,
    artefacts: { login: 'pc_req1' },
  });
}

function inStatus(status: GrantStatus): Grant {
  return { ...fresh(), status };
}

/** Each operation and the status it moves a grant to. */
const operations: ReadonlyArray<readonly [string, GrantStatus, (g: Grant) => Grant]> = [
  ['markApplied', 'active', (g) => markApplied(g, {})],
  ['markApplyFailed', 'apply_failed', (g) => markApplyFailed(g, 'connection refused')],
  ['beginRevocation', 'revoking', (g) => beginRevocation(g, t0)],
  ['markRevoked', 'revoked', (g) => markRevoked(g, t0)],
  ['markRevokeFailed', 'revoke_failed', (g) => markRevokeFailed(g, 'timeout', t0)],
];

// The grant lifecycle (grant.ts): apply, then take back; a failed revocation is retried until it succeeds.
const lifecycle: ReadonlyArray<readonly [GrantStatus, GrantStatus]> = [
  ['applying', 'active'],
  ['applying', 'apply_failed'],
  ['active', 'revoking'],
  ['apply_failed', 'revoking'],
  ['revoking', 'revoked'],
  ['revoking', 'revoke_failed'],
  ['revoke_failed', 'revoke_failed'],
  ['revoke_failed', 'revoked'],
];

describe('grant state machine', () => {
  const legal = new Set(lifecycle.map(([from, to]) => `${from}→${to}`));

  for (const from of grantStatuses) {
    for (const [name, to, operation] of operations) {
      const allowed = legal.has(`${from}→${to}`);
      it(`${name}: ${from} → ${to} is ${allowed ? 'allowed' : 'refused'}`, () => {
        const grant = inStatus(from);
        if (allowed) {
          assert.equal(operation(grant).status, to);
          assert.equal(grant.status, from, 'the input grant is not mutated');
        } else {
          assert.throws(
            () => operation(grant),
            (error: unknown) => error instanceof PortcullisError && error.code === 'invalid_transition',
          );
        }
      });
    }
  }

  it('revoked is the only terminal status', () => {
    const withExits = new Set(lifecycle.map(([from]) => from));
    assert.deepEqual(
      grantStatuses.filter((s) => !withExits.has(s)),
      ['revoked'],
    );
  });

  it('a new grant is applying with no revocation scheduled', () => {
    const grant = fresh();
    assert.equal(grant.status, 'applying');
    assert.equal(grant.revokeAttempts, 0);
    assert.equal(grant.nextAttemptAt, null);
    assert.equal(grant.lastError, null);
    assert.equal(grant.revokedAt, null);
  });

  it('markApplied merges what the provisioner created into the planned artefacts', () => {
    const applied = markApplied(fresh(), { password_set: true });
    assert.deepEqual(applied.artefacts, { login: 'pc_req1', password_set: true });
  });

  it('markApplyFailed keeps the error', () => {
    assert.equal(markApplyFailed(fresh(), 'connection refused').lastError, 'connection refused');
  });

  it('beginRevocation makes the first attempt due at once', () => {
    const revoking = beginRevocation(markApplied(fresh(), {}), t0 + minute);
    assert.equal(revoking.nextAttemptAt, t0 + minute);
    assert.equal(needsRevocation(revoking, t0 + minute), true);
  });

  it('markRevoked clears the schedule and the last error', () => {
    const failed = markRevokeFailed(beginRevocation(markApplied(fresh(), {}), t0), 'timeout', t0, 'ref1');
    const revoked = markRevoked(failed, t0 + minute);
    assert.equal(revoked.revokedAt, t0 + minute);
    assert.equal(revoked.nextAttemptAt, null);
    assert.equal(revoked.lastError, null);
    assert.equal(revoked.lastErrorReference, null);
    assert.equal(revoked.revokeAttempts, 1, 'the attempt count stays as history');
  });
});

describe("a target's own error text", () => {
  const said = 'role "pg_admin" at 10.0.0.5 is not permitted to log in';

  it('is replaced by a notice naming its reference, per what failed', () => {
    const applyFailed = beginRevocation(markApplyFailed(fresh(), said, 'abc123'), t0);
    assert.equal(applyFailed.lastError, said);
    assert.equal(applyFailed.lastErrorReference, 'abc123');
    assert.equal(
      lastErrorNotice(applyFailed),
      'Provisioning failed at the target (reference abc123); an administrator can find the details in the audit log under that reference',
    );
    const revokeFailed = markRevokeFailed(applyFailed, said, t0, 'def456');
    assert.match(
      String(lastErrorNotice(revokeFailed)),
      /^Revocation failed at the target \(reference def456\)/,
    );
  });

  it("Portcullis' own text (no reference) is shown as it is", () => {
    const failed = markRevokeFailed(
      beginRevocation(markApplied(fresh(), {}), t0),
      'Unknown resource "x"',
      t0,
    );
    assert.equal(failed.lastErrorReference, null);
    assert.equal(lastErrorNotice(failed), 'Unknown resource "x"');
    assert.equal(lastErrorNotice(fresh()), null);
  });
});

describe('revocation backoff', () => {
  const expected: ReadonlyArray<readonly [number, number]> = [
    [1, 500],
    [2, 1_000],
    [3, 2_000],
    [4, 4_000],
    [5, 8_000],
    [6, 16_000],
    [7, 32_000],
    [8, 64_000],
    [9, 128_000],
    [10, 256_000],
    [11, 300_000],
    [12, 300_000],
    [100, 300_000],
    [1_000_000, 300_000],
  ];
  for (const [attempts, delay] of expected) {
    it(`after ${attempts} failed attempt(s) the next try waits ${delay / 1000} s`, () => {
      assert.equal(revocationDelayMs(attempts), delay);
    });
  }

  it('is 0.5 s capped at 5 min', () => {
    assert.deepEqual(revocationBackoff, { baseMs: 500, maxMs: 5 * 60_000 });
  });

  it('never shrinks and stays between 0.5 s and 5 min, for any attempt count', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 1 }), (attempts) => {
        const delay = revocationDelayMs(attempts);
        assert.ok(Number.isInteger(delay));
        assert.ok(delay >= revocationBackoff.baseMs && delay <= revocationBackoff.maxMs);
        assert.ok(revocationDelayMs(attempts + 1) >= delay);
      }),
    );
  });

  it('a failing revocation is never dropped: every failure schedules the next attempt', () => {
    let now = t0;
    let grant = beginRevocation(markApplied(fresh(), {}), now);
    for (let attempt = 1; attempt <= 60; attempt++) {
      assert.equal(needsRevocation(grant, now), true, `attempt ${attempt} is due`);
      grant = markRevokeFailed(grant, `error ${attempt}`, now);
      const delay = revocationDelayMs(attempt);
      assert.equal(grant.status, 'revoke_failed');
      assert.equal(grant.revokeAttempts, attempt);
      assert.equal(grant.lastError, `error ${attempt}`);
      assert.equal(grant.nextAttemptAt, now + delay);
      assert.equal(needsRevocation(grant, now + delay - 1), false, 'not due before the backoff');
      now += delay;
    }
    assert.equal(grant.nextAttemptAt, now);
    assert.equal(revocationDelayMs(grant.revokeAttempts), revocationBackoff.maxMs);
    const revoked = markRevoked(grant, now);
    assert.equal(revoked.status, 'revoked');
    assert.equal(needsRevocation(revoked, now + 365 * 86_400_000), false);
  });
});

describe('needsRevocation', () => {
  const cases: ReadonlyArray<readonly [string, Grant, number, boolean]> = [
    ['applying: no', inStatus('applying'), t0, false],
    ['active: no (expiry begins revocation first)', inStatus('active'), t0 + 365 * 86_400_000, false],
    ['apply_failed: no until revocation begins', inStatus('apply_failed'), t0, false],
    ['revoked: no', inStatus('revoked'), t0, false],
    ['revoking, due now: yes', { ...inStatus('revoking'), nextAttemptAt: t0 }, t0, true],
    ['revoking, overdue: yes', { ...inStatus('revoking'), nextAttemptAt: t0 }, t0 + minute, true],
    ['revoking, not yet due: no', { ...inStatus('revoking'), nextAttemptAt: t0 + 1 }, t0, false],
    [
      'revoking without a schedule: yes (never stranded)',
      { ...inStatus('revoking'), nextAttemptAt: null },
      t0,
      true,
    ],
    ['revoke_failed, due: yes', { ...inStatus('revoke_failed'), nextAttemptAt: t0 }, t0, true],
    [
      'revoke_failed, backing off: no',
      { ...inStatus('revoke_failed'), nextAttemptAt: t0 + second },
      t0,
      false,
    ],
    [
      'revoke_failed without a schedule: yes',
      { ...inStatus('revoke_failed'), nextAttemptAt: null },
      t0,
      true,
    ],
  ];
  for (const [description, grant, now, expected] of cases) {
    it(description, () => assert.equal(needsRevocation(grant, now), expected));
  }
});
