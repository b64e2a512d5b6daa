/**
 * SQLite through better-sqlite3: one file, one connection, one process. Kysely's SQLite driver
 * queues every query and transaction on that connection, so concurrent `transaction` calls run one
 * after the other.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  sql,
} from 'kysely';
import BetterSqlite3, { type SqliteDatabaseHandle, type SqliteStatementHandle } from './better-sqlite3.js';
import type { Database } from './schema.js';
import type { StorageBackend } from './storage-backend.js';

/** How long a statement waits for another process's lock on the file before failing with SQLITE_BUSY. */
export const sqliteBusyTimeoutMs = 5000;

/**
 * Starts every transaction with BEGIN IMMEDIATE. A deferred BEGIN takes the write lock only at the
 * first write; if another process (a second `portcullis` on the same file) wrote in between, SQLite
 * fails the upgrade with SQLITE_BUSY at once instead of waiting `busy_timeout`.
 */
class ImmediateTransactionDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateTransactionSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateTransactionDriver(this.#config);
  }
}

function openDatabaseFile(path: string): SqliteDatabaseHandle {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new BetterSqlite3(path);
  try {
    // WAL lets readers (a backup, `sqlite3` in a shell) work while Portcullis writes. `synchronous`
    // stays at its FULL default: a committed audit event must survive a power cut.
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
}

/** Compiled statements kept per connection; enough for every query shape Portcullis uses. */
export const sqliteStatementCacheSize = 500;

/**
 * better-sqlite3 compiles SQL afresh on every `prepare`, and Kysely prepares every query; the same
 * few hundred statements run over and over (a profile of the gateway's recorder showed 15 % of its
 * CPU there). Compiled statements are kept, least recently used evicted first. Safe because
 * Kysely runs one query at a time on this connection and Portcullis never streams from SQLite;
 * SQLite recompiles a kept statement by itself after a schema change.
 */
function withStatementCache(
  database: SqliteDatabaseHandle,
  capacity = sqliteStatementCacheSize,
): SqliteDatabase {
  const statements = new Map<string, SqliteStatementHandle>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      const kept = statements.get(text);
      if (kept) {
        statements.delete(text);
        statements.set(text, kept);
        return kept;
      }
      const statement = database.prepare(text);
      statements.set(text, statement);
      if (statements.size > capacity) {
        const oldest = statements.keys().next().value;
        if (oldest !== undefined) statements.delete(oldest);
      }
      return statement;
    },
  };
}

/** Opens (creating if needed) the SQLite database at `path`, or an in-memory one for `:memory:`. */
export function openSqliteBackend(path: string): StorageBackend {
  const db = new Kysely<Database>({
    dialect: new ImmediateTransactionSqliteDialect({ database: withStatementCache(openDatabaseFile(path)) }),
  });
  return {
    dialect: 'sqlite',
    db,
    // BEGIN IMMEDIATE is both the lock (another process waits for it) and what makes a failed
    // migration leave no trace: SQLite's DDL is transactional, even though Kysely's Migrator does
    // not use a transaction on SQLite.
    withSchemaLock: (work) =>
      db.connection().execute(async (connection) => {
        await sql`begin immediate`.execute(connection);
        try {
          const result = await work(connection);
          await sql`commit`.execute(connection);
          return result;
        } catch (error) {
          await sql`rollback`.execute(connection);
          throw error;
        }
      }),
    transaction: (work) => db.transaction().execute(work),
    close: () => db.destroy(),
  };
}
