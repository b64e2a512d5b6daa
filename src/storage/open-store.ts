/**
 * Entry point of the storage adapter: opens the database a storage URL names, migrates it and
 * returns the {@link Store} port.
 */
import type { Store } from '../app/ports.js';
import { KyselyAuditReader } from '../audit/audit-reader.js';
import { ChainedAuditAppender } from '../audit/chained-audit-appender.js';
import { type AuditAppenderFactory, type AuditReaderFactory, createStore } from './kysely-store.js';
import { migrateToLatest } from './migrate.js';
import { openPostgresBackend } from './postgres-backend.js';
import { openSqliteBackend } from './sqlite-backend.js';
import type { StorageBackend } from './storage-backend.js';
import { parseStoreUrl } from './store-url.js';

export type { AuditAppenderFactory, AuditReaderFactory } from './kysely-store.js';
export type { StoreDialect } from './storage-backend.js';

export interface OpenStoreOptions {
  /** Builds the audit appender of each transaction. Default: the hash-chained {@link ChainedAuditAppender}. */
  readonly auditAppenderFactory?: AuditAppenderFactory;
  /** Builds `Store.auditLog`. Default: {@link KyselyAuditReader}. */
  readonly auditReaderFactory?: AuditReaderFactory;
  /** PostgreSQL only: connections in the pool. Default 10. */
  readonly maxConnections?: number;
  /**
   * PostgreSQL only: errors of idle pooled connections, for logging. The pool replaces such a
   * connection by itself. Default: ignored.
   */
  readonly onBackgroundError?: (error: Error) => void;
}

function openBackend(url: string, options: OpenStoreOptions): StorageBackend {
  const location = parseStoreUrl(url);
  if (location.dialect === 'sqlite') return openSqliteBackend(location.path);
  return openPostgresBackend(location.connectionString, {
    ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }),
    ...(options.onBackgroundError !== undefined && { onBackgroundError: options.onBackgroundError }),
  });
}

/**
 * Opens the store at `url` and applies pending schema migrations before returning.
 *
 * - `sqlite:PATH` — a file (created with its directory if missing), WAL mode, foreign keys on;
 *   `sqlite::memory:` for a database that disappears with the process. One process only.
 * - `postgres://…` or `postgresql://…` — a connection pool; any number of replicas may share the
 *   database, and replicas starting together migrate one after the other.
 *
 * @example
 * const store = await openStore('sqlite:data/portcullis.db');
 * try {
 *   await store.transaction(async (tx) => {
 *     await tx.requests.insert(request);
 *     await tx.audit.append({ type: 'request.created', actor: request.requesterId }, now);
 *   });
 * } finally {
 *   await store.close();
 * }
 *
 * @throws PortcullisError `config_invalid` for a URL of another form; the database's own error
 *   when it cannot be reached or a migration fails (nothing is left open then).
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const backend = openBackend(url, options);
  try {
    await migrateToLatest(backend);
  } catch (error) {
    await backend.close().catch(() => {});
    throw error;
  }
  return createStore(backend, {
    appender: options.auditAppenderFactory ?? ((db, dialect) => new ChainedAuditAppender(db, dialect)),
    reader: options.auditReaderFactory ?? ((db) => new KyselyAuditReader(db)),
  });
}
