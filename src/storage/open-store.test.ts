import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createEmptyTestDatabase, forEachDialect } from '../../test-support/dialects.js';
import BetterSqlite3 from './better-sqlite3.js';
import { migrations } from './migrations/index.js';
import { openStore } from './open-store.js';
import { testRequest } from './test-fixtures.js';

const openStoreModule = new URL('./open-store.ts', import.meta.url).href;

/** Opens and closes a store on `url` in a new Node process; resolves with its exit code. */
function openInChildProcess(url: string): Promise<number | null> {
  const script = `const { openStore } = await import(${JSON.stringify(openStoreModule)});
    const store = await openStore(process.argv[1]);
    await store.close();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, url], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
}

it('lists every migration file of src/storage/migrations in the in-code provider', async () => {
  const directory = join(fileURLToPath(new URL('.', import.meta.url)), 'migrations');
  const files = (await readdir(directory))
    .filter((file) => /^\d{4}-.+\.ts$/.test(file) && !file.endsWith('.test.ts'))
    .map((file) => file.replace(/\.ts$/, ''))
    .sort();
  assert.deepEqual(Object.keys(migrations).sort(), files);
});

it('does not change the process-wide pg parser for int8', () => {
  assert.equal(pg.types.getTypeParser(20, 'text')('42'), '42');
});

it('opens an in-memory SQLite store', async () => {
  const store = await openStore('sqlite::memory:');
  try {
    assert.equal(store.dialect, 'sqlite');
    await store.requests.insert(testRequest('r1'));
    assert.equal((await store.requests.get('r1'))?.id, 'r1');
  } finally {
    await store.close();
  }
});

it('rejects, leaving nothing open, when PostgreSQL cannot be reached', async () => {
  await assert.rejects(openStore('postgres://postgres@127.0.0.1:1/portcullis'));
});

forEachDialect('openStore', (ctx) => {
  it('migrates once: reopening keeps the data and applies nothing twice', async () => {
    await ctx.store.requests.insert(testRequest('r1'));
    await ctx.store.close();
    const reopened = await ctx.openStore();
    assert.equal((await reopened.requests.get('r1'))?.id, 'r1');
    assert.deepEqual(await reopened.auditLog.head(), { seq: 0, hash: '0'.repeat(64), prunedThrough: 0 });
  });

  it('migrates safely when several processes open an empty database at once', async () => {
    const database = await createEmptyTestDatabase(ctx.dialect);
    try {
      // Separate processes: better-sqlite3 waits for a lock synchronously, so SQLite replicas can only
      // contend from different processes (as they would in production).
      const exitCodes = await Promise.all(Array.from({ length: 4 }, () => openInChildProcess(database.url)));
      assert.deepEqual(exitCodes, [0, 0, 0, 0]);
      const store = await openStore(database.url);
      try {
        await store.requests.insert(testRequest('r1'));
        assert.equal((await store.requests.get('r1'))?.id, 'r1');
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('reports its dialect', () => {
    assert.equal(ctx.store.dialect, ctx.dialect);
  });

  it('can be closed twice', async () => {
    await ctx.store.close();
    await ctx.store.close();
  });

  if (ctx.dialect === 'sqlite') {
    it('puts the SQLite file in WAL mode', () => {
      const file = new BetterSqlite3(ctx.url.slice('sqlite:'.length), { readonly: true });
      try {
        assert.equal(file.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        file.close();
      }
    });
  }
});
