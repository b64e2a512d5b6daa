import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Kysely, type Migration, sql } from 'kysely';
import { createEmptyTestDatabase, forEachDialect } from '../../test-support/dialects.js';
import { migrateToLatest } from './migrate.js';
import { migrations as releasedMigrations } from './migrations/index.js';
import { migrationAdvisoryLockKey, openPostgresBackend } from './postgres-backend.js';
import { openSqliteBackend } from './sqlite-backend.js';
import type { StorageBackend, StoreDialect } from './storage-backend.js';
import { parseStoreUrl } from './store-url.js';

function openBackend(url: string): StorageBackend {
  const location = parseStoreUrl(url);
  return location.dialect === 'sqlite'
    ? openSqliteBackend(location.path)
    : openPostgresBackend(location.connectionString);
}

const createTable = (name: string): Migration => ({
  up: (db: Kysely<unknown>) => db.schema.createTable(name).addColumn('id', 'integer').execute(),
});

const failing: Migration = {
  up: async (db: Kysely<unknown>) => {
    await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
    throw new Error('this migration is broken');
  },
};

async function tableExists(backend: StorageBackend, name: string): Promise<boolean> {
  const tables = await backend.db.introspection.getTables();
  return tables.some((table) => table.name === name);
}

async function withEmptyBackend(dialect: StoreDialect, test: (backend: StorageBackend) => Promise<void>) {
  const database = await createEmptyTestDatabase(dialect);
  const backend = openBackend(database.url);
  try {
    await test(backend);
  } finally {
    await backend.close();
    await database.drop();
  }
}

forEachDialect('migrateToLatest', (ctx) => {
  it('applies the released migrations once', async () => {
    await withEmptyBackend(ctx.dialect, async (backend) => {
      assert.deepEqual(await migrateToLatest(backend), Object.keys(releasedMigrations));
      assert.deepEqual(await migrateToLatest(backend), []);
      const head = await backend.db.selectFrom('audit_head').selectAll().execute();
      assert.deepEqual(
        head,
        [{ id: 1, seq: 0, hash: '0'.repeat(64) }],
        'genesis head, bigint read as a number',
      );
    });
  });

  it('applies all pending migrations or none: a failure leaves no half-migrated schema', async () => {
    await withEmptyBackend(ctx.dialect, async (backend) => {
      await assert.rejects(
        migrateToLatest(backend, { '0001-a': createTable('first'), '0002-b': failing }),
        (error: unknown) =>
          error instanceof Error &&
          error.message === 'Database migration 0002-b failed' &&
          (error.cause as Error).message === 'this migration is broken',
      );
      assert.equal(await tableExists(backend, 'first'), false);
      assert.equal(await tableExists(backend, 'half_done'), false);

      assert.deepEqual(await migrateToLatest(backend, { '0001-a': createTable('first') }), ['0001-a']);
      assert.equal(await tableExists(backend, 'first'), true);
    });
  });

  if (ctx.dialect === 'postgres') {
    it('releases its advisory lock after migrating, even after a failure', async () => {
      await withEmptyBackend(ctx.dialect, async (backend) => {
        await migrateToLatest(backend);
        await assert.rejects(migrateToLatest(backend, { ...releasedMigrations, '9999-broken': failing }));
        const other = openPostgresBackend(ctx.url);
        try {
          const { rows } = await sql<{ taken: boolean }>`
            select pg_try_advisory_lock(${migrationAdvisoryLockKey}) as taken`.execute(other.db);
          assert.equal(rows[0]?.taken, true);
        } finally {
          await other.close();
        }
      });
    });
  }
});
