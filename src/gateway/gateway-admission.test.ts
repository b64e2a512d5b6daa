/**
 * The gateway admits only live grants: each bad login gets a proper ErrorResponse and nothing
 * reaches the database (pg_stat_activity of the target shows no backend for the grant's login).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  backendsOf,
  connectViaGateway,
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';

let grant: GatewayGrant;
const world = useGatewayWorld({
  setUp: async ({ h, sessions }) => {
    grant = await liveGrant(h, sessions);
  },
});

describe('gateway admission', () => {
  test('a live grant and its token: the session runs as the grant login', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const client = await connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token));
    const result = await client.query('select current_user as who, count(*)::int as n from items');
    assert.equal(result.rows[0].who, grant.login);
    assert.equal(result.rows[0].n, 2);
    await client.end();
    const byGrantId = await connectViaGateway(viaGateway(world.h, grant.grantId, grant.token));
    assert.equal((await byGrantId.query('select 1 as one')).rows[0].one, 1);
    await byGrantId.end();
  });

  const refusals: [string, () => Parameters<typeof viaGateway>, string, RegExp][] = [
    ['no token', () => [world.h, 'demo:alice', ''], '28P01', /must be a Portcullis access token/],
    ['a wrong token', () => [world.h, 'demo:alice', `${grant.token.slice(0, -4)}AAAA`], '28P01', /not valid/],
    ['garbage as the token', () => [world.h, 'demo:alice', 'hunter2'], '28P01', /not valid/],
    [
      'a token for a non-database resource',
      () => [world.h, 'demo:alice', grant.token, 'demo-api'],
      '28000',
      /not a PostgreSQL resource/,
    ],
    [
      'an unknown database',
      () => [world.h, 'demo:alice', grant.token, 'postgres'],
      '28000',
      /not a PostgreSQL resource/,
    ],
    [
      'a user that does not match the token',
      () => [world.h, 'demo:bob', grant.token],
      '28000',
      /does not match/,
    ],
  ];
  for (const [what, config, code, message] of refusals) {
    test(`${what} → ${code}, nothing upstream`, async (t) => {
      if (world.skip) return t.skip(world.skip);
      const error = await rejection(connectViaGateway(viaGateway(...config())));
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      assert.ok(!error.message.includes(grant.token.slice(20, 60)), 'the token is never echoed');
      assert.equal(await backendsOf(world.cluster?.adminUrl ?? '', grant.login), 0);
    });
  }

  test('a token for another resource → 28000', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const created = await world.h.api(world.sessions.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: 600,
      reason: 'gateway test',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const grantId = created.body.grant_id as string;
    const issued = await world.h.api(world.sessions.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`);
    const error = await rejection(
      connectViaGateway(viaGateway(world.h, 'demo:alice', issued.body.access_token as string)),
    );
    assert.equal(error.code, '28000');
    assert.match(error.message, /not for resource "demo-db"/);
  });

  test('an expired token → 28P01', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const short = await liveGrant(world.h, world.sessions, 2);
    await new Promise((r) => setTimeout(r, 2300));
    const error = await rejection(connectViaGateway(viaGateway(world.h, 'demo:alice', short.token)));
    assert.equal(error.code, '28P01');
    assert.match(error.message, /expired/);
    assert.equal(await backendsOf(world.cluster?.adminUrl ?? '', short.login), 0);
  });

  test('the token of a revoked grant → 28000, and the refusal is audited', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const revoked = await liveGrant(world.h, world.sessions);
    const answer = await world.h.api(
      world.sessions.alice ?? '',
      'POST',
      `/api/v1/grants/${revoked.grantId}/revoke`,
      {},
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const error = await rejection(connectViaGateway(viaGateway(world.h, 'demo:alice', revoked.token)));
    assert.equal(error.code, '28000');
    assert.match(error.message, new RegExp(`access grant ${revoked.grantId} is not active`));
    assert.equal(await backendsOf(world.cluster?.adminUrl ?? '', revoked.login), 0);
    const refused = await gatewayEvents(world.h, 'gateway.admission_refused');
    const event = refused.find((e) => e.grantId === revoked.grantId);
    assert.equal(event?.reason, 'grant_not_live');
    assert.equal(event?.actor, 'demo:alice');
    assert.ok(refused.some((e) => e.reason === 'no_token'));
  });
});
