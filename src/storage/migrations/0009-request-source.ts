import type { Kysely } from 'kysely';

/**
 * Where each access request was made (`api`, `cli`, …): the policy's `context.source`, kept so
 * that the re-check at approval and activation (docs/policies.md "Re-checked before access
 * starts") decides with what the decision at creation saw. Rows from before read as `api`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('access_requests')
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('access_requests').dropColumn('source').execute();
}
