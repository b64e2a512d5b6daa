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
        [{ id: 1, seq: 0, hash: '0'.repeat(64), pruned_through: 0 }],
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

  it('0010 gives requests pending before it 24 hours from when they were made, and no others a deadline', async () => {
    await withEmptyBackend(ctx.dialect, async (backend) => {
      const names = Object.keys(releasedMigrations);
      const before = Object.fromEntries(
        names.filter((name) => name < '0010').map((name) => [name, releasedMigrations[name] as Migration]),
      );
      await migrateToLatest(backend, before);
      const row = (id: string, state: string) => ({
        id,
        requester_id: 'demo:alice',
        resource_id: 'demo-db',
        role: 'readonly',
        duration_seconds: 600,
        reason: 'r',
        ticket: null,
        state,
        route: '{}',
        reviews: '[]',
        created_at: 1_000,
        updated_at: 1_000,
        activated_at: null,
        expires_at: null,
        ended_at: null,
        end_reason: null,
        version: 1,
      });
      const db = backend.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      await db
        .insertInto('access_requests')
        .values([row('waiting', 'pending'), row('done', 'denied')])
        .execute();
      await migrateToLatest(backend);
      const deadlines = await db
        .selectFrom('access_requests')
        .select(['id', 'review_by'])
        .orderBy('id')
        .execute();
      assert.deepEqual(deadlines, [
        { id: 'done', review_by: null },
        { id: 'waiting', review_by: 1_000 + 86_400_000 },
      ]);
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
