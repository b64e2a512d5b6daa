import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AccessRequest,
  activate,
  applyReview,
  assertTransition,
  cancel,
  canTransition,
  denyOnRecheck,
  type EndedBy,
  expire,
  isAccessLive,
  isPastReviewDeadline,
  lapse,
  markFailed,
  maxDurationSeconds,
  type NewRequestInput,
  openRequest,
  type RequestState,
  requestStates,
  revoke,
  routeStillCovers,
  terminalStates,
  type Verdict,
} from './access-request.js';
import { type ErrorCode, PortcullisError } from './errors.js';
import type { ApprovalRoute } from './policy-decision.js';
import { type Principal, principalId } from './principal.js';

const t0 = Date.UTC(2025, 0, 6, 9, 0, 0);
const minute = 60_000;
const hour = 60 * minute;

function person(subject: string, groups: readonly string[]): Principal {
  return {
    id: principalId('okta', subject),
    idp: 'okta',
    subject,
    displayName: subject,
    email: null,
    groups,
  };
}

const alice = person('alice', ['engineering', 'sre']); // the requester in every scenario
const bob = person('bob', ['sre']);
const carol = person('carol', ['dba']);
const dave = person('dave', ['sre', 'dba']);
const erin = person('erin', ['marketing']);

function route(overrides: Partial<ApprovalRoute> = {}): ApprovalRoute {
  return {
    requiredApprovals: 1,
    approverGroups: ['sre', 'dba'],
    maxDurationSeconds: 3600,
    autoApprove: false,
    policyId: 'prod-db-read',
    ...overrides,
  };
}

function input(overrides: Partial<NewRequestInput> = {}): NewRequestInput {
  return {
    id: 'req-1',
    requester: alice,
    resourceId: 'orders-db',
    role: 'read',
    durationSeconds: 1800,
    reason: 'INC-42 investigate slow query',
    ticket: 'INC-42',
    pendingTtlSeconds: 86_400,
    ...overrides,
  };
}

function pending(routeOverrides: Partial<ApprovalRoute> = {}): AccessRequest {
  return openRequest(input(), route(routeOverrides), t0);
}

function approvedRequest(): AccessRequest {
  return applyReview(
    pending(),
    { reviewer: bob, verdict: 'approve', reason: 'ok', policyAllows: true },
    t0 + minute,
  );
}

function activeRequest(at = t0 + 2 * minute): AccessRequest {
  return activate(approvedRequest(), at);
}

