/** SCIM users, groups and memberships (tables `scim_users`, `scim_groups`, `scim_group_members`). */
import type { Kysely, Selectable } from 'kysely';
import type { ScimGroupRecord, ScimPage, ScimQuery, ScimRepository, ScimUserRecord } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import { insertOrConflict, isUniqueViolation } from './query-support.js';
import type { Database, ScimGroupsTable, ScimUsersTable } from './schema.js';

function toUser(row: Selectable<ScimUsersTable>): ScimUserRecord {
  return {
    id: row.id,
    idp: row.idp,
    subject: row.subject,
    userName: row.user_name,
    externalId: row.external_id,
    active: row.active !== 0,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    version: row.version,
  };
}

function toGroup(row: Selectable<ScimGroupsTable>): ScimGroupRecord {
  return {
    id: row.id,
    idp: row.idp,
    displayName: row.display_name,
    externalId: row.external_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    version: row.version,
  };
}

function userRow(user: ScimUserRecord): ScimUsersTable {
  return {
    id: user.id,
    idp: user.idp,
    subject: user.subject,
    user_name: user.userName,
    user_name_key: user.userName.toLowerCase(),
    external_id: user.externalId,
    active: user.active ? 1 : 0,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    version: user.version,
  };
}

function groupRow(group: ScimGroupRecord): ScimGroupsTable {
  return {
    id: group.id,
    idp: group.idp,
    display_name: group.displayName,
    external_id: group.externalId,
    created_at: group.createdAt,
    updated_at: group.updatedAt,
    version: group.version,
  };
}

