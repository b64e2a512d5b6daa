/**
 * An administrator locks a principal through the HTTP API: everything it holds ends at once (its
 * PostgreSQL login, its gateway session, its pending request), everything it presents is refused
 * (Portcullis session, IdP bearer token, a new sign-in), and unlocking restores nothing. Real
 * demo IdP, real scram cluster as the target, PostgreSQL storage, node-postgres clients.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { runCliProcess } from '../../test-support/cli-entry.js';
import {
  backendsOf,
  connectViaGateway,
  liveGrant,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { waitFor } from '../../test-support/wait-for.js';
import { writeSession } from '../cli/session-file.js';
import type { PrincipalView } from './routes/principal-routes.js';

const world = useGatewayWorld({ users: ['alice', 'bob', 'dave'], harness: { storage: 'postgres' } });

async function events(type: string) {
  return (await world.h.portcullis.store.auditLog.read(0, 100_000)).filter((e) => e.type === type);
}

function asAdmin(method: string, path: string, body?: unknown) {
  return world.h.api(world.sessions.dave ?? '', method, path, body);
}

test('a lock ends all access at once and refuses everything the principal presents; unlock restores nothing', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions } = world;
  const aliceIdpToken = await obtainIdpAccessToken(
    h.idp,
    { username: 'alice', password: 'alice-demo-password' },
    `${h.url}/auth/oidc/demo/callback`,
  );
  const grant = await liveGrant(h, sessions);
  const viaGatewaySession = await connectViaGateway(viaGateway(h, 'demo:alice', grant.token));
  const gatewayEnded = new Promise<Error & { code?: string }>((resolve) =>
    viaGatewaySession.on('error', resolve),
  );
  const creds = await h.api(sessions.alice ?? '', 'GET', `/api/v1/grants/${grant.grantId}/credentials`);
  const direct = new pg.Client({
    connectionString: (creds.body.credentials as Record<string, string>).connection_string,
  });
  direct.on('error', () => {});
  await direct.connect();
  const pending = await h.api(sessions.alice ?? '', 'POST', '/api/v1/requests', {
    resource: 'demo-db',
    role: 'readwrite',
    duration: 600,
    reason: 'fix',
    ticket: 'OPS-2',
  });
  assert.equal(pending.body.state, 'pending', JSON.stringify(pending.body));

  const locked = await asAdmin('POST', '/api/v1/principals/demo:alice/lock', {
    reason: 'laptop reported stolen',
  });
  assert.equal(locked.status, 200, JSON.stringify(locked.body));
  assert.deepEqual(
    [locked.body.revoked_grants, locked.body.cancelled_requests, locked.body.locked],
    [1, 1, ['demo:alice']],
  );
  const view = locked.body.principal as PrincipalView;
  assert.equal(view.standing, 'locked');
  assert.deepEqual([view.lock?.by, view.lock?.reason], ['demo:dave', 'laptop reported stolen']);

  // The grant ended in the lock's transaction; the gateway session and the database login follow.
  const store = h.portcullis.store;
  assert.equal((await store.requests.get(grant.requestId))?.state, 'revoked');
  assert.equal((await store.requests.get(pending.body.id as string))?.state, 'cancelled');
  assert.equal((await gatewayEnded).code, '57P01');
  await waitFor('the grant revoked in the target', async () =>
    (await store.grants.get(grant.grantId))?.status === 'revoked' ? true : undefined,
  );
  await assert.rejects(direct.query('select 1'));
  assert.equal(await backendsOf(world.cluster?.adminUrl ?? '', grant.login), 0);
  const refusedAtGateway = await rejection(connectViaGateway(viaGateway(h, 'demo:alice', grant.token)));
  assert.equal(refusedAtGateway.code, '28000');

  for (const token of [sessions.alice ?? '', aliceIdpToken]) {
    const refused = await h.api(token, 'GET', '/api/v1/me');
    assert.deepEqual([refused.status, refused.body.code], [403, 'principal_locked']);
    assert.doesNotMatch(JSON.stringify(refused.body), /stolen/, 'the reason is for administrators only');
  }
  await assert.rejects(h.login('alice'), /answered 403/);

  const [lockEvent] = await events('principal.locked');
  assert.deepEqual(
    [
      lockEvent?.actor,
      lockEvent?.severity,
      lockEvent?.reason,
      (lockEvent?.data as { principal?: string }).principal,
    ],
    ['demo:dave', 'high', 'laptop reported stolen', 'demo:alice'],
  );
  const revoked = (await events('grant.revoked')).find((e) => e.grantId === grant.grantId);
  assert.equal(revoked?.actor, 'demo:dave');
  assert.match(revoked?.reason ?? '', /^locked: by demo:dave: laptop reported stolen$/);

  const listed = await asAdmin('GET', '/api/v1/principals?standing=locked');
  assert.deepEqual(
    (listed.body.principals as PrincipalView[]).map((p) => p.id),
    ['demo:alice'],
  );
  const again = await asAdmin('POST', '/api/v1/principals/demo:alice/lock', { reason: 'twice' });
  assert.deepEqual([again.status, again.body.code], [409, 'invalid_transition']);

  const unlocked = await asAdmin('POST', '/api/v1/principals/demo%3Aalice/unlock', {
    reason: 'laptop found',
  });
  assert.equal(unlocked.status, 200, JSON.stringify(unlocked.body));
  assert.deepEqual([unlocked.body.standing, unlocked.body.lock], ['enabled', null]);
  const [unlockEvent] = await events('principal.unlocked');
  assert.deepEqual([unlockEvent?.actor, unlockEvent?.reason], ['demo:dave', 'laptop found']);
  // Tokens from before the lock stay dead: a stolen laptop's session does not come back.
  for (const token of [sessions.alice ?? '', aliceIdpToken]) {
    const stale = await h.api(token, 'GET', '/api/v1/me');
    assert.deepEqual(
      [stale.status, stale.body.code, stale.body.reason],
      [401, 'invalid_token', 'session_revoked'],
    );
  }
  const alice = await h.login('alice');
  assert.equal((await h.api(alice, 'GET', '/api/v1/me')).status, 200, 'a new sign-in works');
  const grants = await h.api(alice, 'GET', '/api/v1/grants?scope=mine&status=active');
  assert.deepEqual(grants.body.grants, [], 'unlocking restores no grant');
  assert.equal((await store.requests.get(pending.body.id as string))?.state, 'cancelled');
  const notLocked = await asAdmin('POST', '/api/v1/principals/demo:alice/unlock', { reason: 'again' });
  assert.deepEqual([notLocked.status, notLocked.body.code], [409, 'invalid_transition']);
  await direct.end().catch(() => {});
});

test('a lock ahead of the first sign-in refuses it', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const locked = await asAdmin('POST', '/api/v1/principals/demo:carol/lock', { reason: 'left the company' });
  assert.equal(locked.status, 200, JSON.stringify(locked.body));
  assert.deepEqual([locked.body.revoked_grants, locked.body.cancelled_requests], [0, 0]);
  assert.equal((locked.body.principal as PrincipalView).last_login_at, null);
  await assert.rejects(world.h.login('carol'), /answered 403/);
  const shown = await asAdmin('GET', '/api/v1/principals/demo:carol');
  assert.deepEqual([shown.status, shown.body.standing], [200, 'locked']);
  assert.equal(
    (await asAdmin('POST', '/api/v1/principals/demo:carol/unlock', { reason: 'rehired' })).status,
    200,
  );
  assert.ok(await world.h.login('carol'));

  // Subjects are the IdP's own: a SAML NameID may hold spaces.
  const spaced = `/api/v1/principals/${encodeURIComponent('demo:Jane Doe')}`;
  assert.equal((await asAdmin('POST', `${spaced}/lock`, { reason: 'left' })).status, 200);
  assert.equal((await asAdmin('GET', spaced)).body.id, 'demo:Jane Doe');
  assert.equal((await asAdmin('POST', `${spaced}/unlock`, { reason: 'back' })).status, 200);
  const control = await asAdmin('POST', `/api/v1/principals/${encodeURIComponent('demo:a\nb')}/lock`, {
    reason: 'x',
  });
  assert.deepEqual([control.status, control.body.code], [400, 'validation_failed']);
});

test('only administrators lock, never themselves, with a reason, and only principals of a configured IdP', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions } = world;
  const alice = await h.login('alice');
  const deniedBefore = (await events('security.denied')).length;
  for (const [method, path, body] of [
    ['POST', '/api/v1/principals/demo:bob/lock', { reason: 'revenge' }],
    ['POST', '/api/v1/principals/demo:bob/unlock', { reason: 'x' }],
    ['GET', '/api/v1/principals/demo:bob', undefined],
    ['GET', '/api/v1/principals', undefined],
  ] as const) {
    const refused = await h.api(alice, method, path, body);
    assert.deepEqual([refused.status, refused.body.code], [403, 'forbidden'], `${method} ${path}`);
  }
  assert.equal((await events('security.denied')).length, deniedBefore + 4, 'each refusal is audited');

  const self = await asAdmin('POST', '/api/v1/principals/demo:dave/lock', { reason: 'oops' });
  assert.deepEqual([self.status, self.body.code, self.body.reason], [403, 'forbidden', 'self_lock']);
  for (const [path, body] of [
    ['/api/v1/principals/demo:bob/lock', { reason: '' }],
    ['/api/v1/principals/demo:bob/lock', { reason: '   ' }],
    ['/api/v1/principals/demo:bob/lock', {}],
    ['/api/v1/principals/demo:bob/lock', { reason: 'x', extra: 1 }],
    ['/api/v1/principals/not-a-principal/lock', { reason: 'x' }],
    ['/api/v1/principals/nowhere:bob/lock', { reason: 'x' }],
  ] as const) {
    const refused = await asAdmin('POST', path, body);
    assert.deepEqual(
      [refused.status, refused.body.code],
      [400, 'validation_failed'],
      `${path} ${JSON.stringify(body)}`,
    );
  }
  assert.equal((await asAdmin('GET', '/api/v1/principals/demo:nobody')).status, 404);
  assert.equal((await h.api(sessions.bob ?? '', 'GET', '/api/v1/me')).status, 200, 'bob was never locked');
  assert.equal(
    (await events('principal.locked')).filter(
      (e) => (e.data as { principal?: string }).principal === 'demo:bob',
    ).length,
    0,
  );
});

test('a lock racing with requests and auto-approvals leaves nothing live (PostgreSQL storage)', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h } = world;
  const alice = await h.login('alice');
  const ask = () =>
    h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 600,
      reason: 'race',
    });
  const before = await Promise.all([ask(), ask()]);
  assert.deepEqual(
    before.map((r) => r.body.state),
    ['active', 'active'],
    'demo-api/reader is auto-approved: each request makes a live grant at once',
  );
  const racing = Array.from({ length: 16 }, ask);
  const lock = asAdmin('POST', '/api/v1/principals/demo:alice/lock', { reason: 'race' });
  const answers = await Promise.all(racing);
  assert.equal((await lock).status, 200, JSON.stringify((await lock).body));
  for (const answer of answers)
    assert.ok(
      answer.status === 201 || (answer.status === 403 && answer.body.code === 'principal_locked'),
      JSON.stringify(answer.body),
    );
  const store = h.portcullis.store;
  const live = await store.requests.list({
    requesterIds: ['demo:alice'],
    states: ['pending', 'approved', 'active'],
    limit: 100,
  });
  assert.deepEqual(live, [], 'no request of a locked principal outlives the lock');
  for (const answer of [...before, ...answers].filter((a) => a.status === 201))
    assert.ok(
      ['revoked', 'cancelled'].includes((await store.requests.get(answer.body.id as string))?.state ?? ''),
    );
  assert.equal(
    (await asAdmin('POST', '/api/v1/principals/demo:alice/unlock', { reason: 'race over' })).status,
    200,
  );
});

const home = mkdtempSync(join(tmpdir(), 'portcullis-principal-locks-'));
after(() => rmSync(home, { recursive: true, force: true }));

/** The real `portcullis` binary as `user`, with a fresh session of theirs saved for the server. */
async function cli(user: string, args: string[]) {
  await writeSession(home, user, {
    server: world.h.url,
    session_token: await world.h.login(user),
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    principal: { id: `demo:${user}`, display_name: user, groups: [] },
  });
  return runCliProcess(['--profile', user, ...args], { PORTCULLIS_HOME: home });
}

