import type { Kysely } from 'kysely';

/**
 * An administrator's lock on a principal, beside (not in) the SCIM `disabled` flag, so an identity
 * provider's reactivation cannot lift it; the three lock columns are null while unlocked. And the
 * time of the last lock or deactivation, before which bearer tokens stay refused after an unlock.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('principals').addColumn('sessions_valid_after', 'bigint').execute();
  await db.schema.alterTable('principals').addColumn('locked_at', 'bigint').execute();
  await db.schema.alterTable('principals').addColumn('locked_by', 'text').execute();
  await db.schema.alterTable('principals').addColumn('lock_reason', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('principals').dropColumn('sessions_valid_after').execute();
  await db.schema.alterTable('principals').dropColumn('lock_reason').execute();
  await db.schema.alterTable('principals').dropColumn('locked_by').execute();
  await db.schema.alterTable('principals').dropColumn('locked_at').execute();
}
