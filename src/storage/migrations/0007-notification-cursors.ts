import type { Kysely } from 'kysely';

/**
 * One row per notification channel: the last audit sequence it has handled, and the replica that
 * delivers for it until its lease ends (src/app/notification-relay.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('notification_cursors')
    .addColumn('channel', 'text', (c) => c.primaryKey())
    .addColumn('position', 'bigint', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('notification_cursors').execute();
}