test('`portcullis principals lock|list|show|unlock`, with the exit codes scripts rely on', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const refused = await cli('alice', ['principals', 'lock', 'demo:bob', '--reason', 'not mine to lock']);
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /error\[forbidden\]/);
  const noReason = await cli('dave', ['principals', 'lock', 'demo:bob']);
  assert.equal(noReason.code, 2, noReason.stderr);

  const locked = await cli('dave', ['principals', 'lock', 'demo:bob', '--reason', 'INC-512: token leaked']);
  assert.equal(locked.code, 0, locked.stderr);
  assert.match(locked.stdout, /^Locked demo:bob: 0 grant\(s\) revoked, 0 request\(s\) cancelled;/);
  const listed = await cli('dave', ['principals', 'list']);
  assert.match(listed.stdout, /demo:bob +Bob \S+ +(now|\d+s ago) +demo:dave +INC-512: token leaked/);
  const json = JSON.parse(
    (await cli('dave', ['principals', 'show', 'demo:bob', '--json'])).stdout,
  ) as PrincipalView;
  assert.deepEqual([json.standing, json.lock?.reason], ['locked', 'INC-512: token leaked']);
  const again = await cli('dave', ['principals', 'lock', 'demo:bob', '--reason', 'twice']);
  assert.equal(again.code, 6, again.stderr);

  const unlocked = await cli('dave', ['principals', 'unlock', 'demo:bob', '--reason', 'token rotated']);
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.match(unlocked.stdout, /^Unlocked demo:bob\. Ended access stays ended/);
  const shown = await cli('dave', ['principals', 'show', 'demo:bob']);
  assert.match(shown.stdout, /standing +enabled/);
  const empty = await cli('dave', ['principals', 'list']);
  assert.doesNotMatch(empty.stdout, /demo:bob/);
});
