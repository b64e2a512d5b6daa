/** Grants in the `grants` table; the sealed credentials column is reached only through its own methods. */
import type { Kysely, Selectable } from 'kysely';
import type { GrantRepository } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import { type Artefacts, type Grant, type GrantStatus, grantStatuses } from '../core/grant.js';
import { countsWithZeros, insertOrConflict, listLimit } from './query-support.js';
import type { Database, GrantsTable } from './schema.js';

const grantColumns = [
  'id',
  'request_id',
  'principal_id',
  'resource_id',
  'role',
  'status',
  'not_before',
  'expires_at',
  'artefacts',
  'revoke_attempts',
  'next_attempt_at',
  'last_error',
  'last_error_reference',
  'revoked_at',
] as const satisfies readonly (keyof GrantsTable)[];

type GrantRow = Pick<Selectable<GrantsTable>, (typeof grantColumns)[number]>;

const pendingRevocation: readonly GrantStatus[] = ['revoking', 'revoke_failed'];

function toGrant(row: GrantRow): Grant {
  return {
    id: row.id,
    requestId: row.request_id,
    principalId: row.principal_id,
    resourceId: row.resource_id,
    role: row.role,
    status: row.status as GrantStatus,
    notBefore: row.not_before,
    expiresAt: row.expires_at,
    artefacts: JSON.parse(row.artefacts) as Artefacts,
    revokeAttempts: row.revoke_attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    lastErrorReference: row.last_error_reference,
    revokedAt: row.revoked_at,
  };
}

function toRow(grant: Grant): GrantRow {
  return {
    id: grant.id,
    request_id: grant.requestId,
    principal_id: grant.principalId,
    resource_id: grant.resourceId,
    role: grant.role,
    status: grant.status,
    not_before: grant.notBefore,
    expires_at: grant.expiresAt,
    artefacts: JSON.stringify(grant.artefacts),
    revoke_attempts: grant.revokeAttempts,
    next_attempt_at: grant.nextAttemptAt,
    last_error: grant.lastError,
    last_error_reference: grant.lastErrorReference,
    revoked_at: grant.revokedAt,
  };
}

