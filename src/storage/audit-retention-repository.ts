/**
 * What audit retention changes in the database (docs/audit.md#retention): the floor below which
 * events are gone, and the removal of events and checkpoints under it. Deciding what to remove is
 * the retention job's (src/app/audit-retention.ts).
 */
import type { Kysely } from 'kysely';
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
    const floor = await this.#floor();
    const lowest = await this.#db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.min('seq').as('seq'))
      .executeTakeFirst();
    if (lowest?.seq === null || lowest?.seq === undefined) return 0;
    const from = Number(lowest.seq);
    if (from > floor) return 0;
    // A range on the primary key rather than DELETE … LIMIT, which PostgreSQL does not have.
    const result = await this.#db
      .deleteFrom('audit_events')
      .where('seq', '>=', from)
      .where('seq', '<=', Math.min(floor, from + limit - 1))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deletePrunedCheckpoints(): Promise<number> {
    const floor = await this.#floor();
    const result = await this.#db.deleteFrom('audit_checkpoints').where('seq', '<', floor).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async #floor(): Promise<number> {
    const head = await this.#db
      .selectFrom('audit_head')
      .select('pruned_through')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(head.pruned_through);
  }
}
