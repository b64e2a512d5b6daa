/**
 * The bearer secrets machine clients present (SCIM provisioning, ssh-guard's session reports):
 * every configured secret is compared, none skipped, in constant time and as SHA-256 digests so
 * lengths leak nothing. A refusal is audited the same way for all of them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';

const digest = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

export class BearerSecrets<T> {
  readonly #entries: readonly { readonly digest: Buffer; readonly value: T }[];

  constructor(entries: readonly { readonly secret: string; readonly value: T }[]) {
    this.#entries = entries.map((entry) => ({ digest: digest(entry.secret), value: entry.value }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * The value of the first secret the `Authorization: Bearer` header carries; `presented` tells a
   * wrong secret (`invalid_token`) from none at all (`unauthenticated`).
   */
  match(authorization: string | undefined): { readonly found: T | undefined; readonly presented: boolean } {
    const bearer = /^Bearer (\S{1,512})$/i.exec(authorization ?? '')?.[1];
    let found: T | undefined;
    if (bearer) {
      const presented = digest(bearer);
      for (const entry of this.#entries) if (timingSafeEqual(presented, entry.digest)) found ??= entry.value;
    }
    return { found, presented: bearer !== undefined };
  }
}

/** The `auth.token_rejected` event of a refused bearer secret; the secret itself is never in it. */
export function rejectedBearerEvent(
  client: string,
  what: string,
  presented: boolean,
  from: RequestOrigin,
  resourceId?: string,
): AuditEventInput {
  return {
    type: 'auth.token_rejected',
    actor: 'anonymous',
    severity: 'warning',
    sourceIp: from.sourceIp,
    userAgent: from.userAgent,
    ...(resourceId ? { resourceId } : {}),
    reason: presented ? `unknown ${what}` : `no ${what}`,
    data: { client, code: presented ? 'invalid_token' : 'unauthenticated' },
  };
}
