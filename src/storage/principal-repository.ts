/** Principals in the `principals` table, refreshed at each login. */
import { type Kysely, type Selectable, sql } from 'kysely';
import type { PrincipalRepository, StoredPrincipal } from '../app/ports.js';
import { parseIdentity } from '../core/identity-links.js';
import { type Principal, type PrincipalLock, type PrincipalStanding, standingOf } from '../core/principal.js';
import type { Database, PrincipalsTable } from './schema.js';

/**
 * The identity a row is keyed by: that of the id (`idp:subject`), so a linked identity signing in
 * as its canonical principal never collides with the unique (idp, subject) of another row.
 */
function identityOf(id: string): { idp: string; subject: string } {
  const identity = parseIdentity(id);
  if (!identity) throw new Error(`not a principal id: ${id}`);
  return identity;
}

function toPrincipal(row: Selectable<PrincipalsTable>): StoredPrincipal {
  return {
    id: row.id,
    idp: row.idp,
    subject: row.subject,
    displayName: row.display_name,
    email: row.email,
    groups: JSON.parse(row.groups) as string[],
    groupsAssertedAt: row.groups_asserted_at,
    lastLoginAt: row.last_login_at,
    disabled: row.disabled !== 0,
    lock: lockOf(row),
    sessionsValidAfter: row.sessions_valid_after,
  };
}

function lockOf(row: Pick<PrincipalsTable, 'locked_at' | 'locked_by' | 'lock_reason'>): PrincipalLock | null {
  return row.locked_at === null
    ? null
    : { at: row.locked_at, by: row.locked_by ?? '', reason: row.lock_reason ?? '' };
}

/** `text` with LIKE's wildcards escaped by `\\` (SQLite has no default escape character: the query names it). */
function likePattern(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** {@link PrincipalRepository} over a Kysely instance or transaction. */
export class KyselyPrincipalRepository implements PrincipalRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Inserts the principal or replaces what the IdP asserts about it (name, e-mail, groups), with
   * `now` as the time the groups were asserted and of the last login. `disabled` is kept: logging in
   * again does not re-enable a principal that SCIM deactivated.
   */
  async upsert(principal: Principal, now: number): Promise<void> {
    const asserted = {
      ...identityOf(principal.id),
      display_name: principal.displayName,
      email: principal.email,
      groups: JSON.stringify(principal.groups),
      groups_asserted_at: now,
      last_login_at: now,
    };
    await this.#db
      .insertInto('principals')
      .values({ id: principal.id, ...asserted, disabled: 0 })
      .onConflict((conflict) => conflict.column('id').doUpdateSet(asserted))
      .execute();
  }

  async setDisabled(id: string, disabled: boolean, now: number): Promise<void> {
    await this.#setOrInsertBare(
      id,
      disabled ? { disabled: 1, sessions_valid_after: now } : { disabled: 0 },
      now,
    );
  }

  async setLock(id: string, lock: PrincipalLock | null, now: number): Promise<void> {
    await this.#setOrInsertBare(
      id,
      lock
        ? { locked_at: lock.at, locked_by: lock.by, lock_reason: lock.reason, sessions_valid_after: now }
        : { locked_at: null, locked_by: null, lock_reason: null },
      now,
    );
  }

  /** Sets `change` on the principal's row, or inserts a bare row (no groups, never logged in) with it. */
  async #setOrInsertBare(
    id: string,
    change: Partial<
      Pick<PrincipalsTable, 'disabled' | 'locked_at' | 'locked_by' | 'lock_reason' | 'sessions_valid_after'>
    >,
    now: number,
  ): Promise<void> {
    const { idp, subject } = identityOf(id);
    await this.#db
      .insertInto('principals')
      .values({
        id,
        idp,
        subject,
        display_name: subject,
        email: null,
        groups: '[]',
        groups_asserted_at: now,
        last_login_at: 0,
        disabled: 0,
        ...change,
      })
      .onConflict((conflict) => conflict.column('id').doUpdateSet(change))
      .execute();
  }

  async lockStanding(id: string): Promise<PrincipalStanding> {
    const row = await this.#db
      .updateTable('principals')
      .set((eb) => ({ disabled: eb.ref('disabled') }))
      .where('id', '=', id)
      .returning(['disabled', 'locked_at', 'locked_by', 'lock_reason'])
      .executeTakeFirst();
    return row ? standingOf({ disabled: row.disabled !== 0, lock: lockOf(row) }) : 'enabled';
  }

  async setGroups(id: string, groups: readonly string[]): Promise<boolean> {
    const result = await this.#db
      .updateTable('principals')
      .set({ groups: JSON.stringify(groups) })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async listRestricted(standing: 'locked' | 'disabled', limit: number): Promise<StoredPrincipal[]> {
    const query = this.#db.selectFrom('principals').selectAll();
    const rows =
      standing === 'locked'
        ? await query
            .where('locked_at', 'is not', null)
            .orderBy('locked_at', 'desc')
            .orderBy('id')
            .limit(limit)
            .execute()
        : await query.where('disabled', '<>', 0).orderBy('id').limit(limit).execute();
    return rows.map(toPrincipal);
  }

  async membersOf(groups: readonly string[], limit: number): Promise<StoredPrincipal[]> {
    if (groups.length === 0) return [];
    // Groups are a JSON array of strings: the LIKE narrows the rows, the parse decides exactly
    // (a group name that is a substring of another must not match it).
    const rows = await this.#db
      .selectFrom('principals')
      .selectAll()
      .where((eb) =>
        eb.or(
          groups.map(
            (group) =>
              sql<boolean>`${sql.ref('groups')} like ${`%${likePattern(JSON.stringify(group))}%`} escape '\\'`,
          ),
        ),
      )
      .where('disabled', '=', 0)
      .where('locked_at', 'is', null)
      .orderBy('id')
      .execute();
    const wanted = new Set(groups);
    return rows
      .map(toPrincipal)
      .filter((p) => p.groups.some((g) => wanted.has(g)))
      .slice(0, limit);
  }

  async get(id: string): Promise<StoredPrincipal | undefined> {
    const row = await this.#db.selectFrom('principals').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toPrincipal(row);
  }
}
