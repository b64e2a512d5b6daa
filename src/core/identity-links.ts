/**
 * Explicit identity links (`identity_links`, docs/identity-providers.md "Linking identities
 * across IdPs"): which `idp:subject` identities are one person. Pure: no I/O.
 *
 * Links are only ever exact configured (idp, subject) pairs, never an e-mail or any other claim:
 * an IdP controls every claim it asserts, so linking on a claim would let one IdP sign in as
 * another IdP's user just by asserting that user's e-mail.
 */
import { principalId } from './principal.js';

/** One `identity_links` entry as written in the configuration. */
export interface IdentityLinkConfig {
  /** The canonical identity, `idp:subject`: its id is the principal's id. */
  readonly principal: string;
  /** Other identities, `idp:subject` each, that are the same person. */
  readonly also: readonly string[];
}

export interface IdentityLinkIssue {
  readonly path: string;
  readonly message: string;
}

/** Splits `idp:subject` at the first colon (IdP ids have none; subjects may). */
export function parseIdentity(value: string): { idp: string; subject: string } | null {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) return null;
  return { idp: value.slice(0, colon), subject: value.slice(colon + 1) };
}

/**
 * What is wrong with `links`, with paths inside the file: an id that is not `idp:subject` of a
 * configured IdP, an identity in more than one place, a link to itself.
 */
export function identityLinkIssues(
  links: readonly IdentityLinkConfig[],
  knownIdps: ReadonlySet<string>,
): IdentityLinkIssue[] {
  const issues: IdentityLinkIssue[] = [];
  const seen = new Map<string, string>();
  links.forEach((link, i) => {
    const entries = [
      { path: `identity_links[${i}].principal`, value: link.principal },
      ...link.also.map((value, j) => ({ path: `identity_links[${i}].also[${j}]`, value })),
    ];
    for (const { path, value } of entries) {
      const identity = parseIdentity(value);
      if (!identity) {
        issues.push({ path, message: `"${value}" is not an identity "idp:subject"` });
        continue;
      }
      if (!knownIdps.has(identity.idp)) {
        issues.push({ path, message: `no identity provider "${identity.idp}"` });
        continue;
      }
      const earlier = seen.get(value);
      if (earlier === undefined) seen.set(value, path);
      else if (earlier.startsWith(`identity_links[${i}].`))
        issues.push({ path, message: `"${value}" is linked to itself (also at ${earlier})` });
      else issues.push({ path, message: `"${value}" is already linked at ${earlier}` });
    }
  });
  return issues;
}

/** Maps an (idp, subject) sign-in to its canonical principal id. */
export class IdentityLinks {
  static readonly none = new IdentityLinks([]);
  readonly #canonical = new Map<string, string>();
  readonly #members = new Map<string, readonly string[]>();

  /** `links` must be free of {@link identityLinkIssues} (the configuration loader checks). */
  constructor(links: readonly IdentityLinkConfig[]) {
    for (const link of links) {
      const members = [link.principal, ...link.also];
      for (const member of members) this.#canonical.set(member, link.principal);
      this.#members.set(link.principal, members);
    }
  }

  /** The id of the principal that (idp, subject) signs in as: its own unless configured linked. */
  canonicalId(idp: string, subject: string): string {
    const own = principalId(idp, subject);
    return this.#canonical.get(own) ?? own;
  }

  /**
   * The canonical id of a principal id (`idp:subject`), e.g. one recorded on a request before the
   * link was configured; an id that is not `idp:subject` is returned as it is.
   */
  canonicalOf(principalId: string): string {
    const identity = parseIdentity(principalId);
    return identity ? this.canonicalId(identity.idp, identity.subject) : principalId;
  }

  /** Every identity (`idp:subject`) of the principal `canonicalId`, itself first. */
  identitiesOf(canonicalId: string): readonly string[] {
    return this.#members.get(canonicalId) ?? [canonicalId];
  }
}
