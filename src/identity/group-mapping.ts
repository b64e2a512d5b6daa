/**
 * Turns the groups an identity provider asserts into Portcullis groups. Pure: no I/O, no clock.
 *
 * Rules (per identity provider, from its `group_mapping`):
 * - **Mapping configured** (at least one entry): each IdP group listed maps to its Portcullis
 *   groups; IdP groups not listed are dropped. Portcullis copies as little as possible.
 * - **Mapping empty**: IdP groups that are already valid Portcullis identifiers (lowercase letters,
 *   digits, `-`, `_`, at most 63 characters, starting with a letter or digit) pass through
 *   unchanged; every other value is dropped. This keeps small setups (and the demo) simple; any
 *   production IdP with rich group names should list what it needs in `group_mapping`.
 *
 * The claim may be an array of strings or a single string (some IdPs send one group that way);
 * anything else yields no groups. The result is de-duplicated and sorted.
 *
 * @example
 * mapIdpGroups(['eng-prod', 'Everyone'], { 'eng-prod': ['engineering', 'oncall'] })
 * // → ['engineering', 'oncall']
 * mapIdpGroups(['sre', 'Domain Users'], {})
 * // → ['sre']
 */

/** IdP group name → Portcullis groups, as in the `group_mapping` configuration. */
export type GroupMapping = Readonly<Record<string, readonly string[]>>;

/** The same rule as identifiers in the configuration schema (src/config/schema.ts). */
const portcullisIdentifier = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Beyond this many asserted groups the rest are ignored: a token is not a directory dump. */
export const maxAssertedGroups = 1000;

export function isPortcullisGroup(value: string): boolean {
  return portcullisIdentifier.test(value);
}

/** Reads the raw claim into a list of strings, ignoring anything that is not a string. */
export function assertedGroups(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (!Array.isArray(claim)) return [];
  return claim.slice(0, maxAssertedGroups).filter((value): value is string => typeof value === 'string');
}

export function mapIdpGroups(claim: unknown, mapping: GroupMapping): string[] {
  const asserted = assertedGroups(claim);
  const result = new Set<string>();
  if (Object.keys(mapping).length === 0) {
    for (const group of asserted) if (isPortcullisGroup(group)) result.add(group);
  } else {
    for (const group of asserted) {
      // Object.hasOwn: an IdP group named "constructor" or "__proto__" must not reach the prototype.
      if (!Object.hasOwn(mapping, group)) continue;
      for (const mapped of mapping[group] ?? []) if (isPortcullisGroup(mapped)) result.add(mapped);
    }
  }
  return [...result].sort();
}
