/**
 * `kill -9` in the middle of a grant: the deadline lives in the database, so when Portcullis comes
 * back after the grant ended, it revokes it at boot — the login is dropped and the session killed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';

describe('crash recovery', () => {
  let cluster: ScramCluster | undefined;
  let skip: string | undefined;
  let h: Harness;

  before(async () => {
    const started = await startScramClusterOrSkip();
    cluster = started.cluster;
    skip = started.skip;
    if (cluster)
      h = await startHarness({ storage: 'sqlite', targetAdminUrl: cluster.adminUrl, mode: 'child' });
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  test('after kill -9 and restart, overdue grants are revoked at boot', async (t) => {
    if (skip || !cluster) return t.skip(skip);
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: 2,
      reason: 'crash test',
    });
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const grantId = approved.body.grant_id as string;
    const creds = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
    const connectionString = (creds.body.credentials as Record<string, string>).connection_string ?? '';
    const session = new pg.Client({ connectionString });
    session.on('error', () => {});
    await session.connect();

    await h.kill();
    await sleep(Math.max(0, Date.parse(approved.body.expires_at as string) - Date.now()) + 500);
    // Nobody is watching: the session outlives the deadline while Portcullis is down.
    assert.equal((await session.query('select 1 as one')).rows[0].one, 1);

    await h.restart();
    // Recovery runs before the server listens: by the time it is healthy, the access is gone.
    await assert.rejects(session.query('select 1'));
    await assert.rejects(async () => {
      const again = new pg.Client({ connectionString });
      again.on('error', () => {});
      await again.connect();
    });
    const grant = await h.api(alice, 'GET', `/api/v1/grants/${grantId}`);
    assert.equal(grant.body.status, 'revoked');
    const request = await h.api(alice, 'GET', `/api/v1/requests/${created.body.id}`);
    assert.equal(request.body.state, 'expired');
  });
});
