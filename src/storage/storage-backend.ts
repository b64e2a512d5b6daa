/**
 * What the store needs from a database dialect: the handful of things that differ between SQLite and
 * PostgreSQL. Everything else (queries, repositories) is shared Kysely code. A new backend is a new
 * file implementing this interface.
 */
import type { Kysely, Transaction as KyselyTransaction } from 'kysely';
import type { Store } from '../app/ports.js';
import type { Database } from './schema.js';

export type StoreDialect = Store['dialect'];

export interface StorageBackend {
  readonly dialect: StoreDialect;
  readonly db: Kysely<Database>;
  /**
   * Runs `work` on one connection while holding a lock that every process opening the same
   * database respects, so two replicas starting together never migrate at the same time.
   */
  withSchemaLock<T>(work: (connection: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Runs `work` in one database transaction with the backend's isolation settings. */
  transaction<T>(work: (trx: KyselyTransaction<Database>) => Promise<T>): Promise<T>;
  /** Closes every connection. */
  close(): Promise<void>;
}
