/** Access requests in the `access_requests` table. */
import type { Kysely, Selectable, SelectQueryBuilder } from 'kysely';
import type { RequestFilter, RequestRepository, UnmarkedBy } from '../app/ports.js';
import { type AccessRequest, type RequestState, type Review, requestStates } from '../core/access-request.js';
import type { ApprovalRoute } from '../core/policy-decision.js';
import { countsWithZeros, insertOrConflict, listLimit } from './query-support.js';
import type { AccessRequestsTable, Database } from './schema.js';

type RequestRow = Selectable<AccessRequestsTable>;

function toRequest(row: RequestRow): AccessRequest {
  return {
    id: row.id,
    requesterId: row.requester_id,
    resourceId: row.resource_id,
    role: row.role,
    durationSeconds: row.duration_seconds,
    reason: row.reason,
    ticket: row.ticket,
    state: row.state as RequestState,
    route: JSON.parse(row.route) as ApprovalRoute,
    reviews: JSON.parse(row.reviews) as Review[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    activatedAt: row.activated_at,
    expiresAt: row.expires_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
    version: row.version,
    source: row.source,
    ...(row.review_by === null ? {} : { reviewBy: row.review_by }),
  };
}

/** The columns a transition may change; who asked for what, and when, never changes. */
function mutableColumns(request: AccessRequest) {
  return {
    state: request.state,
    reviews: JSON.stringify(request.reviews),
    updated_at: request.updatedAt,
    activated_at: request.activatedAt,
    expires_at: request.expiresAt,
    ended_at: request.endedAt,
    end_reason: request.endReason,
    version: request.version,
  };
}

function toRow(request: AccessRequest): RequestRow {
  return {
    id: request.id,
    requester_id: request.requesterId,
    resource_id: request.resourceId,
    role: request.role,
    duration_seconds: request.durationSeconds,
    reason: request.reason,
    ticket: request.ticket,
    route: JSON.stringify(request.route),
    created_at: request.createdAt,
    source: request.source ?? 'api',
    review_by: request.reviewBy ?? null,
    ...mutableColumns(request),
  };
}

/** {@link RequestRepository} over a Kysely instance or transaction. Lists are newest first. */
export class KyselyRequestRepository implements RequestRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async get(id: string): Promise<AccessRequest | undefined> {
    const row = await this.#db
      .selectFrom('access_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toRequest(row);
  }

  /** @throws PortcullisError `conflict` when the id exists. */
  async insert(request: AccessRequest): Promise<void> {
    await insertOrConflict(`Request ${request.id}`, () =>
      this.#db.insertInto('access_requests').values(toRow(request)).execute(),
    );
  }

  async update(request: AccessRequest, expectedVersion: number): Promise<boolean> {
    // INVARIANT: every write moves the version forward, or a second writer holding the same
    // expected version would also succeed and silently overwrite the first.
    if (request.version <= expectedVersion) {
      throw new Error(
        `Request ${request.id}: version ${request.version} must be greater than the expected ${expectedVersion}`,
      );
    }
    const result = await this.#db
      .updateTable('access_requests')
      .set(mutableColumns(request))
      .where('id', '=', request.id)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async list(filter: RequestFilter): Promise<AccessRequest[]> {
    if (filter.states?.length === 0) return [];
    if (filter.requesterIds?.length === 0) return [];
    let query = this.#db.selectFrom('access_requests').selectAll();
    if (filter.requesterIds !== undefined) query = query.where('requester_id', 'in', filter.requesterIds);
    const before = filter.before;
    if (before !== undefined) {
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', before.createdAt),
          eb.and([eb('created_at', '=', before.createdAt), eb('id', '<', before.id)]),
        ]),
      );
    }
    if (filter.resourceId !== undefined) query = query.where('resource_id', '=', filter.resourceId);
    if (filter.states !== undefined) query = query.where('state', 'in', filter.states);
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(listLimit(filter.limit))
      .execute();
    return rows.map(toRequest);
  }

  async listExpired(now: number, limit: number): Promise<AccessRequest[]> {
    const rows = await this.#db
      .selectFrom('access_requests')
      .selectAll()
      .where('state', '=', 'active')
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toRequest);
  }

  async listPastReviewDeadline(now: number, limit: number): Promise<AccessRequest[]> {
    const rows = await this.#db
      .selectFrom('access_requests')
      .selectAll()
      .where('state', '=', 'pending')
      .where('review_by', '<=', now)
      .orderBy('review_by')
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toRequest);
  }

  async listPendingMadeBefore(
    before: number,
    limit: number,
    unmarked?: UnmarkedBy,
  ): Promise<AccessRequest[]> {
    const rows = await this.#withoutMark(
      this.#db
        .selectFrom('access_requests')
        .selectAll()
        .where('state', '=', 'pending')
        .where('created_at', '<=', before),
      unmarked,
    )
      .orderBy('created_at')
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toRequest);
  }

  async listActiveEndingBetween(
    after: number,
    until: number,
    limit: number,
    unmarked?: UnmarkedBy,
  ): Promise<AccessRequest[]> {
    const rows = await this.#withoutMark(
      this.#db
        .selectFrom('access_requests')
        .selectAll()
        .where('state', '=', 'active')
        .where('expires_at', '>', after)
        .where('expires_at', '<=', until),
      unmarked,
    )
      .orderBy('expires_at')
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toRequest);
  }

  /** Leaves out requests with a live mark of `unmarked.kind` in the ephemeral store, in SQL, before any limit. */
  #withoutMark<Q extends SelectQueryBuilder<Database, 'access_requests', object>>(
    query: Q,
    unmarked?: UnmarkedBy,
  ): Q {
    if (unmarked === undefined) return query;
    return query.where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('ephemeral_state')
            .select('ephemeral_state.key')
            .where('ephemeral_state.kind', '=', unmarked.kind)
            .whereRef('ephemeral_state.key', '=', 'access_requests.id')
            .where('ephemeral_state.expires_at', '>', unmarked.now),
        ),
      ),
    ) as Q;
  }

  async nextReviewDeadline(): Promise<number | null> {
    const row = await this.#db
      .selectFrom('access_requests')
      .select((eb) => eb.fn.min('review_by').as('next'))
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return row?.next ?? null;
  }

  async listApprovedAwaitingActivation(limit: number): Promise<AccessRequest[]> {
    const rows = await this.#db
      .selectFrom('access_requests')
      .selectAll()
      .where('state', '=', 'approved')
      .orderBy('updated_at')
      .orderBy('id')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toRequest);
  }

  async nextExpiry(): Promise<number | null> {
    const row = await this.#db
      .selectFrom('access_requests')
      .select((eb) => eb.fn.min('expires_at').as('next'))
      .where('state', '=', 'active')
      .executeTakeFirst();
    return row?.next ?? null;
  }

  /** Every known state is present, 0 when no request is in it. */
  async countByState(): Promise<Record<string, number>> {
    const rows = await this.#db
      .selectFrom('access_requests')
      .select((eb) => ['state as key', eb.fn.countAll<number>().as('count')])
      .groupBy('state')
      .execute();
    return countsWithZeros(requestStates, rows);
  }
}
