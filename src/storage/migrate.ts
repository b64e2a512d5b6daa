/** Brings the schema to the latest migration, safely when several replicas start at once. */
import type { Kysely, Migration, MigrationResult } from 'kysely';
import { Migrator } from 'kysely';
import { migrations as releasedMigrations } from './migrations/index.js';
import type { Database } from './schema.js';
import type { StorageBackend } from './storage-backend.js';

async function runMigrator(
  connection: Kysely<Database>,
  migrations: Readonly<Record<string, Migration>>,
): Promise<readonly MigrationResult[]> {
  const provider = { getMigrations: async () => ({ ...migrations }) };
  const { error, results = [] } = await new Migrator({ db: connection, provider }).migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(failed ? `Database migration ${failed} failed` : 'Database migration failed', {
      cause: error,
    });
  }
  return results;
}

/**
 * Applies pending migrations under the backend's schema lock; a no-op when the schema is current.
 * All pending migrations apply together or not at all (one transaction on both dialects).
 *
 * @param migrations the set to apply; the released migrations unless a test passes its own.
 * @returns the names of the migrations applied now.
 */
export async function migrateToLatest(
  backend: StorageBackend,
  migrations: Readonly<Record<string, Migration>> = releasedMigrations,
): Promise<string[]> {
  const results = await backend.withSchemaLock((connection) => runMigrator(connection, migrations));
  return results.map((result) => result.migrationName);
}
