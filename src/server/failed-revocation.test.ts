/**
 * A revocation the target refuses is never silently dropped: it is visible as state, metric and
 * audit event, retried with backoff, and completes once the target accepts it again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  type LeastPrivilegedTarget,
  startLeastPrivilegedTarget,
} from '../../test-support/least-privileged-target.js';
import type { Harness } from '../../test-support/portcullis-harness.js';

describe('failed revocation', () => {
  let target: LeastPrivilegedTarget | undefined;
  let skip: string | undefined;
  let h: Harness;
  let superuser: pg.Client;

  before(async () => {
    ({ target, skip } = await startLeastPrivilegedTarget());
    if (!target) return;
    h = target.harness;
    superuser = target.superuser;
  });
  after(async () => {
    await target?.stop();
  });

  test('is visible (state, metric, audit), retried with backoff, and completes later', async (t) => {
    if (skip || !target) return t.skip(skip);
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const dave = await h.login('dave');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '10m',
      reason: 'revocation failure test',
    });
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const grantId = approved.body.grant_id as string;
    const login = (await h.api(alice, 'GET', `/api/v1/grants/${grantId}`)).body.artefacts as {
      login: string;
    };

    // The provisioning account loses its access to the target (credentials disabled, sessions cut).
    await superuser.query('alter role pc_admin nologin');
    await superuser.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'pc_admin'",
    );
    await sleep(100);
    const released = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
    assert.equal(released.status, 200);
    assert.equal(released.body.status, 'revoke_failed');
    assert.equal(released.body.revoke_attempts, 1);
    // The requester reads a notice with a reference, not the target's own words (its admin account).
    const reference = released.body.last_error_reference as string;
    assert.match(reference, /^[0-9a-z]{12}$/);
    assert.equal(
      released.body.last_error,
      `Revocation failed at the target (reference ${reference}); an administrator can find the details in the audit log under that reference`,
    );
    assert.doesNotMatch(JSON.stringify(released.body), /pc_admin|not permitted|terminat/i);
    // An administrator sees the target's text (of this or a later retry, each with its reference).
    const asAdmin = (await h.api(dave, 'GET', `/api/v1/grants/${grantId}`)).body;
    assert.match(String(asAdmin.last_error), /not permitted to log in|terminat|connection/i);
    assert.match(String(asAdmin.last_error_reference), /^[0-9a-z]{12}$/);
    // Logically ended at once: no more credentials or tokens for it.
    assert.equal((await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`)).status, 409);

    const metrics = await fetch(`${h.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /portcullis_revocation_failures_total\{resource="demo-db"\} [1-9]/);
    assert.match(metrics, /portcullis_grants\{status="revoke_failed"\} 1/);
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    const failure = events.find((e) => e.type === 'grant.revocation_failed' && e.grantId === grantId);
    assert.equal(failure?.severity, 'high');
    // The audit log (administrators and auditors) holds the full text under each reference.
    const byReference = (ref: unknown) =>
      events.find((e) => e.type === 'grant.revocation_failed' && e.data?.reference === ref);
    assert.match(String(byReference(reference)?.data?.error), /not permitted to log in|terminat|connection/i);
    assert.equal(byReference(reference)?.grantId, grantId);
    assert.equal(byReference(asAdmin.last_error_reference)?.data?.error, asAdmin.last_error);

    await superuser.query('alter role pc_admin login');
    const deadline = Date.now() + 10_000;
    let status = '';
    while (Date.now() < deadline) {
      status = (await h.api(alice, 'GET', `/api/v1/grants/${grantId}`)).body.status as string;
      if (status === 'revoked') break;
      await sleep(100);
    }
    assert.equal(status, 'revoked');
    const left = await superuser.query('select 1 from pg_roles where rolname = $1', [login.login]);
    assert.equal(left.rowCount, 0);
    const completed = (await h.portcullis.store.auditLog.read(0, 10_000)).filter(
      (e) => e.type === 'grant.revocation_completed' && e.grantId === grantId,
    );
    assert.equal(completed.length, 1);
  });
});
