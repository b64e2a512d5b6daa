/**
 * Grants outlive configuration changes: a resource or a role removed from the configuration while
 * a grant on it is live must not stop Portcullis from starting, nor stop the other grants from
 * ending. A grant whose resource is gone cannot be taken back in a target nobody can reach any
 * more: it is visible as `revoke_failed` (state, audit event) instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

const policy = `
@id("engineering-auto")
@auto_approve("true")
@approvals("0")
@max_duration("1h")
permit (
  principal in Portcullis::Group::"engineering",
  action == Portcullis::Action::"request",
  resource
);
`;

describe('configuration changed while grants were live', () => {
  let h: Harness;
  const policyDir = mkdtempSync(join(tmpdir(), 'portcullis-policy-'));

  before(async () => {
    const policyFile = join(policyDir, 'auto.cedar');
    writeFileSync(policyFile, policy);
    h = await startHarness({
      storage: 'sqlite',
      mode: 'child',
      policyFile,
      configOverrides: {
        resources: [
          {
            id: 'demo-api',
            kind: 'token',
            sensitivity: 'low',
            owners: ['sre'],
            roles: [{ name: 'reader' }, { name: 'operator' }],
          },
          { id: 'old-api', kind: 'token', sensitivity: 'low', owners: ['sre'], roles: [{ name: 'reader' }] },
        ],
      },
    });
  });
  after(async () => {
    await h?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });

  test('a removed resource or role neither blocks start-up nor the expiry of other grants', async () => {
    const alice = await h.login('alice');
    const grant = async (resource: string, role: string) => {
      const created = await h.api(alice, 'POST', '/api/v1/requests', {
        resource,
        role,
        duration: 2,
        reason: 'config change test',
      });
      assert.equal(created.body.state, 'active', JSON.stringify(created.body));
      return { requestId: created.body.id as string, grantId: created.body.grant_id as string };
    };
    const gone = await grant('old-api', 'reader');
    const roleGone = await grant('demo-api', 'operator');
    const kept = await grant('demo-api', 'reader');

    await h.kill();
    const config = parse(readFileSync(h.configPath, 'utf8')) as {
      resources: { id: string; roles: { name: string }[] }[];
    };
    config.resources = config.resources
      .filter((r) => r.id !== 'old-api')
      .map((r) => ({ ...r, roles: r.roles.filter((role) => role.name !== 'operator') }));
    writeFileSync(h.configPath, stringify(config));
    await sleep(2500);

    await h.restart();

    const grantStatus = async (id: string) => (await h.api(alice, 'GET', `/api/v1/grants/${id}`)).body;
    const requestState = async (id: string) =>
      (await h.api(alice, 'GET', `/api/v1/requests/${id}`)).body.state;
    assert.equal((await grantStatus(kept.grantId)).status, 'revoked');
    assert.equal(await requestState(kept.requestId), 'expired');
    // The role is gone from the configuration, but the grant's own artefacts are still taken back.
    assert.equal((await grantStatus(roleGone.grantId)).status, 'revoked');
    assert.equal(await requestState(roleGone.requestId), 'expired');
    // Nothing can be revoked in a resource Portcullis no longer knows: visible, never dropped.
    const orphan = await grantStatus(gone.grantId);
    assert.equal(orphan.status, 'revoke_failed', JSON.stringify(orphan));
    assert.match(String(orphan.last_error), /old-api/);
    assert.equal(await requestState(gone.requestId), 'expired');
  });
});
