import type { Kysely } from 'kysely';

/**
 * `audit_head.pruned_through`: the last audit sequence removed by retention (docs/audit.md#retention).
 * Readers see only events after it, so rows still being deleted in batches are never read, and an
 * export starts right after it, at the signed checkpoint that anchors the rest of the chain.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('audit_head')
    .addColumn('pruned_through', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('audit_head').dropColumn('pruned_through').execute();
}
