import type { Kysely } from 'kysely';

/**
 * The reference of a grant's `last_error` when that text is a target system's own (e.g.
 * PostgreSQL's, naming its admin account): only administrators are shown the text, everyone else
 * a notice with this reference, under which the audit log and the server log hold the details.
 * Rows from before have none: their text stays visible until the grant's next attempt rewrites or
 * clears it (a `revoke_failed` grant is retried within minutes).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').addColumn('last_error_reference', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('grants').dropColumn('last_error_reference').execute();
}