/** Asserts `fn` throws a PortcullisError with `code`, and returns it. */
function throwsCode(fn: () => unknown, code: ErrorCode): PortcullisError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PortcullisError, `expected a PortcullisError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

// The lifecycle as documented at the top of access-request.ts; every other pair must be refused.
const lifecycle: ReadonlyArray<readonly [RequestState, RequestState]> = [
  ['pending', 'approved'],
  ['pending', 'denied'],
  ['pending', 'cancelled'],
  ['pending', 'expired'],
  ['approved', 'active'],
  ['approved', 'denied'],
  ['approved', 'failed'],
  ['approved', 'cancelled'],
  ['active', 'expired'],
  ['active', 'revoked'],
];
describe('applyReview: one table of scenarios', () => {
  interface Step {
    readonly reviewer: Principal;
    readonly verdict: Verdict;
    readonly reason?: string;
    /** Whether the policy set authorises this reviewer for `approve`; true unless said otherwise. */
    readonly policyAllows?: boolean;
  }
  interface Scenario {
    readonly description: string;
    readonly route?: Partial<ApprovalRoute>;
    /** Brings the fresh pending request into the state the scenario starts from. */
    readonly given?: (request: AccessRequest) => AccessRequest;
    /** Every step but the last must be accepted; the expectation is about the last. */
    readonly steps: readonly Step[];
    readonly expect:
      | { readonly error: ErrorCode }
      | {
          readonly state: RequestState;
          readonly approvals: number;
          readonly version: number;
          readonly endReason?: string | null;
        };
  }

  const scenarios: readonly Scenario[] = [
    {
      description: 'cannot review own request, even as a member of an approver group',
      steps: [{ reviewer: alice, verdict: 'approve' }],
      expect: { error: 'self_review' },
    },
    {
      description: 'cannot deny own request either',
      steps: [{ reviewer: alice, verdict: 'deny' }],
      expect: { error: 'self_review' },
    },
    {
      description: 'one approval from an approver-group member approves a one-approval route',
      steps: [{ reviewer: bob, verdict: 'approve' }],
      expect: { state: 'approved', approvals: 1, version: 2, endReason: null },
    },
    {
      description: 'a second review by the same person is refused (already_reviewed)',
      route: { requiredApprovals: 2 },
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: bob, verdict: 'approve' },
      ],
      expect: { error: 'already_reviewed' },
    },
    {
      description: 'a reviewer cannot change their approval into a denial',
      route: { requiredApprovals: 2 },
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: bob, verdict: 'deny' },
      ],
      expect: { error: 'already_reviewed' },
    },
    {
      description: 'a person in two approver groups counts once toward a two-approval route',
      route: { requiredApprovals: 2, approverGroups: ['sre', 'dba'] },
      steps: [{ reviewer: dave, verdict: 'approve' }],
      expect: { state: 'pending', approvals: 1, version: 2 },
    },
    {
      description: 'two distinct people reach a two-approval threshold',
      route: { requiredApprovals: 2 },
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: carol, verdict: 'approve' },
      ],
      expect: { state: 'approved', approvals: 2, version: 3 },
    },
    {
      description: 'three approvals needed: two distinct people leave it pending',
      route: { requiredApprovals: 3 },
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: dave, verdict: 'approve' },
      ],
      expect: { state: 'pending', approvals: 2, version: 3 },
    },
    {
      description: 'a denial by an authorised approver ends the request with its reason',
      steps: [{ reviewer: carol, verdict: 'deny', reason: 'not during the freeze' }],
      expect: { state: 'denied', approvals: 0, version: 2, endReason: 'not during the freeze' },
    },
    {
      description: 'a denial without a reason ends the request as "denied"',
      steps: [{ reviewer: carol, verdict: 'deny', reason: '' }],
      expect: { state: 'denied', approvals: 0, version: 2, endReason: 'denied' },
    },
    {
      description: 'a denial after one approval still ends a two-approval request',
      route: { requiredApprovals: 2 },
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: carol, verdict: 'deny', reason: 'no' },
      ],
      expect: { state: 'denied', approvals: 1, version: 3, endReason: 'no' },
    },
    {
      description: 'a reviewer outside the route approver groups is not an approver',
      steps: [{ reviewer: erin, verdict: 'approve' }],
      expect: { error: 'not_an_approver' },
    },
    {
      description: 'a reviewer outside the route approver groups cannot deny either',
      steps: [{ reviewer: erin, verdict: 'deny' }],
      expect: { error: 'not_an_approver' },
    },
    {
      description:
        'policy says no: an approver-group member the policy does not authorise is not an approver',
      steps: [{ reviewer: bob, verdict: 'approve', policyAllows: false }],
      expect: { error: 'not_an_approver' },
    },
    {
      description: 'policy says no to a denial too',
      steps: [{ reviewer: bob, verdict: 'deny', policyAllows: false }],
      expect: { error: 'not_an_approver' },
    },
    {
      description: 'a route with no approver groups accepts anyone the policy authorises',
      route: { approverGroups: [] },
      steps: [{ reviewer: erin, verdict: 'approve' }],
      expect: { state: 'approved', approvals: 1, version: 2 },
    },
    {
      description: 'a route with no approver groups still needs the policy to allow',
      route: { approverGroups: [] },
      steps: [{ reviewer: erin, verdict: 'approve', policyAllows: false }],
      expect: { error: 'not_an_approver' },
    },
    {
      description: 'zero required approvals without auto-approve still needs one approval',
      route: { requiredApprovals: 0, autoApprove: false },
      steps: [{ reviewer: bob, verdict: 'approve' }],
      expect: { state: 'approved', approvals: 1, version: 2 },
    },
    {
      description: 'an approval after the threshold was reached is refused (invalid_transition)',
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: carol, verdict: 'approve' },
      ],
      expect: { error: 'invalid_transition' },
    },
    {
      description: 'a review of a denied request is refused (invalid_transition)',
      steps: [
        { reviewer: bob, verdict: 'deny' },
        { reviewer: carol, verdict: 'approve' },
      ],
      expect: { error: 'invalid_transition' },
    },
    {
      description: 'a review of a cancelled request is refused (invalid_transition)',
      given: (r) => cancel(r, alice, t0 + 1),
      steps: [{ reviewer: bob, verdict: 'approve' }],
      expect: { error: 'invalid_transition' },
    },
    {
      description: 'a review of an active request is refused (invalid_transition)',
      given: (r) =>
        activate(
          applyReview(r, { reviewer: carol, verdict: 'approve', reason: '', policyAllows: true }, t0 + 1),
          t0 + 2,
        ),
      steps: [{ reviewer: bob, verdict: 'deny' }],
      expect: { error: 'invalid_transition' },
    },
    {
      description: 'an auto-approved request cannot be reviewed (invalid_transition)',
      route: { autoApprove: true, requiredApprovals: 0, approverGroups: [] },
      steps: [{ reviewer: bob, verdict: 'approve' }],
      expect: { error: 'invalid_transition' },
    },
    {
      description:
        'the requester reviewing a request that is no longer pending gets invalid_transition first',
      steps: [
        { reviewer: bob, verdict: 'approve' },
        { reviewer: alice, verdict: 'approve' },
      ],
      expect: { error: 'invalid_transition' },
    },
  ];

  for (const scenario of scenarios) {
    it(scenario.description, () => {
      const opened = pending(scenario.route);
      let request = scenario.given ? scenario.given(opened) : opened;
      const steps = scenario.steps;
      let now = t0 + 10 * minute;
      const review = (step: Step) =>
        applyReview(
          request,
          {
            reviewer: step.reviewer,
            verdict: step.verdict,
            reason: step.reason ?? `${step.verdict} by ${step.reviewer.subject}`,
            policyAllows: step.policyAllows ?? true,
          },
          now,
        );
      for (const step of steps.slice(0, -1)) {
        const before = request;
        request = review(step);
        assert.equal(request.version, before.version + 1, 'every accepted review increments version');
        now += minute;
      }
      const last = steps.at(-1);
      assert.ok(last);
      if ('error' in scenario.expect) {
        const before = request;
        throwsCode(() => review(last), scenario.expect.error);
        assert.equal(request, before, 'a refused review leaves the request untouched');
        return;
      }
      const before = request;
      const after = review(last);
      const expected = scenario.expect;
      assert.equal(after.state, expected.state);
      assert.equal(after.version, expected.version);
      assert.equal(after.version, before.version + 1);
      assert.equal(after.updatedAt, now);
      assert.equal(after.reviews.length, before.reviews.length + 1);
      assert.equal(after.reviews.at(-1)?.reviewerId, last.reviewer.id);
      assert.equal(after.reviews.at(-1)?.at, now);
      assert.equal(after.reviews.filter((r) => r.verdict === 'approve').length, expected.approvals);
      if (expected.endReason !== undefined) assert.equal(after.endReason, expected.endReason);
      assert.equal(after.endedAt, expected.state === 'denied' ? now : null);
      assert.equal(before.state, 'pending', 'the input request is not mutated');
    });
  }
});

describe('transition table', () => {
  const legal = new Set(lifecycle.map(([from, to]) => `${from}→${to}`));

  for (const from of requestStates) {
    for (const to of requestStates) {
      const allowed = legal.has(`${from}→${to}`);
      it(`${from} → ${to} is ${allowed ? 'allowed' : 'refused'}`, () => {
        assert.equal(canTransition(from, to), allowed);
        if (allowed) {
          assert.doesNotThrow(() => assertTransition(from, to));
        } else {
          const error = throwsCode(() => assertTransition(from, to), 'invalid_transition');
          assert.deepEqual(error.details, { state: from, target: to });
        }
      });
    }
  }

  it('terminal states are exactly those with no exits', () => {
    const withExits = new Set(lifecycle.map(([from]) => from));
    assert.deepEqual([...terminalStates].sort(), requestStates.filter((s) => !withExits.has(s)).sort());
    assert.deepEqual([...terminalStates].sort(), ['cancelled', 'denied', 'expired', 'failed', 'revoked']);
    for (const from of terminalStates) {
      assert.ok(
        requestStates.every((to) => !canTransition(from, to)),
        `${from} has an exit`,
      );
    }
  });

  it('no state transitions to itself', () => {
    for (const s of requestStates) assert.equal(canTransition(s, s), false, s);
  });
});

describe('openRequest', () => {
  const refused: ReadonlyArray<readonly [string, number, Partial<ApprovalRoute>]> = [
    ['a zero duration', 0, {}],
    ['a negative duration', -60, {}],
    ['a fractional duration', 1.5, {}],
    ['a NaN duration', Number.NaN, {}],
    ['an infinite duration', Number.POSITIVE_INFINITY, {}],
    ['a duration one second above the route maximum', 3601, { maxDurationSeconds: 3600 }],
    [
      'a duration above the absolute ceiling even when the route allows more',
      maxDurationSeconds + 1,
      { maxDurationSeconds: 30 * 86_400 },
    ],
    ['any duration when the route maximum is not a number', 60, { maxDurationSeconds: Number.NaN }],
  ];
  for (const [description, durationSeconds, routeOverrides] of refused) {
    it(`refuses ${description} (invalid_duration)`, () => {
      throwsCode(
        () => openRequest(input({ durationSeconds }), route(routeOverrides), t0),
        'invalid_duration',
      );
    });
  }

  it('reports the effective ceiling and the deciding policy', () => {
    const error = throwsCode(
      () =>
        openRequest(input({ durationSeconds: 8 * 86_400 }), route({ maxDurationSeconds: 30 * 86_400 }), t0),
      'invalid_duration',
    );
    assert.deepEqual(error.details, { maxDurationSeconds, policyId: 'prod-db-read' });
  });

  const accepted: ReadonlyArray<readonly [string, number, Partial<ApprovalRoute>]> = [
    ['one second', 1, {}],
    ['exactly the route maximum', 3600, { maxDurationSeconds: 3600 }],
    ['exactly the absolute ceiling', maxDurationSeconds, { maxDurationSeconds: 30 * 86_400 }],
  ];
  for (const [description, durationSeconds, routeOverrides] of accepted) {
    it(`accepts ${description}`, () => {
      const request = openRequest(input({ durationSeconds }), route(routeOverrides), t0);
      assert.equal(request.durationSeconds, durationSeconds);
    });
  }

  it('the absolute ceiling is seven days', () => {
    assert.equal(maxDurationSeconds, 7 * 24 * 3600);
  });

  it('whatever the route says, an accepted duration is a whole number within both ceilings', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -10, max: 2 * maxDurationSeconds }), fc.double()),
        fc.oneof(
          fc.integer({ min: -10, max: 4 * maxDurationSeconds }),
          fc.double(),
          fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        ),
        (durationSeconds, routeMax) => {
          let request: AccessRequest;
          try {
            request = openRequest(input({ durationSeconds }), route({ maxDurationSeconds: routeMax }), t0);
          } catch (error) {
            assert.ok(error instanceof PortcullisError && error.code === 'invalid_duration');
            return;
          }
          assert.ok(Number.isInteger(request.durationSeconds) && request.durationSeconds >= 1);
          assert.ok(request.durationSeconds <= routeMax && request.durationSeconds <= maxDurationSeconds);
        },
      ),
    );
  });

  it('a new request is pending, version 1, with nothing started', () => {
    const request = pending();
    assert.deepEqual(
      {
        state: request.state,
        version: request.version,
        requesterId: request.requesterId,
        createdAt: request.createdAt,
        updatedAt: request.updatedAt,
        reviews: request.reviews,
        activatedAt: request.activatedAt,
        expiresAt: request.expiresAt,
        endedAt: request.endedAt,
        endReason: request.endReason,
      },
      {
        state: 'pending',
        version: 1,
        requesterId: 'okta:alice',
        createdAt: t0,
        updatedAt: t0,
        reviews: [],
        activatedAt: null,
        expiresAt: null,
        endedAt: null,
        endReason: null,
      },
    );
  });

  it('an auto-approve route approves at once, without reviews', () => {
    const request = pending({ autoApprove: true, requiredApprovals: 0, approverGroups: [] });
    assert.equal(request.state, 'approved');
    assert.equal(request.version, 1);
    assert.deepEqual(request.reviews, []);
  });

  it('auto-approve with approvals above zero still waits for review', () => {
    assert.equal(pending({ autoApprove: true, requiredApprovals: 1 }).state, 'pending');
  });
});

describe('activate', () => {
  it('starts the clock at activation: waiting for approval is not taken from the duration', () => {
    const created = openRequest(input({ durationSeconds: 1800 }), route(), t0);
    const approved = applyReview(
      created,
      { reviewer: bob, verdict: 'approve', reason: 'ok', policyAllows: true },
      t0 + 3 * hour,
    );
    const activatedAt = t0 + 5 * hour;
    const active = activate(approved, activatedAt);
    assert.equal(active.state, 'active');
    assert.equal(active.activatedAt, activatedAt);
    assert.equal(active.expiresAt, activatedAt + 1800 * 1000);
    assert.equal(active.createdAt, t0);
    assert.equal(active.version, approved.version + 1);
  });

  it('expiresAt = activatedAt + duration, whenever the request was created', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.integer({ min: 1, max: 3600 }),
        (createdOffset, wait, durationSeconds) => {
          const createdAt = t0 + createdOffset;
          const auto = openRequest(
            input({ durationSeconds }),
            route({ autoApprove: true, requiredApprovals: 0 }),
            createdAt,
          );
          const active = activate(auto, createdAt + wait);
          assert.equal(active.expiresAt, createdAt + wait + durationSeconds * 1000);
        },
      ),
    );
  });

  it('refuses a request that is not approved', () => {
    throwsCode(() => activate(pending(), t0), 'invalid_transition');
    throwsCode(() => activate(activeRequest(), t0 + hour), 'invalid_transition');
  });
});

describe('markFailed', () => {
  it('ends an approved request that could not be provisioned', () => {
    const failed = markFailed(approvedRequest(), 'role already exists', t0 + 5 * minute);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.endReason, 'role already exists');
    assert.equal(failed.endedAt, t0 + 5 * minute);
  });

  it('refuses an active request', () => {
    throwsCode(() => markFailed(activeRequest(), 'x', t0 + hour), 'invalid_transition');
  });
});

describe('expire', () => {
  const active = activeRequest(t0 + 2 * minute);
  const expiresAt = active.expiresAt ?? Number.NaN;

  it('refuses before expiresAt', () => {
    throwsCode(() => expire(active, expiresAt - 1), 'invalid_transition');
    throwsCode(() => expire(active, t0), 'invalid_transition');
  });

  it('works exactly at expiresAt', () => {
    const expired = expire(active, expiresAt);
    assert.equal(expired.state, 'expired');
    assert.equal(expired.endedAt, expiresAt);
    assert.equal(expired.endReason, 'expired');
    assert.equal(expired.version, active.version + 1);
  });

  it('works after expiresAt and records the scheduled end, not the late observation', () => {
    const expired = expire(active, expiresAt + hour);
    assert.equal(expired.state, 'expired');
    assert.equal(expired.endedAt, expiresAt);
    assert.equal(expired.updatedAt, expiresAt + hour);
  });

  it('refuses a request that never became active', () => {
    throwsCode(() => expire(approvedRequest(), t0 + 100 * hour), 'invalid_transition');
  });

  it('refuses a request already revoked', () => {
    const revoked = revoke(active, bob, 'owner', '', expiresAt - 1);
    throwsCode(() => expire(revoked, expiresAt + 1), 'invalid_transition');
  });
});

describe('revoke and release', () => {
  const active = activeRequest();
  const at = t0 + 10 * minute;

  it('an owner revokes active access', () => {
    const revoked = revoke(active, bob, 'owner', 'suspicious queries', at);
    assert.equal(revoked.state, 'revoked');
    assert.equal(revoked.endedAt, at);
    assert.equal(revoked.endReason, 'revoked: suspicious queries');
    assert.equal(revoked.version, active.version + 1);
  });

  it('an owner revocation without a reason says "revoked"', () => {
    assert.equal(revoke(active, bob, 'owner', '', at).endReason, 'revoked');
  });

  it('the requester releases their own access', () => {
    const released = revoke(active, alice, 'requester', 'done', at);
    assert.equal(released.state, 'revoked');
    assert.equal(released.endReason, 'released by requester: done');
  });

  it('only the requester may release (forbidden for anyone else)', () => {
    throwsCode(() => revoke(active, bob, 'requester', 'done', at), 'forbidden');
  });

  const notActive: ReadonlyArray<readonly [string, () => AccessRequest]> = [
    ['pending', () => pending()],
    ['approved', () => approvedRequest()],
    ['expired', () => expire(active, active.expiresAt ?? 0)],
  ];
  for (const [state, make] of notActive) {
    for (const by of ['owner', 'requester'] as const satisfies readonly EndedBy[]) {
      it(`a ${state} request cannot be ended by the ${by} (invalid_transition)`, () => {
        throwsCode(() => revoke(make(), alice, by, '', at), 'invalid_transition');
      });
    }
  }
});

describe('cancel', () => {
  it('the requester cancels a pending request', () => {
    const cancelled = cancel(pending(), alice, t0 + minute);
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.endedAt, t0 + minute);
    assert.equal(cancelled.endReason, 'cancelled by requester');
    assert.equal(cancelled.version, 2);
  });

  it('the requester cancels an approved request that is not yet active', () => {
    assert.equal(cancel(approvedRequest(), alice, t0 + 5 * minute).state, 'cancelled');
  });

  it('nobody else may cancel, not even an approver (forbidden)', () => {
    throwsCode(() => cancel(pending(), bob, t0 + minute), 'forbidden');
    throwsCode(() => cancel(approvedRequest(), dave, t0 + minute), 'forbidden');
  });

  it('active access is released, not cancelled (invalid_transition)', () => {
    throwsCode(() => cancel(activeRequest(), alice, t0 + hour), 'invalid_transition');
  });
});

describe('review deadline and lapse', () => {
  const ttl = 4 * hour;

  it('a pending request must be reviewed within pending_ttl of being made; an auto-approved one has no deadline', () => {
    assert.equal(openRequest(input({ pendingTtlSeconds: ttl / 1000 }), route(), t0).reviewBy, t0 + ttl);
    const auto = openRequest(input(), route({ autoApprove: true, requiredApprovals: 0 }), t0);
    assert.equal(auto.reviewBy, undefined);
    assert.equal(isPastReviewDeadline(auto, t0 + 100 * hour), false);
  });

  it('a review one millisecond before the deadline counts; at the deadline it is refused (request_expired)', () => {
    const request = openRequest(
      input({ pendingTtlSeconds: ttl / 1000 }),
      route({ requiredApprovals: 2 }),
      t0,
    );
    const review = { reviewer: bob, verdict: 'approve' as const, reason: '', policyAllows: true };
    assert.equal(applyReview(request, review, t0 + ttl - 1).reviews.length, 1);
    const error = throwsCode(() => applyReview(request, review, t0 + ttl), 'request_expired');
    assert.deepEqual(error.details, { reviewBy: new Date(t0 + ttl).toISOString() });
  });

  it('lapse ends a pending request expired, dated at its deadline, keeping the approvals it had', () => {
    const opened = openRequest(input({ pendingTtlSeconds: ttl / 1000 }), route({ requiredApprovals: 2 }), t0);
    const halfway = applyReview(
      opened,
      { reviewer: bob, verdict: 'approve', reason: '', policyAllows: true },
      t0 + hour,
    );
    const lapsed = lapse(halfway, t0 + ttl + 700);
    assert.equal(lapsed.state, 'expired');
    assert.equal(lapsed.endedAt, t0 + ttl);
    assert.equal(lapsed.endReason, 'not reviewed in time');
    assert.equal(lapsed.reviews.length, 1);
    assert.equal(lapsed.expiresAt, null, 'no access was ever given');
  });

  it('lapse refuses before the deadline and any request that is not pending', () => {
    const request = openRequest(input({ pendingTtlSeconds: ttl / 1000 }), route(), t0);
    throwsCode(() => lapse(request, t0 + ttl - 1), 'invalid_transition');
    const approved = applyReview(
      request,
      { reviewer: bob, verdict: 'approve', reason: '', policyAllows: true },
      t0 + 1,
    );
    throwsCode(() => lapse(approved, t0 + 2 * ttl), 'invalid_transition');
  });

  it('the requester may still cancel a request past its deadline that has not lapsed yet', () => {
    const request = openRequest(input({ pendingTtlSeconds: ttl / 1000 }), route(), t0);
    assert.equal(cancel(request, alice, t0 + 2 * ttl).state, 'cancelled');
  });
});

describe('isAccessLive', () => {
  const activatedAt = t0 + 2 * minute;
  const active = activeRequest(activatedAt);
  const expiresAt = active.expiresAt ?? Number.NaN;

  const cases: ReadonlyArray<readonly [string, Pick<AccessRequest, 'state' | 'expiresAt'>, number, boolean]> =
    [
      ['live at the moment of activation', active, activatedAt, true],
      ['live one millisecond before expiresAt', active, expiresAt - 1, true],
      ['not live exactly at expiresAt', active, expiresAt, false],
      ['not live after expiresAt', active, expiresAt + 1, false],
      [
        'not live once revoked, even before expiresAt',
        revoke(active, bob, 'owner', '', activatedAt + 1),
        activatedAt + 2,
        false,
      ],
      ['not live when approved but not activated', approvedRequest(), activatedAt, false],
      [
        'not live when active without an end (corrupt row)',
        { state: 'active', expiresAt: null },
        activatedAt,
        false,
      ],
      ['not live when expired', expire(active, expiresAt), expiresAt - 1, false],
    ];
  for (const [description, request, now, live] of cases) {
    it(description, () => assert.equal(isAccessLive(request, now), live));
  }
});

describe('properties over random operation sequences', () => {
  const people = [alice, bob, carol, dave, erin] as const;
  const arbPerson = fc.constantFrom(...people);
  const arbOperation = fc.oneof(
    fc.record({
      op: fc.constant('review' as const),
      reviewer: arbPerson,
      verdict: fc.constantFrom<Verdict>('approve', 'deny'),
      policyAllows: fc.boolean(),
    }),
    fc.record({ op: fc.constant('activate' as const) }),
    fc.record({ op: fc.constant('fail' as const) }),
    fc.record({ op: fc.constant('expire' as const) }),
    fc.record({
      op: fc.constant('revoke' as const),
      actor: arbPerson,
      by: fc.constantFrom<EndedBy>('owner', 'requester'),
    }),
    fc.record({ op: fc.constant('cancel' as const), actor: arbPerson }),
    fc.record({ op: fc.constant('recheck' as const) }),
    fc.record({ op: fc.constant('lapse' as const) }),
  );
  type Operation = typeof arbOperation extends fc.Arbitrary<infer T> ? T : never;
  const arbStep = fc.record({ operation: arbOperation, elapsedMs: fc.integer({ min: 0, max: 2 * hour }) });
  const arbRoute = fc.record({
    requiredApprovals: fc.integer({ min: 0, max: 3 }),
    approverGroups: fc.subarray(['sre', 'dba', 'marketing']),
    maxDurationSeconds: fc.integer({ min: 60, max: maxDurationSeconds }),
    autoApprove: fc.boolean(),
    policyId: fc.constant('random-policy'),
  });

  function apply(request: AccessRequest, operation: Operation, now: number): AccessRequest {
    switch (operation.op) {
      case 'review':
        return applyReview(
          request,
          {
            reviewer: operation.reviewer,
            verdict: operation.verdict,
            reason: 'r',
            policyAllows: operation.policyAllows,
          },
          now,
        );
      case 'activate':
        return activate(request, now);
      case 'fail':
        return markFailed(request, 'provisioning failed', now);
      case 'expire':
        return expire(request, now);
      case 'revoke':
        return revoke(request, operation.actor, operation.by, 'r', now);
      case 'cancel':
        return cancel(request, operation.actor, now);
      case 'recheck':
        return denyOnRecheck(request, 'denied on re-check', now);
      case 'lapse':
        return lapse(request, now);
    }
  }

  it('no sequence of operations leaves the transition table; version rises by one per accepted change', () => {
    const observed = new Set<string>();
    fc.assert(
      fc.property(arbRoute, fc.array(arbStep, { maxLength: 30 }), (randomRoute, steps) => {
        let now = t0;
        let request = openRequest(
          input({ durationSeconds: 60, pendingTtlSeconds: 6 * 3600 }),
          randomRoute,
          now,
        );
        for (const { operation, elapsedMs } of steps) {
          now += elapsedMs;
          const before = request;
          let after: AccessRequest;
          try {
            after = apply(before, operation, now);
          } catch (error) {
            assert.ok(error instanceof PortcullisError, `unexpected ${String(error)}`);
            assert.ok(error.status < 500, 'refusals are client errors');
            continue;
          }
          assert.ok(
            after.state === before.state || canTransition(before.state, after.state),
            `${operation.op} moved ${before.state} → ${after.state}`,
          );
          assert.ok(
            !terminalStates.includes(before.state),
            `${operation.op} changed a ${before.state} request`,
          );
          assert.equal(after.version, before.version + 1, `${operation.op} must bump version`);
          assert.equal(after.updatedAt, now);
          assert.equal(after.id, before.id);
          assert.equal(after.requesterId, before.requesterId);
          assert.equal(after.durationSeconds, before.durationSeconds);
          if (after.state === before.state) {
            assert.equal(operation.op, 'review', 'only a counted approval changes a request in place');
            assert.equal(after.reviews.length, before.reviews.length + 1);
          }
          if (isPastReviewDeadline(before, now)) {
            assert.notEqual(operation.op, 'review', 'a review was taken past the review deadline');
          }
          if (after.state === 'approved' && before.state === 'pending') {
            const approvers = new Set(
              after.reviews.filter((r) => r.verdict === 'approve').map((r) => r.reviewerId),
            );
            assert.ok(approvers.size >= Math.max(1, randomRoute.requiredApprovals));
            assert.ok(!approvers.has(after.requesterId));
          }
          if (after.state === 'active') {
            assert.equal(after.expiresAt, (after.activatedAt ?? Number.NaN) + after.durationSeconds * 1000);
          }
          if (terminalStates.includes(after.state)) assert.notEqual(after.endedAt, null);
          if (after.state !== before.state) observed.add(`${before.state}→${after.state}`);
          request = after;
        }
        const reviewers = request.reviews.map((r) => r.reviewerId);
        assert.equal(new Set(reviewers).size, reviewers.length, 'a person reviews at most once');
      }),
      { numRuns: 1500 },
    );
    // The generator is only worth something if it reaches every legal transition.
    assert.deepEqual([...observed].sort(), lifecycle.map(([from, to]) => `${from}→${to}`).sort());
  });
});

describe('routeStillCovers: the route the policy gives at re-check against the one followed', () => {
  const followed: ApprovalRoute = {
    requiredApprovals: 1,
    approverGroups: ['sre', 'dba'],
    maxDurationSeconds: 3600,
    autoApprove: false,
    policyId: 'followed',
  };
  const cases: ReadonlyArray<{ description: string; current: Partial<ApprovalRoute>; holds: boolean }> = [
    { description: 'the same route holds', current: {}, holds: true },
    {
      description: 'another policy with the same demands holds',
      current: { policyId: 'other' },
      holds: true,
    },
    { description: 'fewer demands hold (any approver)', current: { approverGroups: [] }, holds: true },
    {
      description: 'more approver groups hold',
      current: { approverGroups: ['sre', 'dba', 'ops'] },
      holds: true,
    },
    {
      description: 'two approvals instead of one do not hold',
      current: { requiredApprovals: 2 },
      holds: false,
    },
    {
      description: 'a narrower approver group does not hold',
      current: { approverGroups: ['dba'] },
      holds: false,
    },
    {
      description: 'other approver groups do not hold',
      current: { approverGroups: ['security'] },
      holds: false,
    },
    {
      description: 'a maximum below the duration does not hold',
      current: { maxDurationSeconds: 1799 },
      holds: false,
    },
    {
      description: 'a maximum equal to the duration holds',
      current: { maxDurationSeconds: 1800 },
      holds: true,
    },
    {
      description: '0 approvals without auto-approve still needs one, as followed',
      current: { requiredApprovals: 0 },
      holds: true,
    },
  ];
  for (const { description, current, holds } of cases) {
    it(description, () => {
      assert.equal(routeStillCovers(followed, { ...followed, ...current }, 1800), holds);
    });
  }
  it('an auto-approved request needs an auto-approve route at activation', () => {
    const auto: ApprovalRoute = { ...followed, requiredApprovals: 0, autoApprove: true, approverGroups: [] };
    assert.equal(routeStillCovers(auto, auto, 60), true);
    assert.equal(routeStillCovers(auto, { ...auto, autoApprove: false }, 60), false);
    assert.equal(routeStillCovers(auto, { ...auto, requiredApprovals: 1 }, 60), false);
  });
  it('a route that restricts approvers where anyone could approve does not hold', () => {
    assert.equal(routeStillCovers({ ...followed, approverGroups: [] }, followed, 60), false);
  });
});

describe('applyReview with identity links: identities of one person are one person', () => {
  // demo:bob is linked into okta:bob; requests and reviews may name either.
  const canonicalId = (id: string) => (id === 'demo:bob' ? principalId('okta', 'bob') : id);
  const bobElsewhere: Principal = { ...bob, id: 'demo:bob', idp: 'demo' };

  it('a request by a linked identity cannot be reviewed by the canonical one', () => {
    const request = { ...pending({ requiredApprovals: 1 }), requesterId: 'demo:bob' };
    throwsCode(
      () =>
        applyReview(
          request,
          { reviewer: bob, verdict: 'approve', reason: '', policyAllows: true, canonicalId },
          t0,
        ),
      'self_review',
    );
  });

  it('an approval under one identity and one under the other count once', () => {
    const once = applyReview(
      pending({ requiredApprovals: 2 }),
      { reviewer: bobElsewhere, verdict: 'approve', reason: '', policyAllows: true, canonicalId },
      t0,
    );
    throwsCode(
      () =>
        applyReview(
          once,
          { reviewer: bob, verdict: 'approve', reason: '', policyAllows: true, canonicalId },
          t0,
        ),
      'already_reviewed',
    );
  });
});
