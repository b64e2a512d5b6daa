/**
 * The webhook provisioner against a real HTTP target (test-support/webhook-target.ts) that checks
 * signatures and keeps what it grants: the request it gets, what comes back, and every way a target
 * can fail.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startWebhookTarget, type WebhookTarget } from '../../test-support/webhook-target.js';
import type { ConfiguredResource } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { isPortcullisError } from '../core/errors.js';
import { type Grant, markApplied, newGrant } from '../core/grant.js';
import { WebhookProvisioner } from './webhook-provisioner.js';

const secret = 'whsec-provisioner-0123456789abcdef0123';
const role = { name: 'admin', description: '', grants: ['arn:aws:iam::123456789012:role/Admin'] };
const principal = { idp: 'okta', subject: '00u1alice', email: 'alice@example.com' };

let target: WebhookTarget;
before(async () => {
  target = await startWebhookTarget({ secret });
});
after(() => target.close());
beforeEach(() => {
  target.respond = undefined;
  target.calls.length = 0;
});

function resourceFor(
  options: { url?: string; secret?: string; inspect?: boolean; standing?: boolean; timeoutMs?: number } = {},
) {
  const resource: ConfiguredResource = {
    id: 'aws-prod',
    kind: 'webhook',
    description: '',
    sensitivity: 'critical',
    labels: { account: '123456789012' },
    owners: [],
    roles: new Map([[role.name, role]]),
    webhook: {
      url: new Secret(options.url ?? target.url, 'AWS_HOOK_URL'),
      secret: new Secret(options.secret ?? secret, 'AWS_HOOK_SECRET'),
      timeoutMs: options.timeoutMs ?? 2000,
      inspect: options.inspect ?? false,
      standing: options.standing ?? false,
    },
  };
  return resource;
}

let grantCount = 0;
function grant(): Grant {
  grantCount += 1;
  return newGrant({
    id: `g-webhook-${grantCount}-${Date.now()}`,
    requestId: `r-${grantCount}`,
    principalId: 'okta:00u1alice',
    resourceId: 'aws-prod',
    role: role.name,
    notBefore: Date.parse('2026-11-24T10:00:00Z'),
    expiresAt: Date.parse('2026-11-24T10:45:00Z'),
    artefacts: {},
  });
}

const provisioner = new WebhookProvisioner({ installation: 'inst-1' });

/** Runs `work`, which must fail with provisioning_failed; returns the message. */
async function failure(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    assert.ok(isPortcullisError(error), String(error));
    assert.equal(error.code, 'provisioning_failed');
    return error.message;
  }
  assert.fail('expected provisioning_failed');
}

