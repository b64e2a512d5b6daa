import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ErrorCode, PortcullisError } from '../core/errors.js';
import {
  type Activation,
  type ActivationState,
  activationStates,
  cancel,
  canTransitionActivation,
  confirm,
  end,
  endIfExpired,
  expireIfWindowPassed,
  findAccount,
  type InitiateInput,
  initiate,
  isActivationLive,
  quorumCount,
  recordReview,
  recordRotation,
  requiresRotation,
  terminalActivationStates,
} from './activation.js';
import type { EmergencyAccount } from './emergency-account.js';

const t0 = Date.UTC(2025, 0, 6, 3, 0, 0);
const minute = 60_000;

const account: EmergencyAccount = {
  id: 'prod-db-breakglass',
  scope: { resourceId: 'orders-db', roles: ['read', 'write'] },
  maxDurationMinutes: 60,
  custodians: ['ana', 'ben', 'cho', 'dev'],
  quorum: 2,
  activationWindowMinutes: 10,
  alertChannels: ['security-webhook', 'oncall-mail'],
};
const quorum3: EmergencyAccount = { ...account, id: 'q3', quorum: 3 };

function input(overrides: Partial<InitiateInput> = {}): InitiateInput {
  return {
    id: 'bg-1',
    reason: 'IdP down, orders stuck',
    incident: 'INC-7',
    scope: { resourceId: 'orders-db', roles: ['write'] },
    durationMinutes: 30,
    ...overrides,
  };
}

const started = (a: EmergencyAccount = account) => initiate(a, 'ana', input(), t0);
const activeOne = () => confirm(started(), 'ben', t0 + minute);
const endedOne = () => end(activeOne(), 'ana', 'ended_by_user', t0 + 5 * minute);

function codeOf(run: () => unknown): ErrorCode | 'ok' {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof PortcullisError) return error.code;
    throw error;
  }
}

