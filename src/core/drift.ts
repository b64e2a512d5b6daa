/**
 * Reconciliation's decision: what a target really holds for a resource against what Portcullis
 * believes, and which differences to take back. Pure; the reconciler (src/app/reconciler.ts)
 * gathers the facts and acts.
 */
import type { Artefacts, Grant } from './grant.js';

/** Something a target holds that names a grant (a PostgreSQL login's comment, say). */
export interface TargetHolding {
  readonly grantId: string;
  /** What the provisioner's `revoke` needs to take it back (the login name, its OID…). */
  readonly artefacts: Artefacts;
}

export const driftKinds = ['unknown_grant', 'present_after_revocation', 'missing_at_target'] as const;
export type DriftKind = (typeof driftKinds)[number];

export type Drift =
  | {
      /** The target holds access for a grant Portcullis has no record of (storage restored from an
       * older backup, another installation managing the same target, a hand-made copy). */
      readonly kind: 'unknown_grant';
      readonly holding: TargetHolding;
    }
  | {
      /** Access Portcullis took back is there again (re-created by hand, restored from a backup). */
      readonly kind: 'present_after_revocation';
      readonly holding: TargetHolding;
      readonly grant: Grant;
    }
  | {
      /** An active grant whose access the target does not hold (dropped by hand). Reported only:
       * re-creating it would hand out credentials the requester does not have. */
      readonly kind: 'missing_at_target';
      readonly grant: Grant;
    };

/**
 * The drift between one resource's `holdings` and Portcullis' grants.
 *
 * `grantsAfter` are the grants named by a holding or active now, read *after* the target was
 * inspected; `activeBefore` the ids of the resource's grants that were already active *before*.
 * A grant row exists before its access is created and a revoked grant's access is gone before the
 * row says revoked, so reading in that order never mistakes a grant being applied or revoked
 * during the inspection for drift: missing access is reported only for a grant active on both
 * sides of the inspection, and access found for a revoked grant only if the revocation had
 * completed before the inspection started (`revokedAt`).
 */
export function findDrift(input: {
  readonly holdings: readonly TargetHolding[];
  readonly grantsAfter: ReadonlyMap<string, Grant>;
  readonly activeBefore: ReadonlySet<string>;
  readonly inspectionStartedAt: number;
}): Drift[] {
  // A grant that is applying, revoking or failed may or may not be held yet: never drift.
  const drift: Drift[] = [];
  const held = new Set<string>();
  for (const holding of input.holdings) {
    held.add(holding.grantId);
    const grant = input.grantsAfter.get(holding.grantId);
    if (!grant) drift.push({ kind: 'unknown_grant', holding });
    else if (grant.status === 'revoked' && (grant.revokedAt ?? 0) < input.inspectionStartedAt)
      drift.push({ kind: 'present_after_revocation', holding, grant });
  }
  for (const grant of input.grantsAfter.values()) {
    if (grant.status === 'active' && input.activeBefore.has(grant.id) && !held.has(grant.id)) {
      drift.push({ kind: 'missing_at_target', grant });
    }
  }
  return drift;
}

/** Whether the reconciler takes this drift back in the target by itself. */
export function isTakenBack(drift: Drift): drift is Extract<Drift, { holding: TargetHolding }> {
  return drift.kind !== 'missing_at_target';
}
