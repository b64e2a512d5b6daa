/**
 * Standing access: what a target grants someone without any grant — a login that is a member of a
 * role a resource's roles map to, or a superuser. Portcullis exists so that there is none; where
 * the target holds some, reconciliation reports it (src/app/reconciler.ts). Pure.
 */

/** One holder of access at a target that no grant gave. */
export interface StandingAccess {
  /** Who holds it, as the target names them (a PostgreSQL login). */
  readonly holder: string;
  /** What gives it: the mapped role the holder is a member of (directly or through others), or `superuser`. */
  readonly via: string;
}

/** The standing access an operator has not acknowledged (`standing_allowed`: a service's own login, say). */
export function unacknowledgedStanding(
  found: readonly StandingAccess[],
  allowed: readonly string[],
): StandingAccess[] {
  const accepted = new Set(allowed);
  const seen = new Set<string>();
  return found
    .filter((access) => !accepted.has(access.holder))
    .filter((access) => {
      const key = standingKey(access);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => a.holder.localeCompare(b.holder) || a.via.localeCompare(b.via));
}

/** A stable, unambiguous key for one holder and what gives them access (storable as text: no NUL). */
export function standingKey(access: StandingAccess): string {
  return JSON.stringify([access.holder, access.via]);
}
