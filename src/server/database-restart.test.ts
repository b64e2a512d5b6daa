/**
 * The database dropping its connections (a restart, a failover, an administrator) fails the
 * operations under way, not the process: a pooled connection that is checked out between two
 * queries when the server cuts it must not become an uncaught 'error' event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';

describe('database connections cut under load', () => {
  let h: Harness;
  let skip: string | undefined;
  let superuser: pg.Client;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    h = await startHarness({ storage: 'postgres', targetAdminUrl: sharedPostgresAdminUrl });
    superuser = new pg.Client({ connectionString: sharedPostgresAdminUrl });
    await superuser.connect();
    process.on('uncaughtException', onUncaught);
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await superuser?.end();
    await h?.close();
  });

  test('Portcullis keeps running and recovers', async (t) => {
    if (skip) return t.skip(skip);
    const database = new URL(h.storageUrl).pathname.slice(1);
    const alice = await h.login('alice');
    for (let round = 0; round < 25; round++) {
      const load = Array.from({ length: 8 }, (_, n) =>
        n % 2 === 0
          ? fetch(`${h.url}/readyz`).then((r) => r.text())
          : h.api(alice, 'GET', '/api/v1/requests'),
      );
      await new Promise((r) => setTimeout(r, round % 5));
      await superuser.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [database],
      );
      await Promise.allSettled(load);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      uncaught.map((e) => String(e)),
      [],
    );
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 200);
    const mine = await h.api(alice, 'GET', '/api/v1/requests');
    assert.equal(mine.status, 200);
  });

  test('the provisioner’s admin connections cut while it works fail the operation, not the process', async (t) => {
    if (skip) return t.skip(skip);
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const cut = () =>
      superuser.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where datname = $1 and application_name = 'portcullis-provisioner'`,
        [h.targetDatabase],
      );
    let cutting = true;
    const cutter = (async () => {
      while (cutting) {
        await cut();
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    try {
      for (let round = 0; round < 12; round++) {
        const created = await h.api(alice, 'POST', '/api/v1/requests', {
          resource: 'demo-db',
          role: 'readonly',
          duration: '10m',
          reason: `connection cut ${round}`,
        });
        const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});
        const grantId = approved.body.grant_id as string | null;
        if (grantId) await h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, {});
      }
    } finally {
      cutting = false;
      await cutter;
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      uncaught.map((e) => String(e)),
      [],
    );
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
  });
});