/** {@link ScimRepository} over a Kysely instance or transaction. */
export class KyselyScimRepository implements ScimRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async getUser(idp: string, id: string): Promise<ScimUserRecord | undefined> {
    const row = await this.#db
      .selectFrom('scim_users')
      .selectAll()
      .where('idp', '=', idp)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toUser(row);
  }

  async getUsers(idp: string, ids: readonly string[]): Promise<ScimUserRecord[]> {
    const found: ScimUserRecord[] = [];
    // Chunks keep every statement under SQLite's and PostgreSQL's bound-parameter limits.
    for (let start = 0; start < ids.length; start += 1000) {
      const rows = await this.#db
        .selectFrom('scim_users')
        .selectAll()
        .where('idp', '=', idp)
        .where('id', 'in', ids.slice(start, start + 1000))
        .execute();
      found.push(...rows.map(toUser));
    }
    return found;
  }

  async findUsers(
    idp: string,
    query: ScimQuery,
    offset: number,
    limit: number,
  ): Promise<ScimPage<ScimUserRecord>> {
    if (query.displayName !== undefined) return { total: 0, items: [] };
    let base = this.#db.selectFrom('scim_users').where('idp', '=', idp);
    if (query.id !== undefined) base = base.where('id', '=', query.id);
    if (query.userName !== undefined) base = base.where('user_name_key', '=', query.userName.toLowerCase());
    if (query.externalId !== undefined) base = base.where('external_id', '=', query.externalId);
    const counted = await base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
    const items =
      limit === 0
        ? []
        : await base.selectAll().orderBy('created_at').orderBy('id').offset(offset).limit(limit).execute();
    return { total: Number(counted?.n ?? 0), items: items.map(toUser) };
  }

  async insertUser(user: ScimUserRecord): Promise<void> {
    await insertOrConflict('A user with this userName or subject', () =>
      this.#db.insertInto('scim_users').values(userRow(user)).execute(),
    );
  }

  async updateUser(user: ScimUserRecord, expectedVersion: number): Promise<boolean> {
    try {
      const { id, idp, created_at, ...changes } = userRow(user);
      const result = await this.#db
        .updateTable('scim_users')
        .set(changes)
        .where('id', '=', id)
        .where('idp', '=', idp)
        .where('version', '=', expectedVersion)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    } catch (error) {
      if (isUniqueViolation(error))
        throw new PortcullisError(
          'conflict',
          'A user with this userName already exists',
          {},
          { cause: error },
        );
      throw error;
    }
  }

  async deleteUser(idp: string, id: string): Promise<void> {
    await this.removeFromAllGroups(id);
    await this.#db.deleteFrom('scim_users').where('idp', '=', idp).where('id', '=', id).execute();
  }

  async getGroup(idp: string, id: string): Promise<ScimGroupRecord | undefined> {
    const row = await this.#db
      .selectFrom('scim_groups')
      .selectAll()
      .where('idp', '=', idp)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toGroup(row);
  }

  async findGroups(
    idp: string,
    query: ScimQuery,
    offset: number,
    limit: number,
  ): Promise<ScimPage<ScimGroupRecord>> {
    if (query.userName !== undefined) return { total: 0, items: [] };
    let base = this.#db.selectFrom('scim_groups').where('idp', '=', idp);
    if (query.id !== undefined) base = base.where('id', '=', query.id);
    if (query.displayName !== undefined) base = base.where('display_name', '=', query.displayName);
    if (query.externalId !== undefined) base = base.where('external_id', '=', query.externalId);
    const counted = await base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
    const items =
      limit === 0
        ? []
        : await base.selectAll().orderBy('created_at').orderBy('id').offset(offset).limit(limit).execute();
    return { total: Number(counted?.n ?? 0), items: items.map(toGroup) };
  }

  async insertGroup(group: ScimGroupRecord): Promise<void> {
    await insertOrConflict('A group with this id', () =>
      this.#db.insertInto('scim_groups').values(groupRow(group)).execute(),
    );
  }

  async updateGroup(group: ScimGroupRecord, expectedVersion: number): Promise<boolean> {
    const { id, idp, created_at, ...changes } = groupRow(group);
    const result = await this.#db
      .updateTable('scim_groups')
      .set(changes)
      .where('id', '=', id)
      .where('idp', '=', idp)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteGroup(idp: string, id: string): Promise<void> {
    await this.removeMembers(id);
    await this.#db.deleteFrom('scim_groups').where('idp', '=', idp).where('id', '=', id).execute();
  }

  async members(groupIds: readonly string[]): Promise<Map<string, { id: string; userName: string }[]>> {
    const result = new Map<string, { id: string; userName: string }[]>(groupIds.map((id) => [id, []]));
    if (groupIds.length === 0) return result;
    const rows = await this.#db
      .selectFrom('scim_group_members as m')
      .innerJoin('scim_users as u', 'u.id', 'm.user_id')
      .select(['m.group_id', 'u.id', 'u.user_name'])
      .where('m.group_id', 'in', [...groupIds])
      .orderBy('u.user_name_key')
      .execute();
    for (const row of rows) result.get(row.group_id)?.push({ id: row.id, userName: row.user_name });
    return result;
  }

  async groupNamesOf(userIds: readonly string[]): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>(userIds.map((id) => [id, []]));
    if (userIds.length === 0) return result;
    const rows = await this.#db
      .selectFrom('scim_group_members as m')
      .innerJoin('scim_groups as g', 'g.id', 'm.group_id')
      .select(['m.user_id', 'g.display_name'])
      .where('m.user_id', 'in', [...userIds])
      .execute();
    for (const row of rows) result.get(row.user_id)?.push(row.display_name);
    return result;
  }

  async addMembers(groupId: string, userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    await this.#db
      .insertInto('scim_group_members')
      .values([...new Set(userIds)].map((userId) => ({ group_id: groupId, user_id: userId })))
      .onConflict((conflict) => conflict.columns(['group_id', 'user_id']).doNothing())
      .execute();
  }

  async removeMembers(groupId: string, userIds?: readonly string[]): Promise<void> {
    if (userIds?.length === 0) return;
    let query = this.#db.deleteFrom('scim_group_members').where('group_id', '=', groupId);
    if (userIds !== undefined) query = query.where('user_id', 'in', [...userIds]);
    await query.execute();
  }

  async removeFromAllGroups(userId: string): Promise<void> {
    await this.#db.deleteFrom('scim_group_members').where('user_id', '=', userId).execute();
  }
}
