import { type Kysely, sql } from 'kysely';

/**
 * The deadline by which a pending request must be reviewed (`requests.pending_ttl`, fixed when the
 * request is made). Requests already pending when this runs get 24 hours from when they were made,
 * the default, since the configured value is not known here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('access_requests').addColumn('review_by', 'bigint').execute();
  await sql`update access_requests set review_by = created_at + 86400000 where state = 'pending'`.execute(db);
  await db.schema
    .createIndex('access_requests_state_review_by')
    .on('access_requests')
    .columns(['state', 'review_by'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('access_requests_state_review_by').execute();
  await db.schema.alterTable('access_requests').dropColumn('review_by').execute();
}
