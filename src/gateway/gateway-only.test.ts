/**
 * A gateway-only resource (`postgres.gateway_only`): the requester's credentials are a connection
 * to the gateway with an access token as the password, never the grant's own login, so every
 * session passes the gateway (admission, statement records, live termination). Tested with a real
 * cluster, the real server and real clients (node-postgres, psql with the printed string).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { gatewayEvents, liveGrant, recordedStatements } from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';

const run = promisify(execFile);
const world = useGatewayWorld({ users: ['alice', 'bob'], harness: { targetGatewayOnly: true } });

test("credentials are a gateway connection with a token; the grant's login is never shown", async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions } = world;
  const grant = await liveGrant(h, sessions);
  const shown = await h.api(sessions.alice ?? '', 'GET', `/api/v1/grants/${grant.grantId}/credentials`);
  assert.equal(shown.status, 200, JSON.stringify(shown.body));
  const credentials = shown.body.credentials as Record<string, string>;
  const port = String(h.portcullis.gateway?.port);
  assert.equal(credentials.host, '127.0.0.1');
  assert.equal(credentials.port, port);
  assert.equal(credentials.username, grant.grantId);
  assert.equal(credentials.database, 'demo-db');
  assert.equal(credentials.sslmode, 'disable');
  assert.equal(credentials.password?.split('.').length, 3, 'an access token (JWS compact)');
  assert.ok(Date.parse(credentials.password_expires_at ?? '') <= grant.expiresAt);
  assert.equal(
    credentials.connection_string,
    `postgres://${grant.grantId}:${credentials.password}@127.0.0.1:${port}/demo-db?sslmode=disable`,
  );
  assert.ok(!JSON.stringify(shown.body).includes(grant.login), 'the upstream login is not named');

  // node-postgres with the string: the session runs as the grant's login, through the gateway.
  const client = new pg.Client({ connectionString: credentials.connection_string });
  await client.connect();
  try {
    const { rows } = await client.query('select current_user as login');
    assert.equal(rows[0]?.login, grant.login);
  } finally {
    await client.end();
  }
  const statements = await recordedStatements(h);
  assert.ok(
    statements.some((s) => s.grantId === grant.grantId && s.data.sql === 'select current_user as login'),
  );

  // Audited as a token issued for these credentials; the sealed login was never shown.
  const issued = (await gatewayEvents(h, 'token.issued')).filter((e) => e.grantId === grant.grantId);
  assert.ok(issued.some((e) => e.data.for === 'gateway_credentials'));
  const shownEvents = (await gatewayEvents(h, 'credentials.shown')).filter(
    (e) => e.grantId === grant.grantId,
  );
  assert.equal(shownEvents.length, 0);
});

test('psql "$(portcullis creds GRANT)": the printed string logs in through the gateway', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions } = world;
  const grant = await liveGrant(h, sessions);
  const shown = await h.api(sessions.alice ?? '', 'GET', `/api/v1/grants/${grant.grantId}/credentials`);
  const connection = (shown.body.credentials as Record<string, string>).connection_string ?? '';
  const { stdout } = await run('psql', [connection, '-Atc', 'select current_user'], {
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
  });
  assert.equal(stdout.trim(), grant.login);

  // Once the grant ends (alice releases it), the same string is refused by the gateway.
  const revoked = await h.api(sessions.alice ?? '', 'POST', `/api/v1/grants/${grant.grantId}/revoke`, {
    reason: 'gateway-only test',
  });
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  await assert.rejects(
    run('psql', [connection, '-Atc', 'select 1']),
    (error: Error & { stderr?: string }) => {
      assert.match(error.stderr ?? '', /is not active/);
      return true;
    },
  );
});
