/**
 * SCIM group pushes map through the identity provider's sign-in settings (`group_mapping`,
 * `mapping_rules`), over real HTTP against a started server and the real demo OIDC provider.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { ManualClock } from '../core/clock.js';

const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User';
const groupSchema = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const secrets = mkdtempSync(join(tmpdir(), 'portcullis-scim-mapping-'));
const secret = randomBytes(32).toString('base64url');
writeFileSync(join(secrets, 'demo'), secret, { mode: 0o600 });
after(() => rmSync(secrets, { recursive: true, force: true }));

async function scim(h: Harness, method: string, path: string, body?: unknown) {
  const response = await fetch(`${h.url}/scim/v2${path}`, {
    method,
    headers: {
      authorization: `Bearer ${secret}`,
      ...(body !== undefined ? { 'content-type': 'application/scim+json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

async function scimUser(h: Harness, subject: string): Promise<string> {
  const created = await scim(h, 'POST', '/Users', {
    schemas: [userSchema],
    userName: `${subject}@example.com`,
    externalId: subject,
    active: true,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id as string;
}

async function scimGroup(h: Harness, displayName: string, members: readonly string[]): Promise<string> {
  const created = await scim(h, 'POST', '/Groups', {
    schemas: [groupSchema],
    displayName,
    members: members.map((value) => ({ value })),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id as string;
}

const scimClients = { scim: { clients: [{ idp: 'demo', token: { file: join(secrets, 'demo') } }] } };

describe('SCIM group mapping with mapping_rules only (no group_mapping)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      demoIdpOverrides: { mapping_rules: [{ when: { group: 'engineering' }, groups: ['engineering'] }] },
      configOverrides: scimClients,
    });
  });
  after(async () => {
    await h?.close();
  });

  test('a pushed group named like a Portcullis group does not pass through, as at sign-in', async () => {
    const dave = await h.login('dave');
    assert.deepEqual((await h.api(dave, 'GET', '/api/v1/me')).body.groups, [], 'sign-in drops "admins"');

    const alice = await h.login('alice');
    assert.deepEqual((await h.api(alice, 'GET', '/api/v1/me')).body.groups, ['engineering']);
    const aliceId = await scimUser(h, 'alice');
    await scimGroup(h, 'admins', [aliceId]);
    assert.deepEqual(
      (await h.api(alice, 'GET', '/api/v1/me')).body.groups,
      ['engineering'],
      'a SCIM group "admins" grants nothing when only mapping_rules are configured',
    );
    assert.equal((await h.api(alice, 'GET', '/api/v1/principals')).status, 403, 'alice is no administrator');
  });

  test('removal from an IdP group that a rule maps removes the Portcullis group', async () => {
    const carol = await h.login('carol');
    assert.deepEqual((await h.api(carol, 'GET', '/api/v1/me')).body.groups, []);
    const carolId = await scimUser(h, 'carol');
    const groupId = await scimGroup(h, 'engineering', [carolId]);
    assert.deepEqual(
      (await h.api(carol, 'GET', '/api/v1/me')).body.groups,
      ['engineering'],
      'the rule holds',
    );

    const removed = await scim(h, 'PATCH', `/Groups/${groupId}`, {
      schemas: [patchSchema],
      Operations: [{ op: 'remove', path: `members[value eq "${carolId}"]` }],
    });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.deepEqual((await h.api(carol, 'GET', '/api/v1/me')).body.groups, [], 'the rule no longer holds');
    const events = await h.portcullis.store.auditLog.read(0, 100_000);
    const change = events.find((e) => e.type === 'scim.group_updated');
    assert.deepEqual((change?.data as { principals: unknown }).principals, [
      { principal: 'demo:carol', added: [], removed: ['engineering'] },
    ]);
  });
});

describe('SCIM group mapping with group_mapping and a rule on a claim SCIM does not carry', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      demoIdpOverrides: {
        group_mapping: { engineering: ['engineering'] },
        mapping_rules: [{ when: { group: 'sre', claim: 'department', equals: 'ops' }, groups: ['oncall'] }],
      },
      configOverrides: scimClients,
    });
  });
  after(async () => {
    await h?.close();
  });

  test('listed groups map, others are dropped; a rule that may hold adds nothing but its removal counts', async () => {
    const bob = await h.login('bob');
    const me = async () => (await h.api(bob, 'GET', '/api/v1/me')).body.groups;
    assert.deepEqual(await me(), []);
    const bobId = await scimUser(h, 'bob');
    await scimGroup(h, 'admins', [bobId]);
    assert.deepEqual(await me(), [], 'not in group_mapping: dropped');
    const engineering = await scimGroup(h, 'engineering', [bobId]);
    assert.deepEqual(await me(), ['engineering']);
    const sre = await scimGroup(h, 'sre', [bobId]);
    assert.deepEqual(await me(), ['engineering'], 'department is unknown to SCIM: "oncall" is not certain');

    // As if a sign-in had asserted department=ops: the principal has "oncall".
    await h.portcullis.store.transaction((tx) =>
      tx.principals.setGroups('demo:bob', ['engineering', 'oncall']),
    );
    assert.deepEqual(await me(), ['engineering', 'oncall']);
    for (const id of [sre, engineering]) {
      const removed = await scim(h, 'PATCH', `/Groups/${id}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'remove', path: `members[value eq "${bobId}"]` }],
      });
      assert.equal(removed.status, 200);
    }
    assert.deepEqual(await me(), [], 'out of "sre" the rule can no longer hold: "oncall" goes too');
  });
});

describe('SCIM group pushes and groups_max_age', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());
  const minute = 60_000;
  before(async () => {
    h = await startHarness({
      storage: 'sqlite',
      clock,
      demoIdpOverrides: { groups_max_age: '30m' },
      configOverrides: scimClients,
    });
  });
  after(async () => {
    await h?.close();
  });

  test('a push does not restart the clock of the groups the last sign-in asserted', async () => {
    const alice = await h.login('alice');
    const aliceId = await scimUser(h, 'alice');
    clock.advance(25 * minute);
    await scimGroup(h, 'sre', [aliceId]);
    assert.deepEqual((await h.api(alice, 'GET', '/api/v1/me')).body.groups, ['engineering', 'sre']);

    clock.advance(6 * minute);
    const stale = await h.api(alice, 'GET', '/api/v1/me');
    assert.deepEqual(
      [stale.status, stale.body.code, stale.body.reason],
      [401, 'reauthentication_required', 'groups_too_old'],
      '"engineering" was asserted 31 minutes ago, whatever SCIM pushed since',
    );
    const again = await h.login('alice');
    assert.equal((await h.api(again, 'GET', '/api/v1/me')).status, 200, 'a sign-in restarts the clock');
  });
});
