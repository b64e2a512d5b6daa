import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findDrift, isTakenBack, type TargetHolding } from './drift.js';
import { type Grant, type GrantStatus, grantStatuses, newGrant } from './grant.js';

const t0 = Date.UTC(2026, 10, 24, 9, 0, 0);
const inspectionStartedAt = t0 + 600_000;

function grant(id: string, status: GrantStatus): Grant {
  return {
    ...newGrant({
      id,
      requestId: `req-${id}`,
      principalId: 'okta:alice',
      resourceId: 'orders-db',
      role: 'read',
      notBefore: t0,
      expiresAt: t0 + 3_600_000,
      artefacts: { login: `pc_${id}` },
    }),
    status,
  };
}

function holding(grantId: string): TargetHolding {
  return { grantId, artefacts: { login: `pc_${grantId}` } };
}

function byId(...grants: Grant[]): Map<string, Grant> {
  return new Map(grants.map((g) => [g.id, g]));
}

describe('findDrift', () => {
  it('finds nothing when the target holds exactly the active grants', () => {
    const drift = findDrift({
      holdings: [holding('a'), holding('b')],
      grantsAfter: byId(grant('a', 'active'), grant('b', 'active')),
      activeBefore: new Set(['a', 'b']),
      inspectionStartedAt,
    });
    assert.deepEqual(drift, []);
  });

  it('reports a holding for a grant Portcullis has no record of, to be taken back', () => {
    const [drift, ...rest] = findDrift({
      holdings: [holding('ghost')],
      grantsAfter: new Map(),
      activeBefore: new Set(),
      inspectionStartedAt,
    });
    assert.equal(rest.length, 0);
    assert.equal(drift?.kind, 'unknown_grant');
    assert.ok(drift && isTakenBack(drift));
    assert.deepEqual(drift.holding, holding('ghost'));
  });

  it('reports access that is back after its grant was revoked, to be taken back', () => {
    const revoked = { ...grant('a', 'revoked'), revokedAt: inspectionStartedAt - 1 };
    const drift = findDrift({
      holdings: [holding('a')],
      grantsAfter: byId(revoked),
      activeBefore: new Set(),
      inspectionStartedAt,
    });
    assert.deepEqual(drift, [{ kind: 'present_after_revocation', holding: holding('a'), grant: revoked }]);
    assert.ok(drift[0] && isTakenBack(drift[0]));
  });

  it('reports an active grant the target does not hold, without taking anything back', () => {
    const active = grant('a', 'active');
    const drift = findDrift({
      holdings: [],
      grantsAfter: byId(active),
      activeBefore: new Set(['a']),
      inspectionStartedAt,
    });
    assert.deepEqual(drift, [{ kind: 'missing_at_target', grant: active }]);
    assert.ok(drift[0] && !isTakenBack(drift[0]));
  });

  it('does not call a grant missing that became active while the target was inspected', () => {
    const drift = findDrift({
      holdings: [],
      grantsAfter: byId(grant('a', 'active')),
      activeBefore: new Set(),
      inspectionStartedAt,
    });
    assert.deepEqual(drift, []);
  });

  it('does not call access present after revocation when the revocation ended during the inspection', () => {
    const drift = findDrift({
      holdings: [holding('a')],
      grantsAfter: byId({ ...grant('a', 'revoked'), revokedAt: inspectionStartedAt + 5 }),
      activeBefore: new Set(),
      inspectionStartedAt,
    });
    assert.deepEqual(drift, []);
  });

  it('leaves grants being applied, revoked or retried alone, held or not', () => {
    for (const status of ['applying', 'revoking', 'revoke_failed', 'apply_failed'] as const) {
      for (const holdings of [[holding('a')], []]) {
        const drift = findDrift({
          holdings,
          grantsAfter: byId(grant('a', status)),
          activeBefore: new Set(['a']),
          inspectionStartedAt,
        });
        assert.deepEqual(drift, [], `${status}, ${holdings.length === 0 ? 'not ' : ''}held`);
      }
    }
  });

  it('decides every grant by the rules above, whatever the mix (property)', () => {
    const ids = fc.constantFrom<string>('a', 'b', 'c', 'd', 'e');
    fc.assert(
      fc.property(
        fc.uniqueArray(ids),
        fc.dictionary(ids, fc.constantFrom(...grantStatuses)),
        fc.uniqueArray(ids),
        fc.boolean(),
        (heldIds, statuses, before, revokedDuring) => {
          const revokedAt = revokedDuring ? inspectionStartedAt + 1 : inspectionStartedAt - 1;
          const grantsAfter = byId(
            ...Object.entries(statuses).map(([id, s]) => ({ ...grant(id, s), revokedAt })),
          );
          const drift = findDrift({
            holdings: heldIds.map(holding),
            grantsAfter,
            activeBefore: new Set(before),
            inspectionStartedAt,
          });
          const kindOf = new Map(
            drift.map((d) => [d.kind === 'missing_at_target' ? d.grant.id : d.holding.grantId, d.kind]),
          );
          assert.equal(kindOf.size, drift.length, 'one finding per grant at most');
          for (const id of ['a', 'b', 'c', 'd', 'e']) {
            const status = grantsAfter.get(id)?.status;
            const held = heldIds.includes(id);
            const expected =
              held && status === undefined
                ? 'unknown_grant'
                : held && status === 'revoked' && !revokedDuring
                  ? 'present_after_revocation'
                  : !held && status === 'active' && before.includes(id)
                    ? 'missing_at_target'
                    : undefined;
            assert.equal(kindOf.get(id), expected, `grant ${id}: ${status ?? 'unknown'}, held ${held}`);
          }
        },
      ),
    );
  });
});
