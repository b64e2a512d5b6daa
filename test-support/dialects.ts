/**
 * One test suite, both databases (Kysely's practice): `forEachDialect` declares the same `describe`
 * block once for SQLite and once for PostgreSQL, and gives every test its own freshly migrated
 * database and an open {@link Store} on it.
 *
 * - SQLite: a file in a new directory under `os.tmpdir()`, removed after the test.
 * - PostgreSQL: a new database on the shared server (see `postgres.ts`), dropped after the test.
 *   Where the server is unreachable the PostgreSQL block is one skipped test with the reason;
 *   with `CI=true` it is a failure instead.
 *
 * `PORTCULLIS_TEST_DIALECTS=sqlite` (or `postgres`, comma-separated) runs only the dialects named.
 *
 * @example
 * import { it } from 'node:test';
 * import { forEachDialect } from '../../test-support/dialects.js';
 *
 * forEachDialect('grant expiry', (ctx) => {
 *   it('expires on time', async () => {
 *     await ctx.store.transaction(async (tx) => { … });
 *     const replica = await ctx.openStore(); // a second replica on the same database
 *   });
 * });
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Store } from '../src/app/ports.js';
import { type OpenStoreOptions, openStore, type StoreDialect } from '../src/storage/open-store.js';
import { createTestDatabase, postgresSkipReason } from './postgres.js';

export type { StoreDialect } from '../src/storage/open-store.js';

/** What a test inside {@link forEachDialect} works with. Read its members inside tests and hooks only. */
export interface DialectTestContext {
  /** The dialect of this copy of the suite; usable at declaration time too. */
  readonly dialect: StoreDialect;
  /** URL of the current test's own database, for `openStore` or a second process. */
  readonly url: string;
  /** A Store on {@link url}, migrated and open before the test, closed after it. */
  readonly store: Store;
  /**
   * Opens one more Store on the current test's database (another replica, or a reopen after a
   * restart). It is closed after the test; closing it earlier is fine.
   *
   * On SQLite the second Store is a second connection in the same thread, and better-sqlite3 waits
   * for a lock synchronously: do not keep a transaction of one Store open while the other writes
   * (it would fail with SQLITE_BUSY after the busy timeout). Single statements interleave fine.
   */
  openStore(options?: OpenStoreOptions): Promise<Store>;
}

export interface ForEachDialectOptions {
  /** Options for {@link DialectTestContext.store} (and the default for `ctx.openStore`). */
  readonly storeOptions?: OpenStoreOptions;
  /** Dialects to run; default both, narrowed further by PORTCULLIS_TEST_DIALECTS. */
  readonly dialects?: readonly StoreDialect[];
}

const allDialects: readonly StoreDialect[] = ['sqlite', 'postgres'];

function selectedDialects(requested: readonly StoreDialect[]): StoreDialect[] {
  const fromEnvironment = process.env.PORTCULLIS_TEST_DIALECTS?.split(',').map((name) => name.trim());
  return requested.filter((dialect) => fromEnvironment === undefined || fromEnvironment.includes(dialect));
}

/** An empty database of one dialect, for tests that need it unmigrated. */
export interface EmptyTestDatabase {
  readonly url: string;
  /** Deletes the database (and, for SQLite, its directory). */
  drop(): Promise<void>;
}

/**
 * Creates an empty, unmigrated database: a file in a new temporary directory for SQLite, a new
 * database on the shared server for PostgreSQL. The caller drops it.
 */
export async function createEmptyTestDatabase(dialect: StoreDialect): Promise<EmptyTestDatabase> {
  if (dialect === 'postgres') return createTestDatabase();
  const directory = await mkdtemp(join(tmpdir(), 'portcullis-test-'));
  return {
    url: `sqlite:${join(directory, 'portcullis.db')}`,
    drop: () => rm(directory, { recursive: true, force: true }),
  };
}

/**
 * Declares `describe(`${name} (sqlite)`)` and `describe(`${name} (postgres)`)`, each running `suite`
 * with a {@link DialectTestContext}. Hooks and tests that `suite` declares run inside these blocks,
 * after the context's per-test `beforeEach` (so `ctx.store` is ready in the suite's own
 * `beforeEach`) and before its `afterEach` cleanup.
 */
export function forEachDialect(
  name: string,
  suite: (ctx: DialectTestContext) => void,
  options: ForEachDialectOptions = {},
): void {
  for (const dialect of selectedDialects(options.dialects ?? allDialects)) {
    describe(`${name} (${dialect})`, async () => {
      if (dialect === 'postgres') {
        // Throws in CI, which fails this block instead of skipping it.
        const skipReason = await postgresSkipReason();
        if (skipReason !== undefined) {
          it('PostgreSQL tests', { skip: skipReason }, () => {});
          return;
        }
      }

      let current: { database: EmptyTestDatabase; store: Store; stores: Store[] } | undefined;
      const active = () => {
        if (current === undefined) throw new Error('The dialect test context is only usable inside a test');
        return current;
      };

      beforeEach(async () => {
        const database = await createEmptyTestDatabase(dialect);
        try {
          const store = await openStore(database.url, options.storeOptions);
          current = { database, store, stores: [store] };
        } catch (error) {
          await database.drop();
          throw error;
        }
      });

      afterEach(async () => {
        const finished = current;
        current = undefined;
        if (finished === undefined) return;
        try {
          await Promise.all(finished.stores.map((store) => store.close()));
        } finally {
          await finished.database.drop();
        }
      });

      suite({
        dialect,
        get url() {
          return active().database.url;
        },
        get store() {
          return active().store;
        },
        async openStore(storeOptions = options.storeOptions) {
          const test = active();
          const store = await openStore(test.database.url, storeOptions);
          test.stores.push(store);
          return store;
        },
      });
    });
  }
}
