/**
 * A KeyRepository held in memory, for tests and tools that need no persistence. It follows the
 * semantics of the SQL repository: rows are copied in and out, a retired key's publication end
 * only moves earlier, and an inactive key without an end is never deleted.
 */
import type { KeyRepository, StoredKey } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';

export class MemoryKeyRepository implements KeyRepository {
  readonly #rows = new Map<string, StoredKey>();

  /** Newest first. */
  async list(purpose: StoredKey['purpose']): Promise<StoredKey[]> {
    return [...this.#rows.values()]
      .filter((key) => key.purpose === purpose)
      .sort((a, b) => b.createdAt - a.createdAt || (a.kid < b.kid ? 1 : -1))
      .map((key) => ({ ...key }));
  }

  async insert(key: StoredKey): Promise<void> {
    if (this.#rows.has(key.kid)) throw new PortcullisError('conflict', `Key ${key.kid} already exists`);
    this.#rows.set(key.kid, { ...key });
  }

  async retireOthers(purpose: StoredKey['purpose'], activeKid: string, publishUntil: number): Promise<void> {
    if (this.#rows.get(activeKid)?.purpose !== purpose) {
      throw new PortcullisError('not_found', `No ${purpose} key ${activeKid} to keep active`);
    }
    for (const key of this.#rows.values()) {
      if (key.purpose === purpose && key.kid !== activeKid) {
        const end = key.publishUntil === null ? publishUntil : Math.min(key.publishUntil, publishUntil);
        this.#rows.set(key.kid, { ...key, active: false, publishUntil: end });
      }
    }
  }

  async deleteUnpublished(purpose: StoredKey['purpose'], now: number): Promise<number> {
    let deleted = 0;
    for (const key of [...this.#rows.values()]) {
      if (key.purpose === purpose && !key.active && key.publishUntil !== null && key.publishUntil <= now) {
        this.#rows.delete(key.kid);
        deleted += 1;
      }
    }
    return deleted;
  }

  /** The raw stored rows, for assertions about what reaches the database. */
  rows(): StoredKey[] {
    return [...this.#rows.values()].map((key) => ({ ...key }));
  }
}
