/**
 * The access report's rules over hand-written event sequences (the builder is pure; the end-to-end
 * path over a real export is src/server/audit-report.test.ts): which grants a period includes, how
 * each was approved and ended, break-glass reviews, drift outcomes, and the anomalies it flags.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AccessReportBuilder } from './access-report.js';
import { hashedEventBuilder } from './audit-test-support.js';
import type { HashedEventFields } from './hash.js';

const hour = 3_600_000;
const t0 = Date.UTC(2026, 9, 1);

const event = hashedEventBuilder();

/** A request by `requester`, approved by `approvers` (none: by policy), active from `start` to `end`. */
function grantEvents(id: string, requester: string, approvers: string[], start: number, end: number | null) {
  const request = `r-${id}`;
  const grant = `g-${id}`;
  const events = [
    event('request.created', start - 1000, {
      actor: requester,
      request_id: request,
      reason: `reason ${id}`,
      policy_ids: ['p1'],
      data: { role: 'read', ticket: `OPS-${id}` },
    }),
    event('request.approved', start - 500, {
      actor: approvers[0] ?? 'system',
      request_id: request,
      policy_ids: ['p1'],
      data: approvers.length > 0 ? { approvals: approvers } : {},
    }),
    event('grant.activated', start, {
      request_id: request,
      grant_id: grant,
      data: { role: 'read', principal: requester, notBefore: start, expiresAt: start + 2 * hour },
    }),
  ];
  if (end !== null) {
    events.push(event('grant.expired', end, { request_id: request, grant_id: grant }));
    events.push(event('grant.revocation_completed', end + 200, { request_id: request, grant_id: grant }));
  }
  return events;
}

function report(events: HashedEventFields[], from = t0, to = t0 + 24 * hour) {
  const builder = new AccessReportBuilder({ from, to });
  for (const e of events) builder.push(e);
  return builder.finish();
}

