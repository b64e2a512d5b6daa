/**
 * A `webhook` resource end to end: a real Portcullis, the real OIDC demo IdP, and a real HTTP target
 * (test-support/webhook-target.ts) that verifies signatures and keeps what it grants. Request,
 * approval, the credential handed to the requester, early release, a target that fails, and
 * reconciliation taking back an assignment no grant accounts for.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { confirmActivation, initiateActivation } from '../../test-support/break-glass-activation.js';
import {
  demoDbEmergencyAccount,
  enrolInHarness,
  type TestCustodian,
  webhookChannelConfig,
} from '../../test-support/break-glass-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { startWebhookTarget, type WebhookTarget } from '../../test-support/webhook-target.js';

const secret = 'whsec-e2e-provisioner-0123456789abcdef';

const policy = `
@id("eng-saas-admin")
@approvals("1")
@approver_groups("sre")
@max_duration("1h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource == Portcullis::Role::"saas/admin"
) when { context.reason != "" };

@id("approvers")
permit (principal, action == Portcullis::Action::"approve", resource)
when { principal in Portcullis::Group::"sre" };

@id("admins-view-audit")
permit (principal in Portcullis::Group::"admins", action == Portcullis::Action::"view_audit", resource);
`;

describe('webhook provisioner end to end', () => {
  let h: Harness;
  let target: WebhookTarget;
  let policyDir: string;

  before(async () => {
    target = await startWebhookTarget({ secret });
    policyDir = mkdtempSync(join(tmpdir(), 'pc-webhook-'));
    const policyFile = join(policyDir, 'policy.cedar');
    writeFileSync(policyFile, policy);
    writeFileSync(join(policyDir, 'hook-secret'), secret);
    h = await startHarness({
      storage: 'sqlite',
      policyFile,
      configOverrides: {
        break_glass: {
          accounts: [
            demoDbEmergencyAccount('saas-emergency', ['alice', 'bob'], {
              scope: { resource: 'saas', roles: ['admin'] },
            }),
          ],
          alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
        },
        resources: [
          {
            id: 'saas',
            kind: 'webhook',
            sensitivity: 'high',
            labels: { vendor: 'example-saas' },
            webhook: {
              url: target.url,
              secret: { file: join(policyDir, 'hook-secret') },
              inspect: true,
              standing: true,
            },
            roles: [{ name: 'admin', grants: ['workspace-admin'] }],
          },
        ],
      },
    });
  });
  after(async () => {
    await h?.close();
    await target?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    target.respond = undefined;
  });

  async function requestAndApprove(reason: string, expectStatus = 200) {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'saas',
      role: 'admin',
      duration: '30m',
      reason,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const approved = await h.api(
      await h.login('bob'),
      'POST',
      `/api/v1/requests/${created.body.id}/approve`,
      {},
    );
    assert.equal(approved.status, expectStatus, JSON.stringify(approved.body));
    const request = await h.api(alice, 'GET', `/api/v1/requests/${created.body.id}`);
    return { alice, request: request.body, approved: approved.body };
  }

  test('approval applies at the target; the requester gets its credential; release takes it back', async () => {
    const { alice, request } = await requestAndApprove('rotate the SSO config');
    assert.equal(request.state, 'active', JSON.stringify(request));
    const grantId = String(request.grant_id);
    const held = target.held.get(grantId);
    assert.ok(held, 'the target holds the assignment');
    assert.deepEqual(held.grants, ['workspace-admin']);
    const stored = await h.portcullis.store.principals.get(String(held.principal.id));
    assert.equal(held.principal.idp, 'demo');
    assert.equal(held.principal.subject, stored?.subject);
    assert.equal(held.principal.email, stored?.email);
    assert.equal(held.installation, await h.portcullis.store.installationId());

    const credentials = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
    assert.equal(credentials.status, 200, JSON.stringify(credentials.body));
    assert.deepEqual(credentials.body.credentials, { api_key: held.apiKey });
    const grant = await h.api(alice, 'GET', `/api/v1/grants/${grantId}`);
    assert.equal((grant.body.artefacts as Record<string, unknown>).assignment_id, held.assignmentId);
    assert.doesNotMatch(JSON.stringify(grant.body), new RegExp(held.apiKey));

    const released = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.equal(released.body.status, 'revoked');
    assert.equal(target.held.has(grantId), false);
    const revoke = target.calls.findLast((c) => c.operation === 'revoke');
    assert.equal(revoke?.idempotencyKey, `${grantId}.revoke`);
  });

  test('a target that refuses: the request fails with a reference, and the half-done grant is cleaned up', async () => {
    target.respond = ({ operation }) =>
      operation === 'apply'
        ? { status: 503, body: 'upstream SaaS API down (internal host saas-7.corp)' }
        : undefined;
    const { request, approved } = await requestAndApprove('the target is down', 502);
    assert.equal(approved.code, 'provisioning_failed');
    assert.equal(request.state, 'failed', JSON.stringify(request));
    // The approver and the requester see a reference, not the target's words.
    assert.match(String(request.end_reason), /reference [0-9a-z]{12}/);
    assert.doesNotMatch(JSON.stringify([request, approved]), /saas-7\.corp/);
    // Every attempt carried the same key; then the cleanup revoke went out.
    const applies = target.calls.filter((c) => c.operation === 'apply' && c.body.grant);
    const grantId = (applies.at(-1)?.body.grant as { id: string }).id;
    const keys = new Set(
      applies.filter((c) => (c.body.grant as { id: string }).id === grantId).map((c) => c.idempotencyKey),
    );
    assert.deepEqual([...keys], [`${grantId}.apply`]);
    const cleanup = target.calls.findLast((c) => c.operation === 'revoke');
    assert.equal((cleanup?.body.grant as { id: string }).id, grantId);
    const events = await h.portcullis.store.auditLog.read(0, 10_000);
    const failed = events.find((e) => e.type === 'grant.failed' && e.grantId === grantId);
    assert.match(String((failed?.data as Record<string, unknown>).error), /answered apply with HTTP 503/);
  });

  test('reconciliation takes back an assignment at the target that no grant accounts for, and reports standing access', async () => {
    const installation = await h.portcullis.store.installationId();
    target.held.set('g-restored-from-backup', {
      grantId: 'g-restored-from-backup',
      assignmentId: 'asg-stale',
      principal: { id: 'demo:mallory' },
      grants: ['workspace-admin'],
      installation,
      apiKey: 'stale-key',
    });
    target.standingHolders = [{ holder: 'ops-bot@example.com', via: 'workspace-admin' }];
    const run = await h.api(await h.login('dave'), 'POST', '/api/v1/reconcile', {});
    target.standingHolders = [];
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(target.held.has('g-restored-from-backup'), false);
    // What the service says holds the access without a grant is reported, and left to its owner.
    const saas = (run.body.resources as { resource_id: string; standing: unknown[] }[]).find(
      (r) => r.resource_id === 'saas',
    );
    assert.deepEqual(saas?.standing, [
      { holder: 'ops-bot@example.com', via: 'workspace-admin', outcome: 'reported' },
    ]);
    const takeBack = target.calls.findLast((c) => c.operation === 'revoke');
    assert.deepEqual((takeBack?.body.take_back as { drift: string }).drift, 'unknown_grant');
    assert.match(String(takeBack?.idempotencyKey), /^g-restored-from-backup\.take-back\./);
    assert.deepEqual((takeBack?.body.grant as { artefacts: unknown }).artefacts, {
      assignment_id: 'asg-stale',
    });
  });
  test('break-glass scoped to a webhook resource: the quorum opens it, the target applies it, its credential reaches the initiator', async () => {
    const custodians = await enrolInHarness(h, 'saas-emergency', ['alice', 'bob']);
    const { id, handle } = await initiateActivation(h, 'saas-emergency', custodians.alice as TestCustodian, {
      reason: 'SSO is down and the SaaS admin must rotate a leaked key',
      incident: 'INC-9',
      duration_minutes: 10,
    });
    assert.equal(await confirmActivation(h, id, custodians.bob as TestCustodian), 'active');
    const access = await h.api(null, 'POST', `/api/v1/break-glass/activations/${id}/credentials`, undefined, {
      'x-break-glass-handle': handle,
    });
    assert.equal(access.status, 200, JSON.stringify(access.body));
    const [grant] = access.body.grants as { grant_id: string; credentials?: Record<string, string> }[];
    const held = target.held.get(String(grant?.grant_id));
    assert.ok(held, 'the target applied the emergency grant');
    assert.deepEqual(held.grants, ['workspace-admin']);
    assert.deepEqual(grant?.credentials, { api_key: held.apiKey });
  });
});
