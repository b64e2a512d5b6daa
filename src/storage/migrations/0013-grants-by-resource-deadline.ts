import type { Kysely } from 'kysely';

/**
 * Grants by resource and deadline: the SSH revocation list, which every host of an `ssh` resource
 * fetches every minute, asks for the grants of one resource ending after a given time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('grants_resource_expires_at')
    .on('grants')
    .columns(['resource_id', 'expires_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('grants_resource_expires_at').execute();
}
