/**
 * PostgreSQL through a node-postgres pool: several Portcullis replicas share one database.
 * Transactions run at READ COMMITTED; races between replicas are settled by the compare-and-swap
 * on `access_requests.version` and by unique constraints, not by stronger isolation.
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { guardedPoolSettings } from '../postgres/guarded-client.js';
import type { Database } from './schema.js';
import type { StorageBackend } from './storage-backend.js';

const int8Oid = 20;

/**
 * Key of the session advisory lock held while migrating. Arbitrary, but fixed for every replica and
 * release; it must differ from other advisory locks Portcullis takes (leader election) and from
 * Kysely's own migration lock.
 */
export const migrationAdvisoryLockKey = 7_305_414_826_119_001;

/**
 * Timestamps are bigint (int8) columns holding milliseconds, and `count(*)` is int8 too: both are
 * far below 2^53, so they are read as numbers. A value that would lose precision is an error, not a
 * silently wrong number.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`int8 value ${text} is outside the safe integer range of a JavaScript number`);
  }
  return value;
}

// Set on the pool, not on pg's global parser, so other pg users in the process keep their settings.
const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === int8Oid && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface PostgresBackendOptions {
  /** Connections in the pool. Default 10. */
  readonly maxConnections?: number;
  /**
   * Called with errors of idle pooled connections (the server restarted, a proxy cut the line).
   * The pool drops such a connection and opens a new one on demand. Default: ignored.
   */
  readonly onBackgroundError?: (error: Error) => void;
}

/** Opens a pool on `connectionString`. No connection is made until the first query. */
export function openPostgresBackend(
  connectionString: string,
  options: PostgresBackendOptions = {},
): StorageBackend {
  const pool = new pg.Pool({
    // Logs in only as the URL's require_auth and channel_binding allow.
    ...guardedPoolSettings(connectionString, 'storage.url'),
    max: options.maxConnections ?? 10,
    // A parameter in the URL wins over this default.
    application_name: 'portcullis',
    types: typeParsers,
  });
  // Every connection gets its own listener for its whole life. The pool listens only while a
  // connection is idle: one that the server cuts while it is checked out but between two queries
  // (a restart, a failover) would emit an uncaught 'error' and end the process. Its query fails on
  // its own, and the pool drops a connection that is no longer usable when it comes back.
  pool.on('connect', (client) => {
    client.on('error', (error) => options.onBackgroundError?.(error));
  });
  // The idle case is reported by the listener above; this one only keeps the pool's event handled.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    dialect: 'postgres',
    db,
    withSchemaLock: (work) =>
      db.connection().execute(async (connection) => {
        await sql`select pg_advisory_lock(${migrationAdvisoryLockKey})`.execute(connection);
        try {
          return await work(connection);
        } finally {
          await sql`select pg_advisory_unlock(${migrationAdvisoryLockKey})`.execute(connection);
        }
      }),
    transaction: (work) => db.transaction().setIsolationLevel('read committed').execute(work),
    close: () => db.destroy(),
  };
}
