/**
 * SCIM 2.0 end to end: real HTTP against a started server, the real demo OIDC provider, storage on
 * SQLite and on PostgreSQL, and a real PostgreSQL target whose granted login is dropped when the
 * identity provider deactivates the user.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { waitFor } from '../../test-support/wait-for.js';

const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User';
const groupSchema = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const errorSchema = 'urn:ietf:params:scim:api:messages:2.0:Error';

interface ScimAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly contentType: string;
}

const secrets = mkdtempSync(join(tmpdir(), 'portcullis-scim-'));
const demoSecret = randomBytes(32).toString('base64url');
const otherSecret = randomBytes(32).toString('base64url');
writeFileSync(join(secrets, 'demo'), demoSecret, { mode: 0o600 });
writeFileSync(join(secrets, 'other'), otherSecret, { mode: 0o600 });
after(() => rmSync(secrets, { recursive: true, force: true }));

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`SCIM on ${storage} storage`, () => {
    let h: Harness;
    let skip: string | undefined;

    const scim = async (
      method: string,
      path: string,
      body?: unknown,
      secret: string | null = demoSecret,
    ): Promise<ScimAnswer> => {
      const response = await fetch(`${h.url}/scim/v2${path}`, {
        method,
        headers: {
          ...(secret ? { authorization: `Bearer ${secret}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/scim+json' } : {}),
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
        contentType: response.headers.get('content-type') ?? '',
      };
    };
    const newUser = (userName: string, externalId: string, extra: Record<string, unknown> = {}) =>
      scim('POST', '/Users', {
        schemas: [userSchema],
        userName,
        externalId,
        name: { givenName: 'G', familyName: 'F' },
        emails: [{ value: userName, primary: true }],
        password: 'never-stored',
        active: true,
        ...extra,
      });
    const audit = async () => h.portcullis.store.auditLog.read(0, 100_000);

    before(async () => {
      skip = storage === 'postgres' ? await postgresSkipReason() : undefined;
      if (skip) return;
      h = await startHarness({
        storage,
        targetAdminUrl: sharedPostgresAdminUrl,
        extraIdentityProviders: [
          {
            id: 'other',
            type: 'oidc',
            display_name: 'Other',
            issuer: 'https://other-idp.example.com',
            client_id: 'portcullis',
          },
        ],
        configOverrides: {
          scim: {
            clients: [
              { idp: 'demo', token: { file: join(secrets, 'demo') } },
              { idp: 'other', token: { file: join(secrets, 'other') }, subject_attribute: 'userName' },
            ],
          },
        },
      });
    });
    after(async () => {
      await h?.close();
    });

    test('discovery documents, in application/scim+json', async (t) => {
      if (skip) return t.skip(skip);
      const config = await scim('GET', '/ServiceProviderConfig');
      assert.equal(config.status, 200);
      assert.match(config.contentType, /^application\/scim\+json/);
      assert.deepEqual(config.body.patch, { supported: true });
      const types = await scim('GET', '/ResourceTypes');
      assert.deepEqual(
        (types.body.Resources as { id: string }[]).map((r) => r.id),
        ['User', 'Group'],
      );
      const schemas = await scim('GET', '/Schemas');
      assert.equal(schemas.body.totalResults, 2);
    });

    test('users: create, filter, page, get, replace, uniqueness, delete; only the link is kept', async (t) => {
      if (skip) return t.skip(skip);
      const created = await newUser('Erin@Example.com', 'erin');
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      assert.deepEqual(Object.keys(created.body).sort(), [
        'active',
        'externalId',
        'id',
        'meta',
        'schemas',
        'userName',
      ]);
      assert.equal((created.body.meta as { location: string }).location, `${h.url}/scim/v2/Users/${id}`);
      await newUser('frank@example.com', 'frank');
      await newUser('grace@example.com', 'grace');

      const byName = await scim(
        'GET',
        `/Users?filter=${encodeURIComponent('userName eq "erin@example.com"')}`,
      );
      assert.equal(byName.status, 200);
      assert.equal(byName.body.totalResults, 1, 'userName compares case-insensitively');
      assert.equal((byName.body.Resources as { id: string }[])[0]?.id, id);
      const byExternal = await scim('GET', `/Users?filter=${encodeURIComponent('externalId eq "frank"')}`);
      assert.equal(byExternal.body.totalResults, 1);
      const none = await scim(
        'GET',
        `/Users?filter=${encodeURIComponent('userName eq "nobody@example.com"')}`,
      );
      assert.deepEqual([none.body.totalResults, none.body.Resources], [0, []]);
      const page = await scim('GET', '/Users?startIndex=2&count=1');
      assert.deepEqual([page.body.totalResults, page.body.startIndex, page.body.itemsPerPage], [3, 2, 1]);

      const replaced = await scim('PUT', `/Users/${id}`, {
        schemas: [userSchema],
        userName: 'erin.new@example.com',
        externalId: 'erin',
        active: true,
      });
      assert.equal(replaced.status, 200);
      assert.equal(replaced.body.userName, 'erin.new@example.com');
      assert.equal((await scim('GET', `/Users/${id}`)).body.userName, 'erin.new@example.com');

      const duplicate = await newUser('FRANK@example.com', 'someone-else');
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body.scimType, 'uniqueness');
      assert.equal(duplicate.body.code, 'scim_uniqueness');
      const relink = await scim('PUT', `/Users/${id}`, {
        schemas: [userSchema],
        userName: 'erin.new@example.com',
        externalId: 'not-erin',
      });
      assert.equal(relink.status, 400);
      assert.equal(relink.body.scimType, 'mutability');

      assert.equal((await scim('DELETE', `/Users/${id}`)).status, 204);
      const gone = await scim('GET', `/Users/${id}`);
      assert.equal(gone.status, 404);
      assert.deepEqual(gone.body.schemas, [errorSchema]);
      assert.equal(gone.body.status, '404');
    });

    test('group membership maps onto the principal at once: removed from the group → the policy denies', async (t) => {
      if (skip) return t.skip(skip);
      const carol = await h.login('carol');
      const user = await newUser('carol@example.com', 'carol');
      const carolId = user.body.id as string;
      const group = await scim('POST', '/Groups', {
        schemas: [groupSchema],
        displayName: 'engineering',
        members: [{ value: carolId }],
      });
      assert.equal(group.status, 201, JSON.stringify(group.body));
      const groupId = group.body.id as string;
      assert.deepEqual(
        (group.body.members as { value: string }[]).map((m) => m.value),
        [carolId],
      );
      const request = { resource: 'demo-db', role: 'readonly', duration: 600, reason: 'orders' };
      const allowed = await h.api(carol, 'POST', '/api/v1/requests', request);
      assert.equal(allowed.status, 201, 'carol is in engineering through SCIM');

      // Okta's shape: remove one member by filter.
      const removed = await scim('PATCH', `/Groups/${groupId}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'remove', path: `members[value eq "${carolId}"]` }],
      });
      assert.equal(removed.status, 200, JSON.stringify(removed.body));
      const denied = await h.api(carol, 'POST', '/api/v1/requests', request);
      assert.equal(denied.status, 403);
      assert.equal(denied.body.code, 'policy_denied');
      assert.deepEqual((await h.api(carol, 'GET', '/api/v1/me')).body.groups, ['dba']);

      // Entra ID's shape: capitalised op, members as a list.
      const added = await scim('PATCH', `/Groups/${groupId}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'Add', path: 'members', value: [{ value: carolId }] }],
      });
      assert.equal(added.status, 200);
      assert.equal((await h.api(carol, 'POST', '/api/v1/requests', request)).status, 201);

      const listed = await scim(
        'GET',
        `/Groups?filter=${encodeURIComponent('displayName eq "engineering"')}&excludedAttributes=members`,
      );
      assert.equal(listed.body.totalResults, 1);
      assert.equal((listed.body.Resources as Record<string, unknown>[])[0]?.members, undefined);
      const renamed = await scim('PATCH', `/Groups/${groupId}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'replace', value: { id: groupId, displayName: 'Engineering Team' } }],
      });
      assert.equal(renamed.body.displayName, 'Engineering Team');
      assert.deepEqual((await h.api(carol, 'GET', '/api/v1/me')).body.groups, ['dba']);
      assert.equal((await scim('DELETE', `/Groups/${groupId}`)).status, 204);
      assert.equal((await scim('GET', `/Groups/${groupId}`)).status, 404);
      const events = (await audit()).filter((e) => e.type.startsWith('scim.group_'));
      assert.ok(events.every((e) => e.actor === 'scim:demo'));
      assert.ok(events.some((e) => JSON.stringify(e.data).includes('"removed":["engineering"]')));
    });

    test('deactivation revokes grants, cancels requests, kills the database login and refuses the person; reactivation restores nothing', async (t) => {
      if (skip) return t.skip(skip);
      const alice = await h.login('alice');
      const bob = await h.login('bob');
      const aliceIdpToken = await obtainIdpAccessToken(
        h.idp,
        { username: 'alice', password: 'alice-demo-password' },
        `${h.url}/auth/oidc/demo/callback`,
      );
      const user = await newUser('alice@example.com', 'alice');
      const aliceId = user.body.id as string;

      const created = await h.api(alice, 'POST', '/api/v1/requests', {
        resource: 'demo-db',
        role: 'readonly',
        duration: 3600,
        reason: 'orders',
      });
      const approved = await h.api(bob, 'POST', `/api/v1/requests/${created.body.id}/approve`, {});
      assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
      const grantId = approved.body.grant_id as string;
      const pending = await h.api(alice, 'POST', '/api/v1/requests', {
        resource: 'demo-db',
        role: 'readwrite',
        duration: 600,
        reason: 'fix',
        ticket: 'OPS-1',
      });
      assert.equal(pending.body.state, 'pending');
      const creds = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
      const connectionString = (creds.body.credentials as Record<string, string>).connection_string ?? '';
      const session = new pg.Client({ connectionString });
      session.on('error', () => {});
      await session.connect();
      assert.equal((await session.query('select count(*)::int as n from items')).rows[0].n, 2);

      // Okta's shape.
      const deactivated = await scim('PATCH', `/Users/${aliceId}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'replace', value: { active: false } }],
      });
      assert.equal(deactivated.status, 200, JSON.stringify(deactivated.body));
      assert.equal(deactivated.body.active, false);

      const store = h.portcullis.store;
      assert.equal((await store.requests.get(created.body.id as string))?.state, 'revoked');
      assert.equal((await store.requests.get(pending.body.id as string))?.state, 'cancelled');
      await waitFor('grant revoked', async () => (await store.grants.get(grantId))?.status === 'revoked');
      await assert.rejects(session.query('select 1'));
      await assert.rejects(async () => {
        const again = new pg.Client({ connectionString });
        again.on('error', () => {});
        try {
          await again.connect();
        } finally {
          await again.end().catch(() => {});
        }
      }, /does not exist|authentication failed/);
      for (const token of [alice, aliceIdpToken]) {
        const refused = await h.api(token, 'GET', '/api/v1/me');
        assert.equal(refused.status, 403);
        assert.equal(refused.body.code, 'principal_disabled');
      }
      await assert.rejects(h.login('alice'), /answered 403/);
      const events = await audit();
      for (const type of ['grant.revoked', 'request.cancelled', 'scim.user_deactivated']) {
        assert.ok(
          events.some((e) => e.type === type && e.actor === 'scim:demo'),
          `${type} by the SCIM client is audited`,
        );
      }

      // Entra ID's shape: path and a string value.
      const reactivated = await scim('PATCH', `/Users/${aliceId}`, {
        schemas: [patchSchema],
        Operations: [{ op: 'Replace', path: 'active', value: 'True' }],
      });
      assert.equal(reactivated.body.active, true);
      const stale = await h.api(alice, 'GET', '/api/v1/me');
      assert.deepEqual(
        [stale.status, stale.body.reason],
        [401, 'session_revoked'],
        'a session from before the deactivation stays dead',
      );
      const again = await h.login('alice');
      const grants = await h.api(again, 'GET', '/api/v1/grants?scope=mine');
      assert.equal(grants.status, 200);
      assert.ok(
        (grants.body.grants as { status: string }[]).every((g) => g.status !== 'active'),
        'reactivation restores no grant',
      );
      await session.end().catch(() => {});
    });

    test('deleting a user refuses its sessions', async (t) => {
      if (skip) return t.skip(skip);
      const dave = await h.login('dave');
      const user = await newUser('dave@example.com', 'dave');
      assert.equal((await h.api(dave, 'GET', '/api/v1/me')).status, 200);
      assert.equal((await scim('DELETE', `/Users/${user.body.id}`)).status, 204);
      assert.equal((await h.api(dave, 'GET', '/api/v1/me')).body.code, 'principal_disabled');
      assert.ok((await audit()).some((e) => e.type === 'scim.user_deleted' && e.actor === 'scim:demo'));
    });

    test('bad input: stable code, SCIM error, nothing changed, a security event', async (t) => {
      if (skip) return t.skip(skip);
      const user = await newUser('heidi@example.com', 'heidi');
      const id = user.body.id as string;
      const rejections = async () => (await audit()).filter((e) => e.type === 'scim.request_rejected').length;
      const tokenRejections = async () =>
        (await audit()).filter(
          (e) => e.type === 'auth.token_rejected' && (e.data as { client?: string }).client === 'scim',
        ).length;

      const anonymous = await scim('GET', '/Users', undefined, null);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.code, 'unauthenticated');
      const forged = await scim('GET', '/Users', undefined, randomBytes(32).toString('base64url'));
      assert.equal(forged.status, 401);
      assert.equal(forged.body.code, 'invalid_token');
      assert.deepEqual(forged.body.schemas, [errorSchema]);
      assert.equal(await tokenRejections(), 2);

      // The other IdP's client sees none of demo's users and cannot touch them.
      assert.equal((await scim('GET', '/Users', undefined, otherSecret)).body.totalResults, 0);
      assert.equal((await scim('GET', `/Users/${id}`, undefined, otherSecret)).status, 404);
      const foreign = await scim(
        'PATCH',
        `/Users/${id}`,
        { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'active', value: false }] },
        otherSecret,
      );
      assert.equal(foreign.status, 404);

      const cases: [string, string, unknown, number, string, string | undefined][] = [
        [
          'GET',
          `/Users?filter=${encodeURIComponent('userName eq')}`,
          undefined,
          400,
          'scim_invalid_filter',
          'invalidFilter',
        ],
        [
          'GET',
          `/Users?filter=${encodeURIComponent('userName co "h"')}`,
          undefined,
          400,
          'scim_invalid_filter',
          'invalidFilter',
        ],
        [
          'GET',
          `/Users?filter=${encodeURIComponent('emails.value eq "x"')}`,
          undefined,
          400,
          'scim_invalid_filter',
          'invalidFilter',
        ],
        [
          'POST',
          '/Users',
          { schemas: [userSchema], userName: 'x@example.com', externalId: 'x', favouriteColour: 'red' },
          400,
          'scim_invalid_syntax',
          'invalidSyntax',
        ],
        [
          'POST',
          '/Users',
          { schemas: [groupSchema], userName: 'y@example.com', externalId: 'y' },
          400,
          'scim_invalid_syntax',
          'invalidSyntax',
        ],
        [
          'POST',
          '/Users',
          { schemas: [userSchema], externalId: 'z' },
          400,
          'scim_invalid_value',
          'invalidValue',
        ],
        ['POST', '/Users', '{"schemas": [', 400, 'malformed_json', 'invalidSyntax'],
        [
          'POST',
          '/Users',
          {
            schemas: [userSchema],
            userName: 'big@example.com',
            externalId: 'big',
            title: 'x'.repeat(70_000),
          },
          413,
          'payload_too_large',
          undefined,
        ],
        [
          'PATCH',
          `/Users/${id}`,
          { schemas: [patchSchema], Operations: [{ op: 'move', path: 'active', value: false }] },
          400,
          'scim_invalid_path',
          'invalidPath',
        ],
        [
          'PATCH',
          `/Users/${id}`,
          { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'shoeSize', value: 42 }] },
          400,
          'scim_invalid_path',
          'invalidPath',
        ],
        [
          'PATCH',
          `/Users/${id}`,
          { schemas: [patchSchema], Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] },
          400,
          'scim_invalid_value',
          'invalidValue',
        ],
        [
          'PATCH',
          `/Users/${id}`,
          { schemas: [patchSchema], Operations: [{ op: 'remove' }] },
          400,
          'scim_no_target',
          'noTarget',
        ],
        [
          'PATCH',
          `/Users/${id}`,
          { Operations: [{ op: 'replace', path: 'active', value: false }] },
          400,
          'scim_invalid_syntax',
          'invalidSyntax',
        ],
        [
          'PATCH',
          `/Users/${id}`,
          {
            schemas: [patchSchema],
            Operations: [
              { op: 'replace', path: 'active', value: false },
              { op: 'replace', path: 'userName', value: 7 },
            ],
          },
          400,
          'scim_invalid_value',
          'invalidValue',
        ],
      ];
      for (const [method, path, body, status, code, scimType] of cases) {
        const before = await rejections();
        const answer = await scim(method, path, body);
        const label = `${method} ${path} ${JSON.stringify(body)?.slice(0, 120)}`;
        assert.equal(answer.status, status, `${label}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.code, code, label);
        assert.equal(answer.body.scimType, scimType, label);
        assert.equal(answer.body.status, String(status), label);
        assert.equal(await rejections(), before + 1, `${label} is audited`);
      }
      const unchanged = await scim('GET', `/Users/${id}`);
      assert.equal(unchanged.body.active, true, 'no partial PATCH was applied');
      assert.equal(unchanged.body.userName, 'heidi@example.com');
      assert.equal(
        (await scim('GET', `/Users?filter=${encodeURIComponent('externalId eq "big"')}`)).body.totalResults,
        0,
      );
    });
  });
}