describe('AccessReportBuilder', () => {
  test('a grant is in the period when any part of it is; how it was approved and ended', () => {
    const result = report([
      ...grantEvents('before', 'okta:ann', ['okta:bob'], t0 - 5 * hour, t0 - 3 * hour),
      ...grantEvents('across', 'okta:ann', ['okta:bob'], t0 - hour, t0 + hour),
      ...grantEvents('auto', 'okta:cy', [], t0 + 2 * hour, t0 + 3 * hour),
      ...grantEvents('live', 'okta:cy', ['okta:bob', 'okta:dee'], t0 + 4 * hour, null),
      ...grantEvents('after', 'okta:ann', ['okta:bob'], t0 + 25 * hour, null),
    ]);
    assert.deepEqual(
      result.access.map((a) => [a.grantId, a.principal, a.approvedBy, a.approvers, a.end, a.ticket]),
      [
        ['g-across', 'okta:ann', 'approvers', ['okta:bob'], 'expired', 'OPS-across'],
        ['g-auto', 'okta:cy', 'auto', [], 'expired', 'OPS-auto'],
        ['g-live', 'okta:cy', 'approvers', ['okta:bob', 'okta:dee'], null, 'OPS-live'],
      ],
    );
    assert.equal(result.access[0]?.removedAt, t0 + hour + 200);
    // Decisions: only those made in the period.
    assert.deepEqual(
      result.decisions.map((d) => [d.requestId, d.outcome, d.by]),
      [
        ['r-auto', 'approved', ['system']],
        ['r-live', 'approved', ['okta:bob', 'okta:dee']],
      ],
    );
    assert.deepEqual(result.anomalies, []);
  });

  test('denials, denials by policy, cancellations and lapses are decisions with who made them', () => {
    const at = t0 + hour;
    const result = report([
      event('request.created', at, { actor: 'okta:ann', request_id: 'r1', data: { role: 'write' } }),
      event('request.denied', at + 1, {
        actor: 'okta:bob',
        request_id: 'r1',
        reason: 'not during the freeze',
      }),
      event('request.denied_by_policy', at + 2, {
        actor: 'okta:cy',
        request_id: 'r2',
        data: { role: 'admin' },
      }),
      event('request.created', at + 3, { actor: 'okta:ann', request_id: 'r3', data: { role: 'read' } }),
      event('request.cancelled', at + 4, { actor: 'okta:ann', request_id: 'r3' }),
      event('request.created', at + 5, { actor: 'okta:ann', request_id: 'r4', data: { role: 'read' } }),
      event('request.expired', at + 6, { request_id: 'r4' }),
    ]);
    assert.deepEqual(
      result.decisions.map((d) => [d.requestId, d.outcome, d.requester, d.role, d.by]),
      [
        ['r1', 'denied', 'okta:ann', 'write', ['okta:bob']],
        ['r2', 'denied_by_policy', 'okta:cy', 'admin', ['okta:cy']],
        ['r3', 'cancelled', 'okta:ann', 'read', ['okta:ann']],
        ['r4', 'lapsed', 'okta:ann', 'read', ['system']],
      ],
    );
  });

  test('access ended but never confirmed gone still counts as held, and is flagged', () => {
    const events = grantEvents('stuck', 'okta:ann', ['okta:bob'], t0 - 30 * hour, null);
    events.push(event('grant.expired', t0 - 28 * hour, { request_id: 'r-stuck', grant_id: 'g-stuck' }));
    events.push(event('grant.failed', t0 + hour, { request_id: 'r-f', grant_id: 'g-f' }));
    events.push(event('request.created', t0 + 20 * hour, { actor: 'okta:cy', request_id: 'r-late' }));
    const result = report(events);
    assert.deepEqual(
      result.access.map((a) => [a.grantId, a.end, a.removedAt]),
      [['g-stuck', 'expired', null]],
    );
    assert.deepEqual(
      result.anomalies.map((a) => a.kind),
      ['access_not_removed', 'access_not_removed'],
    );
    assert.match(result.anomalies[1]?.detail ?? '', /g-f .*failed to activate/);
  });

  test('flags self-approval and a grant with no approval in the log', () => {
    const events = grantEvents('self', 'okta:ann', ['okta:ann'], t0 + hour, null);
    events.push(
      event('grant.activated', t0 + 2 * hour, {
        request_id: 'r-ghost',
        grant_id: 'g-ghost',
        data: { role: 'read', principal: 'okta:eve' },
      }),
    );
    const result = report(events);
    assert.deepEqual(
      result.anomalies.map((a) => a.kind),
      ['self_approval', 'grant_without_approval'],
    );
    assert.equal(result.access.find((a) => a.grantId === 'g-ghost')?.approvedBy, 'unknown');
  });

  test('break-glass: activations with their custodians, review and rotation; an unreviewed one is flagged', () => {
    const activation = (id: string, at: number, drill = false) =>
      event('break_glass.activated', at, {
        reason: `outage ${id}`,
        data: {
          accountId: 'db-emergency',
          activationId: id,
          drill,
          initiator: 'kim',
          confirmers: ['lee'],
          activatedAt: at,
          requestIds: [`r-${id}`],
        },
      });
    const result = report([
      activation('a1', t0 + hour),
      event('request.created', t0 + hour, {
        request_id: 'r-a1',
        data: { role: 'admin', activationId: 'a1' },
      }),
      event('grant.activated', t0 + hour, {
        request_id: 'r-a1',
        grant_id: 'g-a1',
        data: { role: 'admin', principal: 'break-glass:kim' },
      }),
      event('break_glass.ended', t0 + 2 * hour, { data: { activationId: 'a1' } }),
      event('break_glass.reviewed', t0 + 5 * hour, { actor: 'okta:sec', data: { activationId: 'a1' } }),
      event('break_glass.rotated', t0 + 6 * hour, {
        data: { accountId: 'db-emergency', activations: ['a1'] },
      }),
      activation('a2', t0 + 8 * hour),
      activation('d1', t0 + 9 * hour, true),
      event('break_glass.drill_recorded', t0 + 10 * hour, {
        data: { accountId: 'db-emergency', activationId: 'd1', passed: false, failed: ['expiry_on_time'] },
      }),
    ]);
    assert.deepEqual(
      result.breakGlass.map((b) => [
        b.activationId,
        b.drill,
        b.initiator,
        b.confirmers,
        b.reviewedBy,
        b.rotatedAt,
      ]),
      [
        ['a1', false, 'kim', ['lee'], 'okta:sec', t0 + 6 * hour],
        ['a2', false, 'kim', ['lee'], null, null],
        ['d1', true, 'kim', ['lee'], null, null],
      ],
    );
    assert.equal(result.access.find((a) => a.grantId === 'g-a1')?.approvedBy, 'break_glass');
    assert.deepEqual(
      result.anomalies.map((a) => [a.kind, a.detail]),
      [
        ['break_glass_not_reviewed', 'activation a2 of db-emergency has no review in the log'],
        ['drill_failed', 'drill of db-emergency failed: expiry_on_time'],
      ],
    );
    assert.equal(result.drills.length, 1);
  });

  test('standing privileges: runs in the period, each finding with what came of it', () => {
    const result = report([
      event('reconcile.completed', t0 - hour, { data: { run: 'old' } }),
      event('reconcile.drift_found', t0 + hour, {
        data: { run: 'run1', kind: 'unknown_grant', grant: 'g-x', action: 'taking_back' },
      }),
      event('reconcile.taken_back', t0 + hour, { data: { run: 'run1', grant: 'g-x' } }),
      event('reconcile.drift_found', t0 + hour, {
        data: { run: 'run1', kind: 'missing_at_target', grant: 'g-y', action: 'reported' },
      }),
      event('reconcile.drift_found', t0 + hour, {
        data: { run: 'run1', kind: 'present_after_revocation', grant: 'g-z', action: 'taking_back' },
      }),
      event('reconcile.take_back_failed', t0 + hour, { data: { run: 'run1', grant: 'g-z' } }),
      event('reconcile.completed', t0 + hour, { data: { run: 'run1' } }),
      event('reconcile.standing_found', t0 + hour, {
        data: { run: 'run1', holder: 'dev_bob', via: 'app_rw' },
      }),
      event('reconcile.standing_found', t0 + 3 * hour, {
        data: { run: 'run9', holder: 'dev_bob', via: 'app_rw' },
      }),
      event('reconcile.drift_found', t0 + 2 * hour, {
        data: { run: 'run2', kind: 'unknown_grant', grant: 'g-w', action: 'taking_back' },
      }),
    ]);
    assert.equal(result.reconcileRuns, 1);
    assert.deepEqual(
      result.findings.map((f) => [f.grant, f.kind, f.outcome]),
      [
        ['g-x', 'unknown_grant', 'taken_back'],
        ['g-y', 'missing_at_target', 'reported'],
        ['g-z', 'present_after_revocation', 'take_back_failed'],
        ['g-w', 'unknown_grant', 'pending'],
      ],
    );
    // Reported again each day while it lasts; the report lists it once, as last reported.
    assert.deepEqual(result.standing, [
      { at: t0 + 3 * hour, resource: 'db', holder: 'dev_bob', via: 'app_rw' },
    ]);
  });
});

