/**
 * Per-IdP sign-in rules: who may sign in through an identity provider (`allow`, `deny`) and which
 * Portcullis groups they get (`group_mapping`, `mapping_rules`). Pure: no I/O, no clock.
 *
 * - `deny`: any condition that holds refuses the sign-in (deny wins).
 * - `allow`: when not empty, at least one condition must hold, else the sign-in is refused.
 * - Groups: those of `group_mapping` (see {@link mapIdpGroups}) plus those of every
 *   `mapping_rules` entry whose condition holds. When both are empty, IdP groups that are valid
 *   Portcullis identifiers pass through unchanged (the historical behaviour of `group_mapping`).
 *
 * A condition holds when every field it sets holds: `group` (the user has that IdP group),
 * `email_domain` (the e-mail's domain is one of these, case-insensitive, exact: no subdomains),
 * `claim` (present; with `equals`, one of its values equals one of these).
 *
 * @example
 * evaluateMapping({ email: 'a@corp.example', groups: ['eng'] }, 'a@corp.example', {
 *   groups_claim: 'groups', group_mapping: {}, allow: [{ email_domain: 'corp.example' }],
 *   mapping_rules: [{ when: { group: 'eng' }, groups: ['engineering'] }],
 * }) // → { allowed: true, groups: ['engineering'], … }
 */
import type { MappingCondition } from '../config/schema.js';
import { assertedGroups, isPortcullisGroup, mapIdpGroups } from './group-mapping.js';

export type Claims = Readonly<Record<string, unknown>>;

/** The part of an IdP's settings the rules read. */
export interface MappingSettings {
  readonly groups_claim: string;
  readonly group_mapping: Readonly<Record<string, readonly string[]>>;
  readonly mapping_rules?: readonly { readonly when: MappingCondition; readonly groups: readonly string[] }[];
  readonly allow?: readonly MappingCondition[];
  readonly deny?: readonly MappingCondition[];
}

export interface MappingOutcome {
  readonly allowed: boolean;
  /** Why: `deny[0] matched`, `no allow rule matched`, `allow[1] matched`, `no allow rules`. */
  readonly reason: string;
  /** The Portcullis groups (empty when not allowed). */
  readonly groups: readonly string[];
  /** Where each group came from: `engineering ← mapping_rules[0]`. */
  readonly explanation: readonly string[];
}

const maxClaimValues = 1000;

/**
 * Reads a claim by name. A name with dots (`realm_access.roles`) is also tried as a path into
 * nested objects, but only when no claim has that literal name: namespaced claim names such as
 * `https://example.com/groups` are common and must keep working.
 */
