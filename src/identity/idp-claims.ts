/**
 * Builds a {@link Principal} from the claims an identity provider asserted (ID token, userinfo or
 * an API JWT). Keeps only what decisions need: subject, a display name, a verified-or-unflagged
 * e-mail and the mapped groups. Shared by browser login and API token verification so both give
 * the same principal for the same person.
 */
import { PortcullisError } from '../core/errors.js';
import { type Principal, principalId } from '../core/principal.js';
import { type Claims, evaluateMapping, type MappingSettings, readClaim } from './mapping-rules.js';

export { type Claims, readClaim } from './mapping-rules.js';

/** The part of an IdP's settings that shapes a principal. */
export interface ClaimSettings extends MappingSettings {
  readonly id: string;
}

const maxSubjectLength = 255;
const maxDisplayNameLength = 200;
const maxEmailLength = 320;

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

/** The e-mail Portcullis keeps: none when the IdP explicitly marks it unverified. */
export function keptEmail(claims: Claims): string | undefined {
  return claims.email_verified === false ? undefined : nonEmptyString(claims.email, maxEmailLength);
}

/**
 * The Portcullis groups for a sign-in, or `sign_in_not_allowed` when the IdP's `allow`/`deny`
 * rules refuse these claims (details: `idp`, `rule`).
 */
function signInGroups(claims: Claims, email: string | undefined, settings: ClaimSettings): string[] {
  const outcome = evaluateMapping(claims, email, settings);
  if (!outcome.allowed) {
    throw new PortcullisError(
      'sign_in_not_allowed',
      `Signing in through "${settings.id}" is not allowed for this user (${outcome.reason})`,
      { idp: settings.id, rule: outcome.reason },
    );
  }
  return [...outcome.groups];
}

/**
 * The principal for a verified claim set. The caller has already checked the subject with
 * {@link subjectOf}. An e-mail the IdP explicitly marks unverified (`email_verified: false`) is
 * not kept: Portcullis must never send approvals or credentials to an address nobody proved.
 */
export function principalFromClaims(subject: string, claims: Claims, settings: ClaimSettings): Principal {
  const email = keptEmail(claims);
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
    groups: signInGroups(claims, email, settings),
  };
}
