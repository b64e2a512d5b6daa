import { type Kysely, sql } from 'kysely';

/**
 * One recorded drill per drill activation: a unique index on `break_glass_drills.activation_id`.
 * Before it, a drill could be recorded again and again for the same ended activation, each record
 * making the account look freshly drilled. Duplicates already stored are removed first, keeping
 * the earliest record of each activation (the one the drill itself produced).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    delete from break_glass_drills
    where exists (
      select 1 from break_glass_drills earlier
      where earlier.activation_id = break_glass_drills.activation_id
        and (earlier.at < break_glass_drills.at
          or (earlier.at = break_glass_drills.at and earlier.id < break_glass_drills.id))
    )
  `.execute(db);
  await db.schema
    .createIndex('break_glass_drills_activation')
    .on('break_glass_drills')
    .column('activation_id')
    .unique()
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('break_glass_drills_activation').execute();
}
