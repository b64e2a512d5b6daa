import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import { openSqliteBackend, sqliteStatementCacheSize } from './sqlite-backend.js';

test('kept compiled statements stay correct across schema changes and evictions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sqlite-cache-'));
  const backend = openSqliteBackend(join(dir, 'db.sqlite'));
  try {
    const db = backend.db;
    await sql`create table t (a integer)`.execute(db);
    await sql`insert into t (a) values (1)`.execute(db);
    const read = () => sql<{ a: number; b?: number }>`select * from t`.execute(db);
    assert.deepEqual((await read()).rows, [{ a: 1 }]);
    await sql`alter table t add column b integer default 7`.execute(db);
    // The same SQL text, now compiled against the new schema: SQLite re-prepares it by itself.
    assert.deepEqual((await read()).rows, [{ a: 1, b: 7 }]);
    for (let i = 0; i < sqliteStatementCacheSize + 20; i++) {
      await sql`select ${sql.lit(i)} as n`.execute(db);
    }
    assert.deepEqual((await read()).rows, [{ a: 1, b: 7 }], 'an evicted statement is compiled again');
    await db.transaction().execute(async (trx) => {
      await sql`insert into t (a) values (2)`.execute(trx);
    });
    assert.equal((await read()).rows.length, 2);
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
