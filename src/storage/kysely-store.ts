/** The {@link Store} port assembled from the repositories over one storage backend. */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely } from 'kysely';
import type { AuditAppender, AuditReader, Store, Transaction } from '../app/ports.js';
import { KyselyAuditRetentionRepository } from './audit-retention-repository.js';
import { KyselyBreakGlassRepository } from './break-glass-repository.js';
import { KyselyEphemeralStore } from './ephemeral-store.js';
import { KyselyGrantRepository } from './grant-repository.js';
import { KyselyKeyRepository } from './key-repository.js';
import { KyselyNotificationCursorRepository } from './notification-cursor-repository.js';
import { KyselyPrincipalRepository } from './principal-repository.js';
import { KyselyRequestRepository } from './request-repository.js';
import type { Database } from './schema.js';
import { KyselyScimRepository } from './scim-repository.js';
import type { StorageBackend, StoreDialect } from './storage-backend.js';

/** Builds the audit appender of one transaction; `db` is that transaction. */
export type AuditAppenderFactory = (db: Kysely<Database>, dialect: StoreDialect) => AuditAppender;

/** Builds the store's audit reader over the whole database. */
export type AuditReaderFactory = (db: Kysely<Database>) => AuditReader;

function repositories(db: Kysely<Database>): Omit<Transaction, 'audit'> {
  return {
    requests: new KyselyRequestRepository(db),
    grants: new KyselyGrantRepository(db),
    principals: new KyselyPrincipalRepository(db),
    scim: new KyselyScimRepository(db),
    keys: new KyselyKeyRepository(db),
    ephemeral: new KyselyEphemeralStore(db),
    breakGlass: new KyselyBreakGlassRepository(db),
    notificationCursors: new KyselyNotificationCursorRepository(db),
    auditRetention: new KyselyAuditRetentionRepository(db),
  };
}

/**
 * Wraps every method of `target` (all of them async) so it first calls `check`; a failed check is a
 * rejected promise, like any other failure of these methods.
 */
function checked<T extends object>(target: T, check: () => void): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        try {
          check();
        } catch (error) {
          return Promise.reject(error);
        }
        return value.apply(object, args);
      };
    },
  });
}

function checkedAll<T extends object>(targets: T, check: () => void): T {
  return Object.fromEntries(
    Object.entries(targets).map(([name, target]) => [name, checked(target as object, check)]),
  ) as T;
}

/**
 * Assembles a Store over an open, migrated backend.
 *
 * Inside `transaction(work)`, `work` must use its `tx` argument only: calling the Store itself there
 * throws, because on SQLite it would wait forever for the one connection the transaction holds, and
 * on PostgreSQL it would silently run outside the transaction. Likewise `tx` throws once its
 * transaction has ended.
 */
export function createStore(
  backend: StorageBackend,
  audit: { readonly appender: AuditAppenderFactory; readonly reader: AuditReaderFactory },
): Store {
  // Per store, so a transaction in one store does not block using another (a second replica in a test).
  const openTransaction = new AsyncLocalStorage<{ open: boolean }>();
  const outsideTransaction = () => {
    if (openTransaction.getStore()?.open) {
      throw new Error(
        'Store used inside its own transaction: use the `tx` passed to the transaction callback instead',
      );
    }
  };
  let closing: Promise<void> | undefined;

  return {
    dialect: backend.dialect,
    ...checkedAll(repositories(backend.db), outsideTransaction),
    auditLog: checked(audit.reader(backend.db), outsideTransaction),

    async installationId() {
      outsideTransaction();
      const row = await backend.db.selectFrom('installation').select('id').executeTakeFirst();
      if (!row) throw new Error('The installation table is empty: the schema was not migrated');
      return row.id;
    },

    async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
      outsideTransaction();
      return backend.transaction(async (trx) => {
        const scope = { open: true };
        const whileOpen = () => {
          if (!scope.open) throw new Error('Transaction used after it ended');
        };
        const tx: Transaction = checkedAll(
          { ...repositories(trx), audit: audit.appender(trx, backend.dialect) },
          whileOpen,
        );
        try {
          return await openTransaction.run(scope, () => work(tx));
        } finally {
          scope.open = false;
        }
      });
    },

    close() {
      closing ??= backend.close();
      return closing;
    },
  };
}