describe('WebhookProvisioner', () => {
  test('apply sends who, what and until when, signed; artefacts and credentials come back', async () => {
    const resource = resourceFor();
    const g = grant();
    const result = await provisioner.apply({ grant: g, resource, role, principal });
    const held = target.held.get(g.id);
    assert.ok(held, 'the target holds an assignment for the grant');
    assert.deepEqual(result, {
      artefacts: { assignment_id: held.assignmentId },
      credentials: { api_key: held.apiKey },
    });
    const [call] = target.calls;
    assert.equal(call?.status, 201);
    assert.equal(call?.idempotencyKey, `${g.id}.apply`);
    assert.equal(call?.headers['portcullis-operation'], 'apply');
    assert.match(String(call?.headers['user-agent']), /^Portcullis-Provisioner\/1$/);
    assert.deepEqual(call?.body, {
      version: 1,
      operation: 'apply',
      idempotency_key: `${g.id}.apply`,
      installation: 'inst-1',
      resource: { id: 'aws-prod', sensitivity: 'critical', labels: { account: '123456789012' } },
      role: { name: 'admin', grants: role.grants },
      grant: {
        id: g.id,
        request_id: g.requestId,
        not_before: '2026-11-24T10:00:00.000Z',
        expires_at: '2026-11-24T10:45:00.000Z',
        artefacts: {},
      },
      principal: { id: 'okta:00u1alice', ...principal },
    });
  });

  test('a retried apply has the same idempotency key, so the target answers as the first time', async () => {
    const resource = resourceFor();
    const g = grant();
    const first = await provisioner.apply({ grant: g, resource, role, principal });
    const again = await provisioner.apply({ grant: g, resource, role, principal });
    assert.deepEqual(again, first);
    assert.equal(target.calls.length, 2);
    assert.equal(target.calls[0]?.idempotencyKey, target.calls[1]?.idempotencyKey);
  });

  test('revoke sends the artefacts back; revoking what is gone (404) succeeds', async () => {
    const resource = resourceFor();
    const g = grant();
    const applied = markApplied(g, (await provisioner.apply({ grant: g, resource, role })).artefacts);
    await provisioner.revoke({ grant: applied, resource, role });
    assert.equal(target.held.has(g.id), false);
    const revoke = target.calls.at(-1);
    assert.equal(revoke?.idempotencyKey, `${g.id}.revoke`);
    assert.deepEqual((revoke?.body.grant as { artefacts: unknown }).artefacts, applied.artefacts);
    assert.deepEqual(revoke?.body.principal, { id: 'okta:00u1alice' });

    // Again, as after a crash between the target's answer and Portcullis' commit: the same key.
    await provisioner.revoke({ grant: applied, resource, role });
    assert.equal(target.calls.at(-1)?.idempotencyKey, `${g.id}.revoke`);
    // Access the target never had, or removed by hand: 404.
    await provisioner.revoke({ grant: markApplied(grant(), { assignment_id: 'asg-gone' }), resource, role });
    assert.equal(target.calls.at(-1)?.status, 404);
  });

  test("reconciliation's take-back is its own operation: a new key, and the run and drift say why", async () => {
    const resource = resourceFor();
    const g = grant();
    const applied = markApplied(g, (await provisioner.apply({ grant: g, resource, role })).artefacts);
    await provisioner.revoke({
      grant: applied,
      resource,
      role,
      takeBack: { run: 'run-7', drift: 'unknown_grant' },
    });
    const call = target.calls.at(-1);
    assert.equal(call?.idempotencyKey, `${g.id}.take-back.run-7`);
    assert.deepEqual(call?.body.take_back, { run: 'run-7', drift: 'unknown_grant' });
    assert.equal(target.held.has(g.id), false);
  });

  test('inspect lists the holdings of this installation, only where the resource asks for it', async () => {
    const g = grant();
    const result = await provisioner.apply({ grant: g, resource: resourceFor(), role });
    assert.equal(await provisioner.inspect(resourceFor()), null);
    const holdings = await provisioner.inspect(resourceFor({ inspect: true }));
    assert.ok(holdings);
    assert.deepEqual(
      holdings.find((h) => h.grantId === g.id),
      { grantId: g.id, artefacts: result.artefacts },
    );
    assert.equal(target.calls.at(-1)?.idempotencyKey, undefined);
    const other = new WebhookProvisioner({ installation: 'inst-2' });
    assert.deepEqual(await other.inspect(resourceFor({ inspect: true })), []);
  });

  test("a target's refusal fails with its status and a short excerpt, never the URL", async () => {
    const resource = resourceFor({ url: `${target.url}?token=url-embedded-token` });
    target.respond = () => ({
      status: 422,
      body: `role not found:\n ${'x'.repeat(1000)}`,
      type: 'text/plain',
    });
    const message = await failure(() => provisioner.revoke({ grant: grant(), resource, role }));
    assert.match(message, /resource aws-prod answered revoke with HTTP 422: role not found: x+/);
    assert.ok(message.length < 450, message);
    assert.doesNotMatch(message, /url-embedded-token|127\.0\.0\.1/);

    target.respond = () => ({ status: 500, body: '' });
    const revoked = await failure(() => provisioner.revoke({ grant: grant(), resource, role }));
    assert.match(revoked, /answered revoke with HTTP 500$/);

    // An unexpected answer to apply may carry credentials: its body is never quoted.
    target.respond = () => ({ status: 409, body: '{"exists":true,"api_key":"LEAKED-KEY-1"}' });
    const applied = await failure(() => provisioner.apply({ grant: grant(), resource, role }));
    assert.match(applied, /answered apply with HTTP 409 \(application\/json\)$/);
    assert.doesNotMatch(applied, /LEAKED-KEY-1/);
  });

  test('a revocation counts only when the service says so: a moved route or a proxy page is a failure', async () => {
    const resource = resourceFor();
    const cases: [{ status: number; body: string; type?: string }, RegExp][] = [
      [{ status: 404, body: '<html>Not Found</html>', type: 'text/html' }, /content type "text\/html"/],
      [{ status: 404, body: '' }, /unexpected body: gone/],
      [{ status: 200, body: '<html>maintenance</html>', type: 'text/html' }, /content type "text\/html"/],
      [{ status: 200, body: '{"ok":true}' }, /unexpected body: revoked/],
      [{ status: 204, body: '' }, /answered revoke with HTTP 204/],
    ];
    for (const [answer, expected] of cases) {
      target.respond = () => answer;
      assert.match(await failure(() => provisioner.revoke({ grant: grant(), resource, role })), expected);
    }
  });

  test('standing: what the service reports, only where the resource asks; names are checked', async () => {
    assert.equal(await provisioner.standing(resourceFor()), null);
    target.standingHolders = [
      { holder: 'ops-bot@example.com', via: 'arn:aws:iam::123456789012:role/Admin' },
      { holder: 'alice@example.com', via: 'arn:aws:iam::123456789012:role/Admin' },
    ];
    assert.deepEqual(await provisioner.standing(resourceFor({ standing: true })), [
      { holder: 'alice@example.com', via: 'arn:aws:iam::123456789012:role/Admin' },
      { holder: 'ops-bot@example.com', via: 'arn:aws:iam::123456789012:role/Admin' },
    ]);
    const call = target.calls.at(-1);
    assert.equal(call?.operation, 'standing');
    assert.deepEqual(call?.body.roles, [{ name: 'admin', grants: role.grants }]);
    target.standingHolders = [{ holder: 'evil\u001b[2J', via: 'x' }];
    assert.match(
      await failure(() => provisioner.standing(resourceFor({ standing: true }))),
      /standing\.0\.holder must be a name without control characters/,
    );
    target.standingHolders = [];
  });

  test('inspect refuses holdings whose grant id is not an id', async () => {
    const resource = resourceFor({ inspect: true });
    target.respond = () => ({ status: 200, body: JSON.stringify({ holdings: [{ grant_id: 'g\u0000x' }] }) });
    assert.match(
      await failure(() => provisioner.inspect(resource)),
      /holdings\.0\.grant_id must be a grant id/,
    );
  });

  test('a wrong signing secret is refused by the target (401) and fails the apply', async () => {
    const message = await failure(() =>
      provisioner.apply({ grant: grant(), resource: resourceFor({ secret: 'x'.repeat(40) }), role }),
    );
    assert.match(message, /HTTP 401/);
  });

  test('no answer within the timeout fails, naming the time and not the URL', async () => {
    target.respond = () => 'hang';
    const message = await failure(() =>
      provisioner.apply({ grant: grant(), resource: resourceFor({ timeoutMs: 300 }), role }),
    );
    assert.match(message, /timed out after 300 ms/);
  });

  test('a redirect is not followed: it fails, and nothing is sent to where it points', async () => {
    let calls = 0;
    target.respond = () => {
      calls += 1;
      return calls === 1 ? { status: 307, body: '' } : { status: 500, body: 'followed the redirect' };
    };
    const message = await failure(() => provisioner.apply({ grant: grant(), resource: resourceFor(), role }));
    assert.match(message, /HTTP 307/);
    assert.equal(target.calls.length, 1);
  });

  test('answers that are not what the operation expects fail without echoing values', async () => {
    const resource = resourceFor({ inspect: true });
    const cases: [{ status: number; body: string; type?: string }, RegExp][] = [
      [{ status: 200, body: '{"artefacts":', type: 'application/json' }, /a body that is not JSON/],
      [{ status: 200, body: '{}', type: 'text/html' }, /content type "text\/html"/],
      [{ status: 200, body: '{"artefacts":{"id":{"nested":"SECRET-1"}}}' }, /unexpected body: artefacts\.id/],
      [{ status: 200, body: '{"credentials":{"key":42}}' }, /unexpected body: credentials\.key/],
      [{ status: 200, body: '{"artefacts":{"bad name":"x"}}' }, /unexpected body: artefacts/],
      [{ status: 200, body: JSON.stringify({ pad: 'x'.repeat(70_000) }) }, /larger than 65536 bytes/],
    ];
    for (const [answer, expected] of cases) {
      target.respond = () => answer;
      const message = await failure(() => provisioner.apply({ grant: grant(), resource, role }));
      assert.match(message, expected);
      assert.doesNotMatch(message, /SECRET-1/);
    }
    target.respond = () => ({ status: 200, body: '{"holdings":[{"artefacts":{}}]}' });
    assert.match(await failure(() => provisioner.inspect(resource)), /holdings\.0\.grant_id/);
  });

  test('an empty 200 is an apply with nothing to keep and no credentials', async () => {
    target.respond = () => ({ status: 200, body: '' });
    assert.deepEqual(await provisioner.apply({ grant: grant(), resource: resourceFor(), role }), {
      artefacts: {},
    });
  });
});