describe('a log cut by retention', () => {
  test('is complete from the signed checkpoint it was cut at; an earlier period is flagged as not covered', () => {
    const cutAt = t0 + 2 * hour;
    const first = { ...event('auth.login', t0 + 5 * hour), seq: 501 };
    const pruned = {
      ...event('audit.pruned', t0 + 6 * hour, { data: { throughSeq: 500, checkpointAt: cutAt } }),
      seq: 502,
    };
    const build = (from: number) => {
      const builder = new AccessReportBuilder({ from, to: t0 + 24 * hour });
      builder.push(first);
      builder.push(pruned);
      // The verifier's anchor: the signed checkpoint the log was cut at.
      return builder.finish({ seq: 500, at: cutAt });
    };
    const since = build(t0 + 3 * hour);
    assert.deepEqual(since.logBegins, { seq: 501, at: cutAt });
    assert.equal(since.coversPeriod, true);
    assert.equal(build(t0).coversPeriod, false);
    assert.equal(build(0).coversPeriod, false);
    // Without the verifier's anchor, an audit.pruned event's own claim is not taken.
    const unanchored = new AccessReportBuilder({ from: t0 + 3 * hour, to: t0 + 24 * hour });
    unanchored.push(first);
    unanchored.push(pruned);
    assert.deepEqual(unanchored.finish().logBegins, { seq: 501, at: t0 + 5 * hour });
  });

  test('a log that starts at entry 1 covers any period', () => {
    const builder = new AccessReportBuilder({ from: 0, to: t0 });
    builder.push({ ...event('config.loaded', t0 + hour), seq: 1 });
    assert.deepEqual([builder.finish().coversPeriod, builder.finish().logBegins?.seq], [true, 1]);
  });
});