/** {@link GrantRepository} over a Kysely instance or transaction. Lists are newest first. */
export class KyselyGrantRepository implements GrantRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  #select() {
    return this.#db.selectFrom('grants').select(grantColumns);
  }

  async get(id: string): Promise<Grant | undefined> {
    const row = await this.#select().where('id', '=', id).executeTakeFirst();
    return row && toGrant(row);
  }

  async getByRequest(requestId: string): Promise<Grant | undefined> {
    const row = await this.#select().where('request_id', '=', requestId).executeTakeFirst();
    return row && toGrant(row);
  }

  /** @throws PortcullisError `conflict` when the id exists or the request already has a grant. */
  async insert(grant: Grant): Promise<void> {
    await insertOrConflict(`A grant for request ${grant.requestId}`, () =>
      this.#db.insertInto('grants').values(toRow(grant)).execute(),
    );
  }

  /**
   * Writes every field of the grant except its id and request (the sealed credentials are untouched).
   * @throws PortcullisError `not_found` when no such grant exists.
   */
  async update(grant: Grant): Promise<void> {
    const { id: _id, request_id: _requestId, ...columns } = toRow(grant);
    const result = await this.#db
      .updateTable('grants')
      .set(columns)
      .where('id', '=', grant.id)
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) throw new PortcullisError('not_found', `No grant ${grant.id}`);
  }

  async updateIfStatus(grant: Grant, expected: readonly GrantStatus[]): Promise<boolean> {
    if (expected.length === 0) return false;
    const { id: _id, request_id: _requestId, ...columns } = toRow(grant);
    const result = await this.#db
      .updateTable('grants')
      .set(columns)
      .where('id', '=', grant.id)
      .where('status', 'in', [...expected])
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async listForPrincipals(
    principalIds: readonly string[],
    statuses?: readonly GrantStatus[],
  ): Promise<Grant[]> {
    return this.#list({ principalIds, statuses });
  }

  async listEndedBeforeTheirTime(resourceId: string, expiringAfter: number): Promise<Grant[]> {
    const rows = await this.#select()
      .where('resource_id', '=', resourceId)
      .where('status', 'in', ['revoking', 'revoked', 'revoke_failed', 'apply_failed'])
      .where('expires_at', '>', expiringAfter)
      .orderBy('expires_at')
      .orderBy('id')
      .execute();
    return rows.map(toGrant);
  }

  async list(filter: {
    statuses?: readonly GrantStatus[];
    resourceId?: string;
    limit?: number;
    visibleTo?: { readonly principalIds: readonly string[]; readonly resourceIds: readonly string[] };
  }): Promise<Grant[]> {
    return this.#list(filter);
  }

  async #list(filter: {
    principalIds?: readonly string[];
    statuses?: readonly GrantStatus[] | undefined;
    resourceId?: string;
    limit?: number;
    visibleTo?: { readonly principalIds: readonly string[]; readonly resourceIds: readonly string[] };
  }): Promise<Grant[]> {
    if (filter.statuses?.length === 0 || filter.principalIds?.length === 0) return [];
    let query = this.#select();
    const visibleTo = filter.visibleTo;
    if (visibleTo !== undefined) {
      const held = visibleTo.principalIds.length > 0 ? visibleTo.principalIds : [''];
      const owned = visibleTo.resourceIds.length > 0 ? visibleTo.resourceIds : [''];
      query = query.where((eb) => eb.or([eb('principal_id', 'in', held), eb('resource_id', 'in', owned)]));
    }
    if (filter.principalIds !== undefined) query = query.where('principal_id', 'in', filter.principalIds);
    if (filter.resourceId !== undefined) query = query.where('resource_id', '=', filter.resourceId);
    if (filter.statuses !== undefined) query = query.where('status', 'in', filter.statuses);
    const rows = await query
      .orderBy('not_before', 'desc')
      .orderBy('id', 'desc')
      .limit(listLimit(filter.limit))
      .execute();
    return rows.map(toGrant);
  }

  /** A pending revocation without `next_attempt_at` is due at once (as in `needsRevocation`). */
  async listDueRevocations(now: number, limit: number): Promise<Grant[]> {
    const rows = await this.#select()
      .where('status', 'in', pendingRevocation)
      .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)]))
      // coalesce: SQLite sorts NULL first and PostgreSQL last; both must put "due now" first.
      .orderBy((eb) => eb.fn.coalesce('next_attempt_at', eb.lit(0)))
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toGrant);
  }

  /** 0 when a pending revocation has no `next_attempt_at`: it is due now. */
  async nextRevocationAttempt(): Promise<number | null> {
    const row = await this.#db
      .selectFrom('grants')
      .select((eb) => eb.fn.min(eb.fn.coalesce('next_attempt_at', eb.lit(0))).as('next'))
      .where('status', 'in', pendingRevocation)
      .executeTakeFirst();
    return row?.next ?? null;
  }

  /** Every known status is present, 0 when no grant is in it. */
  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.#db
      .selectFrom('grants')
      .select((eb) => ['status as key', eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    return countsWithZeros(grantStatuses, rows);
  }

  /** @throws PortcullisError `not_found` when no such grant exists. */
  async setSealedCredentials(grantId: string, sealed: string | null): Promise<void> {
    const result = await this.#db
      .updateTable('grants')
      .set({ sealed_credentials: sealed })
      .where('id', '=', grantId)
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) throw new PortcullisError('not_found', `No grant ${grantId}`);
  }

  /** null when the grant has no sealed credentials or does not exist. */
  async getSealedCredentials(grantId: string): Promise<string | null> {
    const row = await this.#db
      .selectFrom('grants')
      .select('sealed_credentials')
      .where('id', '=', grantId)
      .executeTakeFirst();
    return row?.sealed_credentials ?? null;
  }
}
