/**
 * /readyz answers without authentication (load balancers call it), so when the database is down it
 * says so without passing on the driver's message: that names the database, user, host and port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';

describe('readiness', () => {
  let h: Harness;
  let skip: string | undefined;
  let superuser: pg.Client;
  let database = '';

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    h = await startHarness({ storage: 'postgres' });
    database = new URL(h.storageUrl).pathname.slice(1);
    superuser = new pg.Client({ connectionString: sharedPostgresAdminUrl });
    await superuser.connect();
  });
  after(async () => {
    await superuser?.query(`alter database ${database} allow_connections true`).catch(() => {});
    await superuser?.end();
    await h?.close();
  });

  test('reports an unavailable database without its internals', async (t) => {
    if (skip) return t.skip(skip);
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 200);

    await superuser.query(`alter database ${database} allow_connections false`);
    await superuser.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [database],
    );
    try {
      const down = await fetch(`${h.url}/readyz`);
      const text = await down.text();
      assert.equal(down.status, 503, text);
      const body = JSON.parse(text) as { ready: boolean; checks: Record<string, string> };
      assert.equal(body.ready, false);
      assert.equal(body.checks.database, 'unavailable');
      assert.ok(!text.includes(database), text);
    } finally {
      await superuser.query(`alter database ${database} allow_connections true`);
    }
  });
});
