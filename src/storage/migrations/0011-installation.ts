import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';

/**
 * One row naming this installation: what Portcullis writes into the target-side marks of its
 * grants (a PostgreSQL login's comment), so that reconciliation acts only on its own and never on
 * another installation's that manages the same target. Made once; a restore from a backup keeps it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('installation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await (db as Kysely<{ installation: { id: string; created_at: number } }>)
    .insertInto('installation')
    .values({ id: randomUUID(), created_at: Date.now() })
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('installation').execute();
}
