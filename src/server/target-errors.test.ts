/**
 * A target system's own error text (PostgreSQL's, naming its admin account) reaches administrators
 * only: requesters and approvers read a notice with a reference — in the `provisioning_failed`
 * problem, the request's end reason and the grant's `last_error` — while administrators see the
 * text in the grant view, and the audit log holds it under the same reference.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  type LeastPrivilegedTarget,
  startLeastPrivilegedTarget,
} from '../../test-support/least-privileged-target.js';
import type { Harness } from '../../test-support/portcullis-harness.js';

const notice = (what: 'Provisioning' | 'Revocation', reference: string) =>
  `${what} failed at the target (reference ${reference}); an administrator can find the details in the audit log under that reference`;
/** What PostgreSQL says to a login refused to its admin account: it names that account. */
const targetText = /role "pc_admin" is not permitted to log in/;

describe("a target's own error text", () => {
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

  test('is shown to administrators and kept in the audit log; others get a reference', async (t) => {
    if (skip || !target) return t.skip(skip);
    const alice = await h.login('alice'); // requester (engineering)
    const bob = await h.login('bob'); // approver (sre)
    const carol = await h.login('carol'); // owner of demo-db (dba), not an administrator
    const dave = await h.login('dave'); // administrator, may view the audit log

    // The target refuses Portcullis' admin account: provisioning (and its clean-up) fail.
    await superuser.query('alter role pc_admin nologin');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '10m',
      reason: 'target error test',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});

    // The approver's problem: same code, a notice with the reference, not PostgreSQL's words.
    assert.equal(approved.status, 502, JSON.stringify(approved.body));
    assert.equal(approved.body.code, 'provisioning_failed');
    const reference = approved.body.reference as string;
    assert.match(reference, /^[0-9a-z]{12}$/);
    assert.equal(approved.body.detail, notice('Provisioning', reference));
    assert.doesNotMatch(JSON.stringify(approved.body), /pc_admin|not permitted/);

    // The request's end reason, as requester and approver see it.
    for (const viewer of [alice, bob]) {
      const request = await h.api(viewer, 'GET', `/api/v1/requests/${created.body.id}`);
      assert.equal(request.body.state, 'failed');
      assert.equal(request.body.end_reason, `provisioning failed at the target (reference ${reference})`);
      assert.doesNotMatch(JSON.stringify(request.body), /pc_admin|not permitted/);
    }
    const grantId = (await h.api(alice, 'GET', `/api/v1/requests/${created.body.id}`)).body
      .grant_id as string;

    // The clean-up failed as well (the account is still refused): a second failure, its own reference.
    const asRequester = (await h.api(alice, 'GET', `/api/v1/grants/${grantId}`)).body;
    assert.equal(asRequester.status, 'revoke_failed', JSON.stringify(asRequester));
    const revocationReference = asRequester.last_error_reference as string;
    assert.match(revocationReference, /^[0-9a-z]{12}$/);
    assert.notEqual(revocationReference, reference);
    assert.equal(asRequester.last_error, notice('Revocation', revocationReference));
    for (const viewer of [alice, carol]) {
      const listed = (await h.api(viewer, 'GET', '/api/v1/grants?scope=all')).body.grants as Record<
        string,
        unknown
      >[];
      const grant = listed.find((g) => g.id === grantId);
      assert.ok(grant, 'the requester and the owner see the grant');
      assert.doesNotMatch(JSON.stringify(grant), /pc_admin|not permitted/);
      assert.match(String(grant.last_error), /^Revocation failed at the target \(reference /);
    }

    // An administrator reads the target's own text, in one grant and in the list.
    const asAdmin = (await h.api(dave, 'GET', `/api/v1/grants/${grantId}`)).body;
    assert.match(String(asAdmin.last_error), targetText);
    const adminList = (await h.api(dave, 'GET', '/api/v1/grants?scope=all')).body.grants as Record<
      string,
      unknown
    >[];
    assert.match(String(adminList.find((g) => g.id === grantId)?.last_error), targetText);

    // The audit log (administrators and auditors only) holds the full text under the reference.
    assert.equal((await h.api(alice, 'GET', '/api/v1/audit/events?limit=1000')).status, 403);
    const audit = await h.api(dave, 'GET', '/api/v1/audit/events?limit=1000');
    assert.equal(audit.status, 200);
    const events = audit.body.events as {
      type: string;
      grantId: string | null;
      reason: string | null;
      data: Record<string, unknown> | null;
    }[];
    const failed = events.find((e) => e.type === 'grant.failed' && e.data?.reference === reference);
    assert.ok(failed, 'grant.failed carries the reference the approver was given');
    assert.equal(failed.grantId, grantId);
    assert.match(String(failed.data?.error), targetText);
    const revocation = events.find(
      (e) => e.type === 'grant.revocation_failed' && e.data?.reference === revocationReference,
    );
    assert.ok(revocation, 'grant.revocation_failed carries the reference of the grant view');
    assert.match(String(revocation.data?.error), targetText);
  });
});
