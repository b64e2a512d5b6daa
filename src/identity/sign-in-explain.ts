/**
 * What an identity provider's rules make of a set of claims (OIDC) or attributes (SAML), without
 * signing in: for `portcullis idp test IDP --claims FILE`. Pure; the same functions as a real
 * sign-in, so what it prints is what a sign-in would do.
 *
 * @example
 * explainSignIn(settings, { sub: '00u1', email: 'a@corp.example', groups: ['Eng'] })
 * // → { idp: 'okta', allowed: true, reason: 'no allow rules', groups: ['engineering'], … }
 */
import type { AnyIdentityProviderSettings } from '../config/load.js';
import { keptEmail } from './idp-claims.js';
import { type Claims, evaluateMapping, type MappingSettings } from './mapping-rules.js';
import { samlClaimSettings, samlClaims } from './saml-login.js';

export interface SignInExplanation {
  readonly idp: string;
  readonly type: 'oidc' | 'saml';
  readonly subject: string | null;
  readonly principal: string | null;
  readonly email: string | null;
  readonly allowed: boolean;
  readonly reason: string;
  readonly groups: readonly string[];
  readonly explanation: readonly string[];
}

/** An IdP's settings as the group mapping reads them, for sign-in and SCIM alike. */
export function mappingSettingsOf(settings: AnyIdentityProviderSettings): MappingSettings {
  return settings.type === 'saml' ? samlClaimSettings(settings) : settings;
}

/**
 * For SAML, `claims` are the attributes by Name; `NameID` (or `sub`) stands for the NameID.
 */
export function explainSignIn(settings: AnyIdentityProviderSettings, input: Claims): SignInExplanation {
  const saml = settings.type === 'saml';
  const claims: Claims = saml ? samlClaims(input, input.NameID ?? input.sub, settings) : input;
  const subject = typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : null;
  const email = keptEmail(claims) ?? null;
  const outcome = evaluateMapping(claims, email ?? undefined, mappingSettingsOf(settings));
  return {
    idp: settings.id,
    type: settings.type,
    subject,
    principal: subject === null ? null : `${settings.id}:${subject}`,
    email,
    allowed: outcome.allowed,
    reason: outcome.reason,
    groups: outcome.groups,
    explanation: outcome.explanation,
  };
}