export function readClaim(claims: Claims, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes('.')) return undefined;
  let current: unknown = claims;
  for (const part of name.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** A claim's values as strings: scalars become one value, arrays their scalar members. */
function claimValues(value: unknown): string[] {
  const list = Array.isArray(value) ? value.slice(0, maxClaimValues) : [value];
  return list
    .filter((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    .map(String);
}

function asList(value: string | readonly string[] | undefined): readonly string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

function emailDomain(email: string | undefined): string | undefined {
  const at = email?.lastIndexOf('@') ?? -1;
  return email !== undefined && at > 0 ? email.slice(at + 1).toLowerCase() : undefined;
}

/** True when every field the condition sets holds for these claims. */
export function conditionHolds(
  condition: MappingCondition,
  claims: Claims,
  email: string | undefined,
  settings: Pick<MappingSettings, 'groups_claim'>,
): boolean {
  if (condition.group !== undefined) {
    if (!assertedGroups(readClaim(claims, settings.groups_claim)).includes(condition.group)) return false;
  }
  if (condition.email_domain !== undefined) {
    const domain = emailDomain(email);
    const wanted = asList(condition.email_domain).map((d) => d.toLowerCase().replace(/^@/, ''));
    if (domain === undefined || !wanted.includes(domain)) return false;
  }
  if (condition.claim !== undefined) {
    const values = claimValues(readClaim(claims, condition.claim));
    if (values.length === 0) return false;
    const equals = asList(condition.equals);
    if (equals.length > 0 && !values.some((v) => equals.includes(v))) return false;
  }
  return true;
}

/**
 * Where each Portcullis group comes from: `group_mapping` (or pass-through when neither it nor
 * `mapping_rules` is configured) and every rule for which `holds` is true. Shared by sign-in and
 * SCIM so both map groups the same way.
 */
function groupSources(
  claims: Claims,
  settings: MappingSettings,
  holds: (condition: MappingCondition) => boolean,
): Map<string, string[]> {
  const rules = settings.mapping_rules ?? [];
  const raw = readClaim(claims, settings.groups_claim);
  const sources = new Map<string, string[]>();
  const add = (group: string, source: string) => {
    if (!isPortcullisGroup(group)) return;
    sources.set(group, [...(sources.get(group) ?? []), source]);
  };
  const hasMapping = Object.keys(settings.group_mapping).length > 0;
  if (hasMapping || rules.length === 0) {
    for (const group of mapIdpGroups(raw, settings.group_mapping)) {
      const from = hasMapping
        ? assertedGroups(raw).filter(
            (g) => Object.hasOwn(settings.group_mapping, g) && settings.group_mapping[g]?.includes(group),
          )
        : [group];
      add(
        group,
        hasMapping ? `group_mapping[${from.map((g) => JSON.stringify(g)).join(', ')}]` : 'passed through',
      );
    }
  }
  rules.forEach((rule, i) => {
    if (!holds(rule.when)) return;
    for (const group of rule.groups) add(group, `mapping_rules[${i}]`);
  });
  return sources;
}

/**
 * Decides whether these claims may sign in through this IdP and which Portcullis groups they
 * get. `email` is the e-mail Portcullis keeps (an address the IdP marks unverified is none).
 */
export function evaluateMapping(
  claims: Claims,
  email: string | undefined,
  settings: MappingSettings,
): MappingOutcome {
  const deny = settings.deny ?? [];
  const allow = settings.allow ?? [];
  const denied = deny.findIndex((c) => conditionHolds(c, claims, email, settings));
  if (denied >= 0) {
    return { allowed: false, reason: `deny[${denied}] matched`, groups: [], explanation: [] };
  }
  let reason = 'no allow rules';
  if (allow.length > 0) {
    const allowed = allow.findIndex((c) => conditionHolds(c, claims, email, settings));
    if (allowed < 0) return { allowed: false, reason: 'no allow rule matched', groups: [], explanation: [] };
    reason = `allow[${allowed}] matched`;
  }

  const sources = groupSources(claims, settings, (c) => conditionHolds(c, claims, email, settings));
  const groups = [...sources.keys()].sort();
  return {
    allowed: true,
    reason,
    groups,
    explanation: groups.map((g) => `${g} ← ${(sources.get(g) ?? []).join(', ')}`),
  };
}

/** What {@link mapPushedGroups} makes of the groups an IdP pushed for one user. */
export interface PushedGroups {
  /** Groups the IdP's settings certainly give: a sign-in with these groups would get them. */
  readonly certain: readonly string[];
  /**
   * Those plus the groups of rules that hold unless a condition on another claim fails, a claim
   * SCIM does not carry. Always a superset of `certain`.
   */
  readonly possible: readonly string[];
}

/**
 * The Portcullis groups for the IdP groups pushed through SCIM for one user: the same
 * `group_mapping` and `mapping_rules` as a sign-in ({@link evaluateMapping}), the pushed group
 * names standing for the groups claim and `email` being the e-mail Portcullis keeps for the
 * principal. `allow` and `deny` are not read: they decide sign-ins, SCIM deprovisions with
 * `active`. A rule's `claim` condition on any claim other than the groups claim cannot be known
 * from SCIM: such a rule counts as `possible`, never `certain`. So SCIM adds a group only when
 * certain, and removes one only when it is no longer possible.
 *
 * @example
 * mapPushedGroups(['admins', 'eng'], undefined, { groups_claim: 'groups', group_mapping: {},
 *   mapping_rules: [{ when: { group: 'eng' }, groups: ['engineering'] }] })
 * // → { certain: ['engineering'], possible: ['engineering'] } (no pass-through of `admins`)
 */
export function mapPushedGroups(
  groups: readonly string[],
  email: string | undefined,
  settings: MappingSettings,
): PushedGroups {
  const claims: Claims = { [settings.groups_claim]: [...groups] };
  const known = (c: MappingCondition) => c.claim === undefined || c.claim === settings.groups_claim;
  const holds = (c: MappingCondition) => conditionHolds(c, claims, email, settings);
  // A condition on a claim SCIM does not carry may hold when the rest of it does.
  const mayHold = (c: MappingCondition) =>
    known(c) ? holds(c) : holds({ group: c.group, email_domain: c.email_domain });
  return {
    certain: [...groupSources(claims, settings, (c) => known(c) && holds(c)).keys()].sort(),
    possible: [...groupSources(claims, settings, mayHold).keys()].sort(),
  };
}
