/** Short-lived values in the `ephemeral_state` table, shared by every replica. */
import type { Kysely } from 'kysely';
import type { EphemeralStore } from '../app/ports.js';
import type { Database } from './schema.js';

/**
 * {@link EphemeralStore} over a Kysely instance or transaction. A value is live while
 * `now < expiresAt`.
 */
export class KyselyEphemeralStore implements EphemeralStore {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Stores `value` under `kind` + `key`, replacing any value already there. */
  async put(kind: string, key: string, value: string, expiresAt: number): Promise<void> {
    await this.#db
      .insertInto('ephemeral_state')
      .values({ kind, key, value, expires_at: expiresAt })
      .onConflict((conflict) =>
        conflict.columns(['kind', 'key']).doUpdateSet({ value, expires_at: expiresAt }),
      )
      .execute();
  }

  /**
   * An expired value under the key is removed first; then one INSERT … ON CONFLICT DO NOTHING: of
   * two transactions claiming the same key at once, the second waits for the first and finds the
   * row (PostgreSQL), or never runs beside it (SQLite's one writer).
   */
  async putIfAbsent(
    kind: string,
    key: string,
    value: string,
    now: number,
    expiresAt: number,
  ): Promise<boolean> {
    await this.#db
      .deleteFrom('ephemeral_state')
      .where('kind', '=', kind)
      .where('key', '=', key)
      .where('expires_at', '<=', now)
      .execute();
    const inserted = await this.#db
      .insertInto('ephemeral_state')
      .values({ kind, key, value, expires_at: expiresAt })
      .onConflict((conflict) => conflict.columns(['kind', 'key']).doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  /**
   * One DELETE … RETURNING: of two replicas taking the same key at once, exactly one gets the value.
   * An expired value is deleted too, and reported as absent.
   */
  async take(kind: string, key: string, now: number): Promise<string | undefined> {
    const row = await this.#db
      .deleteFrom('ephemeral_state')
      .where('kind', '=', kind)
      .where('key', '=', key)
      .returning(['value', 'expires_at'])
      .executeTakeFirst();
    return row !== undefined && now < row.expires_at ? row.value : undefined;
  }

  async peek(kind: string, key: string, now: number): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('ephemeral_state')
      .select(['value', 'expires_at'])
      .where('kind', '=', kind)
      .where('key', '=', key)
      .executeTakeFirst();
    return row !== undefined && now < Number(row.expires_at) ? row.value : undefined;
  }

  async list(kind: string, now: number): Promise<{ key: string; value: string }[]> {
    return this.#db
      .selectFrom('ephemeral_state')
      .select(['key', 'value'])
      .where('kind', '=', kind)
      .where('expires_at', '>', now)
      .orderBy('key')
      .execute();
  }

  /** @returns how many expired values were deleted. */
  async purgeExpired(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('ephemeral_state')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
