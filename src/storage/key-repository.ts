/** Signing keys (token and audit) in the `signing_keys` table. */
import { type Kysely, type Selectable, sql } from 'kysely';
import type { KeyRepository, StoredKey } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import { insertOrConflict } from './query-support.js';
import type { Database, SigningKeysTable } from './schema.js';

type Purpose = StoredKey['purpose'];

function toKey(row: Selectable<SigningKeysTable>): StoredKey {
  return {
    kid: row.kid,
    purpose: row.purpose as Purpose,
    alg: row.alg,
    publicJwk: row.public_jwk,
    sealedPrivateJwk: row.sealed_private_jwk,
    createdAt: row.created_at,
    active: row.active === 1,
    publishUntil: row.publish_until,
  };
}

function toRow(key: StoredKey): Selectable<SigningKeysTable> {
  return {
    kid: key.kid,
    purpose: key.purpose,
    alg: key.alg,
    public_jwk: key.publicJwk,
    sealed_private_jwk: key.sealedPrivateJwk,
    created_at: key.createdAt,
    active: key.active ? 1 : 0,
    publish_until: key.publishUntil,
  };
}

/** {@link KeyRepository} over a Kysely instance or transaction. */
export class KyselyKeyRepository implements KeyRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Newest first. */
  async list(purpose: Purpose): Promise<StoredKey[]> {
    const rows = await this.#db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute();
    return rows.map(toKey);
  }

  /** @throws PortcullisError `conflict` when the kid exists. */
  async insert(key: StoredKey): Promise<void> {
    await insertOrConflict(`Key ${key.kid}`, () =>
      this.#db.insertInto('signing_keys').values(toRow(key)).execute(),
    );
  }

  /**
   * Deactivates every other key of the purpose. A key's publication end only ever moves earlier: a
   * key retired by an earlier rotation keeps its own, earlier end.
   *
   * @throws PortcullisError `not_found` when `activeKid` is not a key of this purpose (retiring
   *   "every other key" would then leave nothing to sign with).
   */
  async retireOthers(purpose: Purpose, activeKid: string, publishUntil: number): Promise<void> {
    const active = await this.#db
      .selectFrom('signing_keys')
      .select('kid')
      .where('purpose', '=', purpose)
      .where('kid', '=', activeKid)
      .executeTakeFirst();
    if (active === undefined) {
      throw new PortcullisError('not_found', `No ${purpose} key ${activeKid} to keep active`);
    }
    await this.#db
      .updateTable('signing_keys')
      .set({
        active: 0,
        publish_until: sql<number>`case when publish_until is not null and publish_until < ${publishUntil}
          then publish_until else ${publishUntil} end`,
      })
      .where('purpose', '=', purpose)
      .where('kid', '!=', activeKid)
      .execute();
  }

  /**
   * Compare-and-set: deactivates `kid` only while it is active. On PostgreSQL a second transaction
   * doing the same waits for the first one's row lock and then finds the key inactive; SQLite
   * transactions (BEGIN IMMEDIATE) do not overlap at all.
   */
  async activateIfNext(purpose: Purpose, kid: string, publishedWithoutEnd: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('signing_keys')
      .set({ active: 1 })
      .where('purpose', '=', purpose)
      .where('kid', '=', kid)
      .where('active', '=', 0)
      .where('publish_until', '=', publishedWithoutEnd)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async retireIfActive(purpose: Purpose, kid: string, publishUntil: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('signing_keys')
      .set({ active: 0, publish_until: publishUntil })
      .where('purpose', '=', purpose)
      .where('kid', '=', kid)
      .where('active', '=', 1)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Deletes inactive keys whose publication ended at or before `now`. An inactive key without an
   * end is kept.
   *
   * @returns how many keys were deleted.
   */
  async deleteUnpublished(purpose: Purpose, now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('signing_keys')
      .where('purpose', '=', purpose)
      .where('active', '=', 0)
      .where('publish_until', 'is not', null)
      .where('publish_until', '<=', now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
