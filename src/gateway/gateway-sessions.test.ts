/**
 * Open gateway sessions through the HTTP API: who sees which, ending one session (FATAL 57P01 to
 * its client, audited first) while its grant stays active, and the store rows another replica
 * reads and writes. Real gateway, real scram cluster, node-postgres.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { gatewayEvents, liveGrant, viaGateway } from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { waitFor } from '../../test-support/wait-for.js';
import { liveSessionsKind, requestSessionEnd } from '../app/live-session-store.js';
import { writeSession } from '../cli/session-file.js';
import type { GatewaySessionView } from '../http/routes/gateway-routes.js';

const world = useGatewayWorld({ users: ['alice', 'bob', 'carol', 'dave'] });

async function sessionsOf(user: string, scope: 'mine' | 'all' = 'mine'): Promise<GatewaySessionView[]> {
  const answer = await world.h.api(
    world.sessions[user] ?? '',
    'GET',
    `/api/v1/gateway/sessions?scope=${scope}`,
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.sessions as GatewaySessionView[];
}

async function openSession(grantToken: string, applicationName: string) {
  const client = new pg.Client({
    ...viaGateway(world.h, 'demo:alice', grantToken),
    application_name: applicationName,
  });
  await client.connect();
  const ended = new Promise<Error & { code?: string }>((resolve) => client.on('error', resolve));
  return { client, ended };
}

test('the principal, the owners and admins see an open session; others do not', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions);
  const { client } = await openSession(grant.token, 'sessions-visibility');
  try {
    const mine = (await sessionsOf('alice')).filter((s) => s.grant_id === grant.grantId);
    assert.equal(mine.length, 1);
    const [session] = mine;
    assert.equal(session?.principal, 'demo:alice');
    assert.equal(session?.resource, 'demo-db');
    assert.equal(session?.application_name, 'sessions-visibility');
    assert.equal(session?.tls, false);
    assert.match(session?.client_address ?? '', /127\.0\.0\.1/);
    assert.ok(Math.abs(Date.parse(session?.started_at ?? '') - Date.now()) < 60_000);

    const ids = async (user: string) => (await sessionsOf(user, 'all')).map((s) => s.id);
    assert.ok((await ids('carol')).includes(session?.id ?? ''), 'the owner (dba) sees it');
    assert.ok((await ids('dave')).includes(session?.id ?? ''), 'an admin sees it');
    assert.ok(!(await ids('bob')).includes(session?.id ?? ''), 'an approver who is not an owner does not');
    assert.deepEqual(await sessionsOf('bob'), []);
  } finally {
    await client.end();
  }
  await waitFor('the closed session to leave the list', async () =>
    (await sessionsOf('alice')).some((s) => s.grant_id === grant.grantId) ? undefined : true,
  );
});

test('an owner ends one session: its client reads why, the grant and other sessions stay', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions);
  const first = await openSession(grant.token, 'to-be-ended');
  const second = await openSession(grant.token, 'stays');
  try {
    const target = (await sessionsOf('alice')).find((s) => s.application_name === 'to-be-ended');
    assert.ok(target);

    const stranger = await world.h.api(
      world.sessions.bob ?? '',
      'POST',
      `/api/v1/gateway/sessions/${target.id}/end`,
      {
        reason: 'not mine to end',
      },
    );
    assert.equal(stranger.status, 404, JSON.stringify(stranger.body));

    const ended = await world.h.api(
      world.sessions.carol ?? '',
      'POST',
      `/api/v1/gateway/sessions/${target.id}/end`,
      {
        reason: 'runaway query',
      },
    );
    assert.equal(ended.status, 202, JSON.stringify(ended.body));
    assert.equal(ended.body.status, 'ending');
    const error = await first.ended;
    assert.equal(error.code, '57P01');
    assert.match(error.message, /session ended by demo:carol: runaway query/);

    assert.equal((await second.client.query('select 1 as ok')).rows[0].ok, 1, 'the other session runs on');
    const view = await world.h.api(world.sessions.alice ?? '', 'GET', `/api/v1/grants/${grant.grantId}`);
    assert.equal(view.body.status, 'active');

    const requested = (await gatewayEvents(world.h, 'gateway.session_end_requested')).find(
      (e) => e.data.session === target.id,
    );
    assert.equal(requested?.actor, 'demo:carol');
    assert.equal(requested?.reason, 'runaway query');
    assert.equal(requested?.grantId, grant.grantId);
    const closed = (await gatewayEvents(world.h, 'gateway.session_ended')).find(
      (e) => e.data.session === target.id,
    );
    assert.equal(closed?.reason, 'ended_by');

    const again = await world.h.api(
      world.sessions.carol ?? '',
      'POST',
      `/api/v1/gateway/sessions/${target.id}/end`,
      {},
    );
    assert.equal(again.status, 404, 'a closed session cannot be ended twice');
  } finally {
    await second.client.end();
    await first.client.end().catch(() => {});
  }
});

test("another replica's view: published rows are listed, and an end request in the store is taken", async (t) => {
  if (world.skip) return t.skip(world.skip);
  const store = world.h.portcullis.store;
  const now = Date.now();
  const elsewhere = {
    id: 'b7c1e0f2-0000-4000-8000-000000000001',
    grantId: 'grant-on-another-replica',
    principalId: 'demo:alice',
    resourceId: 'demo-db',
    requestId: 'request-on-another-replica',
    clientAddress: '10.0.0.7',
    applicationName: 'elsewhere',
    tls: true,
    startedAt: now - 5000,
    replica: 'replica-b',
  };
  await store.ephemeral.put(liveSessionsKind, 'replica-b', JSON.stringify([elsewhere]), now + 30_000);
  const listed = (await sessionsOf('dave', 'all')).find((s) => s.id === elsewhere.id);
  assert.equal(listed?.replica, 'replica-b');
  assert.equal(listed?.client_address, '10.0.0.7');
  await store.ephemeral.put(liveSessionsKind, 'replica-b', '[]', now + 30_000);

  // A request written by another replica's API reaches this replica's session at its next check.
  const grant = await liveGrant(world.h, world.sessions);
  const { client, ended } = await openSession(grant.token, 'ended-from-elsewhere');
  try {
    const session = (await sessionsOf('alice')).find((s) => s.application_name === 'ended-from-elsewhere');
    assert.ok(session);
    await requestSessionEnd(
      store.ephemeral,
      session.id,
      { by: 'demo:dave', reason: 'from replica b' },
      Date.now(),
    );
    const error = await ended;
    assert.equal(error.code, '57P01');
    assert.match(error.message, /session ended by demo:dave: from replica b/);
  } finally {
    await client.end().catch(() => {});
  }
});

test('bad input to the session endpoints: clear problems, and nothing is audited or ended', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions);
  const { client } = await openSession(grant.token, 'bad-input-witness');
  try {
    const target = (await sessionsOf('alice')).find((s) => s.application_name === 'bad-input-witness');
    assert.ok(target);
    const before = (await gatewayEvents(world.h, 'gateway.session_end_requested')).length;
    const dave = world.sessions.dave ?? '';
    const cases: [string | null, string, string, unknown, number][] = [
      [null, 'GET', '/api/v1/gateway/sessions', undefined, 401],
      [null, 'POST', `/api/v1/gateway/sessions/${target.id}/end`, {}, 401],
      [dave, 'GET', '/api/v1/gateway/sessions?scope=everyone', undefined, 400],
      [dave, 'POST', '/api/v1/gateway/sessions/not%20an%20id/end', {}, 400],
      [dave, 'POST', `/api/v1/gateway/sessions/${target.id}/end`, { reason: 'x', force: true }, 400],
      [dave, 'POST', `/api/v1/gateway/sessions/${target.id}/end`, { reason: 'x'.repeat(501) }, 400],
      [dave, 'POST', `/api/v1/gateway/sessions/${target.id}/end`, { reason: 'bell \u0007' }, 400],
      [dave, 'POST', '/api/v1/gateway/sessions/00000000-0000-4000-8000-000000000000/end', {}, 404],
    ];
    for (const [token, method, path, body, status] of cases) {
      const answer = await world.h.api(token, method, path, body);
      assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.contentType, /application\/problem\+json/);
      assert.equal(typeof answer.body.code, 'string', `${method} ${path} has a stable code`);
    }
    assert.equal((await gatewayEvents(world.h, 'gateway.session_end_requested')).length, before);
    assert.equal((await client.query('select 1 as ok')).rows[0].ok, 1, 'the session was not touched');
  } finally {
    await client.end();
  }
});

const home = mkdtempSync(join(tmpdir(), 'portcullis-gateway-sessions-'));
after(() => rmSync(home, { recursive: true, force: true }));

/** The real `portcullis` binary as `user` (a saved session for the running server). */
async function cli(user: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  await writeSession(home, user, {
    server: world.h.url,
    session_token: world.sessions[user] ?? '',
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    principal: { id: `demo:${user}`, display_name: user, groups: [] },
  });
  const result = await runCliProcess(['--profile', user, ...args], { PORTCULLIS_HOME: home });
  assert.equal(result.code, 0, result.stderr);
  return result;
}

test('`portcullis gateway sessions` lists, `portcullis gateway end` ends', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions);
  const { client, ended } = await openSession(grant.token, 'seen-by-the-cli');
  try {
    const listed = await cli('alice', ['gateway', 'sessions']);
    const row = listed.stdout.split('\n').find((line) => line.includes('seen-by-the-cli'));
    assert.ok(row, listed.stdout);
    assert.match(
      row,
      new RegExp(`demo:alice +demo-db +${grant.grantId} +127\\.0\\.0\\.1 seen-by-the-cli +no `),
    );
    const id = row.split(' ')[0] ?? '';
    const json = JSON.parse((await cli('carol', ['gateway', 'sessions', '--all', '--json'])).stdout) as {
      sessions: { id: string }[];
    };
    assert.ok(json.sessions.some((s) => s.id === id));

    const done = await cli('carol', ['gateway', 'end', id, '--reason', 'from the cli']);
    assert.match(
      done.stdout,
      new RegExp(`^Session ${id} \\(demo:alice on demo-db\\) is ending; grant ${grant.grantId} stays active`),
    );
    assert.match((await ended).message, /session ended by demo:carol: from the cli/);
  } finally {
    await client.end().catch(() => {});
  }
});
