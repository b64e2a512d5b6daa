/**
 * Administrators lock a principal: all of its access ends at once and nothing it presents is
 * accepted until an administrator unlocks it. For incident response (a stolen laptop, a
 * compromised account) and offboarding where the identity provider cannot push a SCIM
 * deactivation. Kept apart from SCIM's `disabled`, so the IdP reactivating the user does not
 * lift a lock. Unlocking restores nothing. See docs/security.md, "Locking a principal".
 */
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { parseIdentity } from '../core/identity-links.js';
import type { Principal, PrincipalLock } from '../core/principal.js';
import type { AccessService } from './access-service.js';
import type { Store, StoredPrincipal } from './ports.js';
import { recordSecurityEvent } from './security-events.js';

export interface PrincipalLockDeps {
  readonly store: Pick<Store, 'principals' | 'transaction'>;
  readonly clock: Clock;
  readonly isAdmin: (principal: Principal) => boolean;
  readonly endAllAccessOf: AccessService['endAllAccessOf'];
  /** The canonical principal id of an identity (identity links), and every identity of a canonical id. */
  readonly canonicalId: (idp: string, subject: string) => string;
  readonly identitiesOf: (canonicalId: string) => readonly string[];
  /** Whether an identity provider with this id is configured. */
  readonly knowsIdp: (idp: string) => boolean;
}

/** What a lock did: the principals locked (the canonical one first) and the access it ended. */
export interface LockOutcome {
  readonly principal: StoredPrincipal;
  readonly locked: readonly string[];
  readonly cancelledRequests: number;
  readonly revokedGrants: number;
}

const maxReasonLength = 1000;

export class PrincipalLocks {
  readonly #deps: PrincipalLockDeps;

  constructor(deps: PrincipalLockDeps) {
    this.#deps = deps;
  }

  /**
   * Locks the principal `target` names (its canonical one, when it is a linked identity) and every
   * identity linked to it that has signed in on its own: in one transaction per principal, the lock,
   * `principal.locked` and the end of its requests and grants; then the targets are cleaned up and
   * gateway sessions closed like any revocation.
   *
   * @throws PortcullisError `forbidden` (not an admin, or the actor's own principal),
   *   `validation_failed` (no reason, not a principal id, an unknown IdP without a stored row),
   *   `invalid_transition` (already locked).
   */
  async lock(actor: Principal, target: string, reason: string, from: RequestOrigin): Promise<LockOutcome> {
    const id = await this.#authorise(actor, target, reason, from, 'lock');
    if (id === actor.id)
      throw new PortcullisError('forbidden', 'You cannot lock your own account; ask another administrator', {
        reason: 'self_lock',
      });
    const others: string[] = [];
    for (const identity of this.#deps.identitiesOf(id))
      if (identity !== id && (await this.#deps.store.principals.get(identity))) others.push(identity);

    let cancelledRequests = 0;
    let revokedGrants = 0;
    for (const principalId of [id, ...others]) {
      const ended = await this.#deps.endAllAccessOf(
        principalId,
        actor.id,
        `by ${actor.id}: ${reason}`,
        from,
        async (tx, now) => {
          const current = await tx.principals.get(principalId);
          // The linked identities follow the canonical one: locked already is fine for them.
          if (current?.lock) {
            if (principalId !== id) return;
            throw alreadyLocked(principalId, current.lock);
          }
          await tx.principals.setLock(principalId, { at: now, by: actor.id, reason }, now);
          await tx.audit.append(lockEvent('principal.locked', actor, principalId, id, reason, from), now);
        },
        'locked',
      );
      cancelledRequests += ended.cancelled;
      revokedGrants += ended.revoked;
    }
    return {
      principal: await this.#stored(id),
      locked: [id, ...others],
      cancelledRequests,
      revokedGrants,
    };
  }

  /**
   * Lifts the lock of `target` and of its linked identities. Restores nothing: ended grants and
   * cancelled requests stay ended, and a SCIM deactivation stays in force.
   *
   * @throws PortcullisError as {@link lock}; `invalid_transition` when it is not locked.
   */
  async unlock(
    actor: Principal,
    target: string,
    reason: string,
    from: RequestOrigin,
  ): Promise<StoredPrincipal> {
    const id = await this.#authorise(actor, target, reason, from, 'unlock');
    await this.#deps.store.transaction(async (tx) => {
      const now = this.#deps.clock.now();
      const current = await tx.principals.get(id);
      if (!current?.lock)
        throw new PortcullisError('invalid_transition', `${id} is not locked`, { reason: 'not_locked' });
      for (const identity of this.#deps.identitiesOf(id)) {
        if (identity !== id && !(await tx.principals.get(identity))?.lock) continue;
        await tx.principals.setLock(identity, null, now);
        await tx.audit.append(lockEvent('principal.unlocked', actor, identity, id, reason, from), now);
      }
    });
    return this.#stored(id);
  }