describe('break-glass activation scenarios', () => {
  const scenarios: ReadonlyArray<{ name: string; run: () => unknown; expect: ErrorCode | 'ok' }> = [
    { name: 'a custodian initiates within scope and limits', run: () => started(), expect: 'ok' },
    {
      name: 'activation of an unknown account',
      run: () => findAccount([account], 'nope'),
      expect: 'unknown_emergency_account',
    },
    {
      name: 'a non-custodian cannot initiate',
      run: () => initiate(account, 'mallory', input(), t0),
      expect: 'not_a_custodian',
    },
    {
      name: 'a request for another resource is outside the scope',
      run: () =>
        initiate(account, 'ana', input({ scope: { resourceId: 'billing-db', roles: ['read'] } }), t0),
      expect: 'scope_exceeded',
    },
    {
      name: 'a request for a role the account lacks is outside the scope',
      run: () =>
        initiate(account, 'ana', input({ scope: { resourceId: 'orders-db', roles: ['admin'] } }), t0),
      expect: 'scope_exceeded',
    },
    {
      name: 'a request with no roles is outside the scope',
      run: () => initiate(account, 'ana', input({ scope: { resourceId: 'orders-db', roles: [] } }), t0),
      expect: 'scope_exceeded',
    },
    {
      name: 'a duration above the account maximum',
      run: () => initiate(account, 'ana', input({ durationMinutes: 61 }), t0),
      expect: 'invalid_duration',
    },
    {
      name: 'a duration above the ceiling even if the account says more',
      run: () =>
        initiate({ ...account, maxDurationMinutes: 10_000 }, 'ana', input({ durationMinutes: 241 }), t0),
      expect: 'invalid_duration',
    },
    {
      name: 'a drill longer than the drill maximum',
      run: () => initiate(account, 'ana', input({ drill: true, durationMinutes: 16 }), t0),
      expect: 'invalid_duration',
    },
    {
      name: 'a fractional duration',
      run: () => initiate(account, 'ana', input({ durationMinutes: 1.5 }), t0),
      expect: 'invalid_duration',
    },
    {
      name: 'a missing reason',
      run: () => initiate(account, 'ana', input({ reason: '  ' }), t0),
      expect: 'validation_failed',
    },
    {
      name: 'a missing incident reference',
      run: () => initiate(account, 'ana', input({ incident: '' }), t0),
      expect: 'validation_failed',
    },
    {
      name: 'the initiator confirming their own activation',
      run: () => confirm(started(), 'ana', t0 + minute),
      expect: 'self_confirmation',
    },
    {
      name: 'a non-custodian confirming',
      run: () => confirm(started(), 'mallory', t0 + minute),
      expect: 'not_a_custodian',
    },
    {
      name: 'a custodian confirming twice',
      run: () => confirm(confirm(started(quorum3), 'ben', t0 + minute), 'ben', t0 + 2 * minute),
      expect: 'already_confirmed',
    },
    {
      name: 'confirmation after the window',
      run: () => confirm(started(), 'ben', t0 + 10 * minute),
      expect: 'confirmation_window_closed',
    },
    {
      name: 'confirmation of an active activation',
      run: () => confirm(activeOne(), 'cho', t0 + 2 * minute),
      expect: 'invalid_transition',
    },
    { name: 'another custodian confirms within the window', run: () => activeOne(), expect: 'ok' },
    {
      name: 'review by the user themself',
      run: () => recordReview(endedOne(), 'ana', 'fine', t0 + hourMs()),
      expect: 'self_review',
    },
    {
      name: 'review by a confirmer',
      run: () => recordReview(endedOne(), 'ben', 'fine', t0 + hourMs()),
      expect: 'self_review',
    },
    {
      name: 'review before the access ended',
      run: () => recordReview(activeOne(), 'cho', 'fine', t0 + 2 * minute),
      expect: 'invalid_transition',
    },
    {
      name: 'review by someone who took no part',
      run: () => recordReview(endedOne(), 'cho', 'fine', t0 + hourMs()),
      expect: 'ok',
    },
    {
      name: 'review without notes',
      run: () => recordReview(endedOne(), 'cho', ' ', t0 + hourMs()),
      expect: 'validation_failed',
    },
    {
      name: 'cancellation by a non-custodian',
      run: () => cancel(started(), 'mallory', t0 + minute),
      expect: 'not_a_custodian',
    },
    {
      name: 'cancellation of active access (end it instead)',
      run: () => cancel(activeOne(), 'ana', t0 + 2 * minute),
      expect: 'invalid_transition',
    },
    {
      name: 'rotation of an attempt that never activated',
      run: () => recordRotation(started(), 'ana', t0),
      expect: 'invalid_transition',
    },
  ];
  for (const s of scenarios) it(s.name, () => assert.equal(codeOf(s.run), s.expect));
});

function hourMs(): number {
  return 60 * minute;
}

describe('break-glass activation lifecycle', () => {
  it('starts awaiting quorum with the initiation on the timeline', () => {
    const a = started();
    assert.equal(a.state, 'awaiting_quorum');
    assert.deepEqual(
      a.timeline.map((e) => e.state),
      ['initiated', 'awaiting_quorum'],
    );
    assert.equal(a.windowEndsAt, t0 + 10 * minute);
    assert.equal(quorumCount(a), 1);
  });

  it('activates at the quorum with the hard expiry, then ends at it', () => {
    const a = activeOne();
    assert.equal(a.state, 'active');
    assert.equal(a.expiresAt, t0 + minute + 30 * minute);
    assert.equal(isActivationLive(a, t0 + 30 * minute), true);
    assert.equal(isActivationLive(a, t0 + 31 * minute), false);
    assert.equal(endIfExpired(a, t0 + 30 * minute), a);
    const ended = endIfExpired(a, t0 + 40 * minute);
    assert.equal(ended.state, 'ended');
    assert.equal(ended.endReason, 'expired');
    assert.equal(ended.endedAt, a.expiresAt, 'the hard expiry wins over a late sweep');
  });

  it('waits for a third person when the quorum is 3', () => {
    const one = confirm(started(quorum3), 'ben', t0 + minute);
    assert.equal(one.state, 'awaiting_quorum');
    assert.equal(confirm(one, 'cho', t0 + 2 * minute).state, 'active');
  });

  it('expires when the window passes before the quorum, and not before', () => {
    const a = started();
    assert.equal(expireIfWindowPassed(a, t0 + 9 * minute), a);
    const expired = expireIfWindowPassed(a, t0 + 10 * minute);
    assert.equal(expired.state, 'expired');
    assert.equal(expireIfWindowPassed(activeOne(), t0 + hourMs()).state, 'active');
  });

  it('snapshots custodians so a config change mid-activation changes nothing', () => {
    const a = started();
    assert.equal(
      codeOf(() => confirm(a, 'eve', t0 + minute)),
      'not_a_custodian',
    );
  });

  it('models drills as a flag with a short expiry', () => {
    const d = initiate(account, 'ana', input({ drill: true, durationMinutes: 5 }), t0);
    assert.equal(d.drill, true);
    assert.equal(confirm(d, 'ben', t0).expiresAt, t0 + 5 * minute);
  });

  it('owes no rotation after a drill', () => {
    const d = initiate(account, 'ana', input({ drill: true, durationMinutes: 5 }), t0);
    assert.equal(requiresRotation(confirm(d, 'ben', t0)), false);
  });

  it('owes a rotation once active, until it is recorded', () => {
    assert.equal(requiresRotation(started()), false);
    assert.equal(requiresRotation(activeOne()), true);
    const reviewed = recordReview(endedOne(), 'cho', 'ok', t0 + hourMs());
    assert.equal(reviewed.state, 'reviewed');
    assert.equal(requiresRotation(reviewed), true);
    assert.equal(requiresRotation(recordRotation(reviewed, 'cho', t0 + hourMs())), false);
  });
});

