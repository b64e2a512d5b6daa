/**
 * What audit retention changes in the database (docs/audit.md#retention): the floor below which
 * events are gone, and the removal of events and checkpoints under it. Deciding what to remove is
 * the retention job's (src/app/audit-retention.ts).
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { AuditRetentionRepository } from '../app/ports.js';
import type { Database } from './schema.js';

export class KyselyAuditRetentionRepository implements AuditRetentionRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async markPrunedThrough(throughSeq: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('audit_head')
      .set({ pruned_through: throughSeq })
      .where('id', '=', 1)
      .where('pruned_through', '<', throughSeq)
      .where('seq', '>=', throughSeq)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async deletePrunedEvents(limit: number): Promise<number> {
    const lowest = await this.#db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.min('seq').as('seq'))
      .executeTakeFirst();
    if (lowest?.seq === null || lowest?.seq === undefined) return 0;
    const from = Number(lowest.seq);
    // A range on the primary key rather than DELETE … LIMIT, which PostgreSQL does not have.
    const result = await this.#db
      .deleteFrom('audit_events')
      .where('seq', '>=', from)
      .where('seq', '<=', from + limit - 1)
      .where('seq', '<=', retentionFloor)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deletePrunedCheckpoints(): Promise<number> {
    const result = await this.#db
      .deleteFrom('audit_checkpoints')
      .where('seq', '<', retentionFloor)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** `audit_head.pruned_through` as a subquery: the floor in the same statement that honours it. */
export function retentionFloor(eb: ExpressionBuilder<Database, keyof Database>) {
  return eb.selectFrom('audit_head').select('pruned_through').where('id', '=', 1);
}