  /** One principal as stored, for administrators. */
  async get(actor: Principal, target: string, from: RequestOrigin): Promise<StoredPrincipal> {
    await this.#requireAdmin(actor, from, 'view principal');
    const id = this.#canonical(target);
    const found = await this.#deps.store.principals.get(id);
    if (!found) throw new PortcullisError('not_found', `No principal ${id}`);
    return found;
  }

  /** Locked or SCIM-deactivated principals, for administrators. */
  async list(
    actor: Principal,
    standing: 'locked' | 'disabled',
    limit: number,
    from: RequestOrigin,
  ): Promise<StoredPrincipal[]> {
    await this.#requireAdmin(actor, from, 'list principals');
    return this.#deps.store.principals.listRestricted(standing, limit);
  }

  async #authorise(
    actor: Principal,
    target: string,
    reason: string,
    from: RequestOrigin,
    action: 'lock' | 'unlock',
  ): Promise<string> {
    await this.#requireAdmin(actor, from, `${action} ${target.slice(0, 200)}`);
    if (reason.trim() === '' || reason.length > maxReasonLength)
      throw new PortcullisError(
        'validation_failed',
        `A reason of 1 to ${maxReasonLength} characters is required`,
        {
          issues: [{ path: 'reason', message: 'required' }],
        },
      );
    const id = this.#canonical(target);
    // A lock ahead of a first sign-in is allowed, but only for an IdP people can sign in with.
    const identity = parseIdentity(id);
    if (!identity || !(this.#deps.knowsIdp(identity.idp) || (await this.#deps.store.principals.get(id))))
      throw new PortcullisError(
        'validation_failed',
        `${target} names no principal of a configured identity provider`,
        {
          issues: [{ path: 'id', message: 'expected idp:subject of a configured identity provider' }],
        },
      );
    return id;
  }

  #canonical(target: string): string {
    const identity = parseIdentity(target);
    if (!identity)
      throw new PortcullisError('validation_failed', `${target} is not a principal id (idp:subject)`, {
        issues: [{ path: 'id', message: 'expected idp:subject' }],
      });
    return this.#deps.canonicalId(identity.idp, identity.subject);
  }

  async #requireAdmin(actor: Principal, from: RequestOrigin, what: string): Promise<void> {
    if (this.#deps.isAdmin(actor)) return;
    await recordSecurityEvent(this.#deps.store, actor, 'security.denied', from, this.#deps.clock.now(), {
      reason: `${what} refused: not an administrator`,
    });
    throw new PortcullisError('forbidden', 'Only administrators may do this');
  }

  async #stored(id: string): Promise<StoredPrincipal> {
    const found = await this.#deps.store.principals.get(id);
    if (!found) throw new Error(`principal ${id} vanished after its lock changed`);
    return found;
  }
}

function alreadyLocked(id: string, lock: PrincipalLock): PortcullisError {
  return new PortcullisError('invalid_transition', `${id} is already locked (by ${lock.by})`, {
    reason: 'already_locked',
  });
}

function lockEvent(
  type: 'principal.locked' | 'principal.unlocked',
  actor: Principal,
  principalId: string,
  canonicalId: string,
  reason: string,
  from: RequestOrigin,
): AuditEventInput {
  return {
    type,
    actor: actor.id,
    severity: type === 'principal.locked' ? 'high' : 'warning',
    sourceIp: from.sourceIp,
    userAgent: from.userAgent,
    reason,
    data: { principal: principalId, ...(principalId === canonicalId ? {} : { linkedTo: canonicalId }) },
  };
}
