/**
 * A person as an identity provider asserts them. The stable key is `idp` + `subject`; the same
 * e-mail from two IdPs is two principals unless `identity_links` links the two identities
 * (src/core/identity-links.ts). Portcullis keeps only what decisions need.
 */
export interface Principal {
  /**
   * `${idp}:${subject}` — see {@link principalId} — or, for a linked identity, the canonical
   * identity's id; `idp`/`subject` then name the identity used at the latest sign-in.
   */
  readonly id: string;
  readonly idp: string;
  readonly subject: string;
  readonly displayName: string;
  readonly email: string | null;
  /** Portcullis groups (already mapped from the IdP's claims). */
  readonly groups: readonly string[];
}

export function principalId(idp: string, subject: string): string {
  return `${idp}:${subject}`;
}

/** The actor behind an action, for the audit log: a principal or Portcullis itself (expiry, boot recovery). */
export type Actor =
  | { readonly kind: 'principal'; readonly principal: Principal }
  | { readonly kind: 'system' };

export const systemActor: Actor = { kind: 'system' };

export function actorId(actor: Actor): string {
  return actor.kind === 'system' ? 'system' : actor.principal.id;
}

/**
 * An administrator's lock on a principal (incident response, offboarding without SCIM). Kept
 * apart from a SCIM deactivation, so an identity provider that reactivates the user does not lift
 * it: only an administrator unlocks.
 */
export interface PrincipalLock {
  readonly at: number;
  /** The administrator's principal id. */
  readonly by: string;
  readonly reason: string;
}

/** Whether a principal may act: a lock is named before a deactivation, being the more specific. */
export type PrincipalStanding = 'enabled' | 'disabled' | 'locked';

export function standingOf(principal: {
  readonly disabled: boolean;
  readonly lock: PrincipalLock | null;
}): PrincipalStanding {
  if (principal.lock) return 'locked';
  return principal.disabled ? 'disabled' : 'enabled';
}
