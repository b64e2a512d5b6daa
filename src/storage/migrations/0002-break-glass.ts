import type { Kysely } from 'kysely';

/** Break-glass: custodian enrolments, seals, activations, guessing counters and drills. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('break_glass_custodians')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('custodian_id', 'text', (c) => c.notNull())
    .addColumn('passphrase_hash', 'text', (c) => c.notNull())
    .addColumn('sealed_totp_secret', 'text', (c) => c.notNull())
    .addColumn('last_time_step', 'bigint')
    .addColumn('enrolled_at', 'bigint', (c) => c.notNull())
    .addColumn('rotated_at', 'bigint')
    .addPrimaryKeyConstraint('break_glass_custodians_pk', ['account_id', 'custodian_id'])
    .execute();

  await db.schema
    .createTable('break_glass_seals')
    .addColumn('account_id', 'text', (c) => c.primaryKey())
    .addColumn('seal', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('break_glass_activations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('drill', 'integer', (c) => c.notNull())
    .addColumn('initiated_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('handle_hash', 'text', (c) => c.notNull())
    .addColumn('request_ids', 'text', (c) => c.notNull())
    .addColumn('activation', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('break_glass_activations_account')
    .on('break_glass_activations')
    .columns(['account_id', 'initiated_at'])
    .execute();
  await db.schema
    .createIndex('break_glass_activations_state')
    .on('break_glass_activations')
    .columns(['state'])
    .execute();

  await db.schema
    .createTable('break_glass_guessing')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('break_glass_security_keys')
    .addColumn('credential_id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('custodian_id', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull())
    .addColumn('transports', 'text', (c) => c.notNull())
    .addColumn('aaguid', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('break_glass_security_keys_custodian')
    .on('break_glass_security_keys')
    .columns(['account_id', 'custodian_id'])
    .execute();

  await db.schema
    .createTable('break_glass_drills')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('activation_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('passed', 'integer', (c) => c.notNull())
    .addColumn('report', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('break_glass_drills_account')
    .on('break_glass_drills')
    .columns(['account_id', 'at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'break_glass_drills',
    'break_glass_security_keys',
    'break_glass_guessing',
    'break_glass_activations',
    'break_glass_seals',
    'break_glass_custodians',
  ])
    await db.schema.dropTable(table).execute();
}