describe('activation transition table', () => {
  const expected: Record<ActivationState, readonly ActivationState[]> = {
    initiated: ['awaiting_quorum', 'expired', 'cancelled'],
    awaiting_quorum: ['active', 'expired', 'cancelled'],
    active: ['ended'],
    ended: ['reviewed'],
    reviewed: [],
    expired: [],
    cancelled: [],
  };
  for (const from of activationStates) {
    for (const to of activationStates) {
      const legal = expected[from].includes(to);
      it(`${from} → ${to} is ${legal ? 'allowed' : 'refused'}`, () =>
        assert.equal(canTransitionActivation(from, to), legal));
    }
  }
  it('terminal states are reviewed, expired and cancelled', () =>
    assert.deepEqual([...terminalActivationStates], ['reviewed', 'expired', 'cancelled']));
});

describe('activation properties', () => {
  const people = ['ana', 'ben', 'cho', 'dev', 'mallory'];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('confirm' as const),
      who: fc.constantFrom(...people),
      dt: fc.integer({ min: 0, max: 15 * minute }),
    }),
    fc.record({
      kind: fc.constant('expire' as const),
      who: fc.constantFrom(...people),
      dt: fc.integer({ min: 0, max: 15 * minute }),
    }),
    fc.record({
      kind: fc.constant('cancel' as const),
      who: fc.constantFrom(...people),
      dt: fc.integer({ min: 0, max: 15 * minute }),
    }),
  );

  it('never reaches active with fewer than quorum distinct custodians, nor counts the initiator twice', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }),
        fc.constantFrom(...people.slice(0, 4)),
        fc.array(op, { maxLength: 12 }),
        (q, initiator, ops) => {
          const acc = { ...account, quorum: q };
          let a: Activation = initiate(acc, initiator, input(), t0);
          let now = t0;
          for (const o of ops) {
            now += o.dt;
            try {
              if (o.kind === 'confirm') a = confirm(a, o.who, now);
              else if (o.kind === 'expire') a = expireIfWindowPassed(a, now);
              else a = cancel(a, o.who, now);
            } catch (error) {
              if (!(error instanceof PortcullisError)) throw error;
            }
            assert.ok(!a.confirmerIds.includes(a.initiatorId), 'the initiator never confirms');
            assert.equal(new Set(a.confirmerIds).size, a.confirmerIds.length, 'each confirmer counts once');
            assert.ok(
              a.confirmerIds.every((c) => acc.custodians.includes(c)),
              'only custodians confirm',
            );
            if (a.state === 'active') {
              assert.ok(quorumCount(a) >= q);
              assert.ok(1 + a.confirmerIds.length >= q);
              assert.ok(
                a.activatedAt !== null && a.activatedAt < a.windowEndsAt,
                'activated within the window',
              );
            }
          }
        },
      ),
    );
  });
});
