/**
 * PostgreSQL for tests: the machine's shared server at 127.0.0.1:5432 (trust auth). Each test file
 * gets a fresh database that is dropped afterwards. When CI=true an unreachable server fails the
 * test; elsewhere the PostgreSQL half of a suite is skipped with a message.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const sharedPostgresAdminUrl =
  process.env.PORTCULLIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: sharedPostgresAdminUrl, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

/**
 * Returns a skip message when PostgreSQL tests may be skipped here, or undefined to run them.
 * Throws in CI: there PostgreSQL is required.
 */
export async function postgresSkipReason(): Promise<string | undefined> {
  if (await postgresReachable()) return undefined;
  if (process.env.CI === 'true') {
    throw new Error(`PostgreSQL is required in CI but ${sharedPostgresAdminUrl} is unreachable`);
  }
  return `PostgreSQL at ${sharedPostgresAdminUrl} is unreachable (set CI=true to make this a failure)`;
}

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates an empty database on the shared server, named for the test. */
export async function createTestDatabase(prefix = 'pc_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: sharedPostgresAdminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(sharedPostgresAdminUrl, name),
    name,
    async drop() {
      const client = new pg.Client({ connectionString: sharedPostgresAdminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}
