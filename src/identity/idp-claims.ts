/**
 * Builds a {@link Principal} from the claims an identity provider asserted (ID token, userinfo or
 * an API JWT). Keeps only what decisions need: subject, a display name, a verified-or-unflagged
 * e-mail and the mapped groups. Shared by browser login and API token verification so both give
 * the same principal for the same person.
 */
import { type Principal, principalId } from '../core/principal.js';
import { mapIdpGroups } from './group-mapping.js';

/** The part of an IdP's settings that shapes a principal. */
export interface ClaimSettings {
  readonly id: string;
  readonly groups_claim: string;
  readonly group_mapping: Readonly<Record<string, readonly string[]>>;
}

export type Claims = Readonly<Record<string, unknown>>;

const maxSubjectLength = 255;
const maxDisplayNameLength = 200;
const maxEmailLength = 320;

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

function nonEmptyString(value: unknown, maxLength: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed.slice(0, maxLength);
}

/** The `sub` claim when it is a usable subject, else undefined. */
export function subjectOf(claims: Claims): string | undefined {
  const sub = claims.sub;
  return typeof sub === 'string' && sub !== '' && sub.length <= maxSubjectLength ? sub : undefined;
}

/** True when the claims carry what {@link principalFromClaims} reads beyond the subject. */
export function hasProfileClaims(claims: Claims, settings: ClaimSettings): boolean {
  return readClaim(claims, settings.groups_claim) !== undefined && claims.name !== undefined;
}

/**
 * The principal for a verified claim set. The caller has already checked the subject with
 * {@link subjectOf}. An e-mail the IdP explicitly marks unverified (`email_verified: false`) is
 * not kept: Portcullis must never send approvals or credentials to an address nobody proved.
 */
export function principalFromClaims(subject: string, claims: Claims, settings: ClaimSettings): Principal {
  const email = claims.email_verified === false ? undefined : nonEmptyString(claims.email, maxEmailLength);
  const displayName =
    nonEmptyString(claims.name, maxDisplayNameLength) ??
    nonEmptyString(claims.preferred_username, maxDisplayNameLength) ??
    email ??
    subject;
  return {
    id: principalId(settings.id, subject),
    idp: settings.id,
    subject,
    displayName,
    email: email ?? null,
    groups: mapIdpGroups(readClaim(claims, settings.groups_claim), settings.group_mapping),
  };
}
