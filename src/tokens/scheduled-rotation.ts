/**
 * Token-signing keys rotated on a schedule (`tokens.rotation_interval`): once the active key is
 * older than the interval, a new one signs and the old one stays published for the overlap, as
 * with `portcullis keys rotate`. Every replica checks on its maintenance tick; the first to find
 * the key due rotates it, the others find it already retired (a compare-and-set on the key row)
 * and do nothing, so one rotation makes one new key and one audit event.
 *
 * Audit keys are not rotated on a schedule: they stay published for good, so each rotation would
 * add a key to every offline verification for ever.
 */
import type { KeyRepository, Store } from '../app/ports.js';
import type { RotationResult, SigningKeyStore } from './key-store.js';

export interface ScheduledRotationOptions {
  readonly store: Pick<Store, 'transaction'>;
  /** The server's key store: its cached view says how old the active key is. */
  readonly keys: SigningKeyStore;
  /** The same store over a transaction's repository, so the rotation and its event commit together. */
  readonly keysIn: (repository: KeyRepository) => SigningKeyStore;
  /** Longest age of the active token key; null: never rotate on a schedule. */
  readonly intervalSeconds: number | null;
  /** `tokens.rotation_overlap`. */
  readonly overlapSeconds: number;
  /** `tokens.rotation_prepublish`: how long before the rotation the next key is published; null: not ahead. */
  readonly prepublishSeconds?: number | null;
}

export class ScheduledKeyRotation {
  readonly #options: ScheduledRotationOptions;

  constructor(options: ScheduledRotationOptions) {
    this.#options = options;
  }

  /** Rotates the token key if it is due at `now`; the rotation, or null when none was due or another replica made it. */
  async rotateIfDue(now: number): Promise<RotationResult | null> {
    const { store, keys, keysIn, intervalSeconds, overlapSeconds } = this.#options;
    if (intervalSeconds === null) return null;
    const active = await keys.activeSigningKey('token');
    const dueAt = active.createdAt + intervalSeconds * 1000;
    if (now < dueAt) {
      await this.#publishNextIfDue(now, dueAt);
      return null;
    }
    const rotated = await store.transaction(async (tx) => {
      const rotation = await keysIn(tx.keys).rotateIfStillActive('token', active.kid, now, overlapSeconds);
      if (rotation === null) return null;
      await tx.audit.append(
        {
          type: 'keys.rotated',
          actor: 'system',
          reason: `scheduled: the active key was older than tokens.rotation_interval (${intervalSeconds}s)`,
          data: {
            purpose: 'token',
            trigger: 'schedule',
            kid: rotation.kid,
            alg: rotation.alg,
            retiredKids: rotation.retiredKids,
            publishUntil: rotation.publishUntil,
            deleted: rotation.deleted,
          },
        },
        now,
      );
      return rotation;
    });
    // Whoever rotated, this replica's view is stale: re-read it instead of waiting for the refresh.
    keys.invalidate();
    return rotated;
  }

  /**
   * Within `prepublishSeconds` of the rotation, publishes the next key (once: a replica that finds
   * one already published does nothing), so verifiers that cache the JWKS know it before it signs.
   * Two replicas racing may each publish one; the rotation promotes one and retires the other.
   */
  async #publishNextIfDue(now: number, dueAt: number): Promise<void> {
    const { store, keys, keysIn, prepublishSeconds } = this.#options;
    if (prepublishSeconds === null || prepublishSeconds === undefined) return;
    if (now < dueAt - prepublishSeconds * 1000 || (await keys.nextKid()) !== undefined) return;
    await store.transaction(async (tx) => {
      const next = await keysIn(tx.keys).publishNext(now);
      if (!next.created) return;
      await tx.audit.append(
        {
          type: 'keys.next_published',
          actor: 'system',
          reason: `the next token key is published ${prepublishSeconds}s before the scheduled rotation`,
          data: { purpose: 'token', kid: next.kid, activeFrom: dueAt },
        },
        now,
      );
    });
    keys.invalidate();
  }
}
