/**
 * The gateway's Prometheus metrics, scraped from /metrics of a real server while real clients log
 * in, are refused, send garbage, run statements, are cut off by a revocation, or are admitted by
 * Portcullis but turned away by the database.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import pg, { type ClientConfig } from 'pg';
import {
  connectViaGateway,
  gatewayEvents,
  liveGrant,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { waitFor } from '../../test-support/wait-for.js';

const world = useGatewayWorld();

/** The value of one sample of the exposition ('' labels for none), or undefined when absent. */
async function sample(name: string, labels = ''): Promise<number | undefined> {
  const text = await fetch(`${world.h.url}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Sends bytes that are not a startup packet and waits for the gateway to close the connection. */
async function sendGarbage(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect(world.h.portcullis.gateway?.port ?? 0, '127.0.0.1', () =>
      socket.write(Buffer.from([0, 0, 0, 2, 1, 2, 3, 4])),
    );
    socket.on('error', reject);
    socket.on('data', () => {});
    socket.on('close', () => resolve());
  });
}

test('logins, refusals, protocol errors, statements, sessions and terminations are on /metrics', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions } = world;
  assert.equal(await sample('portcullis_gateway_sessions'), 0);
  assert.equal(await sample('portcullis_gateway_recording_writable'), 1);
  assert.equal(await sample('portcullis_gateway_statements_recorded_total'), 0);

  const grant = await liveGrant(h, sessions);
  const client = await connectViaGateway(viaGateway(h, 'demo:alice', grant.token));
  client.on('error', () => {});
  for (const n of [1, 2, 3]) await client.query('select $1::int as n', [n]);
  const wrong = await rejection(
    connectViaGateway(viaGateway(h, 'demo:alice', `${grant.token.slice(0, -4)}AAAA`)),
  );
  assert.equal(wrong.code, '28P01');
  await sendGarbage();
  // node-postgres sends `replication` in the startup packet (its types do not declare it).
  const asReplication: ClientConfig & { replication: string } = {
    ...viaGateway(h, 'demo:alice', grant.token),
    replication: 'database',
  };
  const replication = await rejection(connectViaGateway(asReplication));
  assert.equal(replication.code, '28000');

  assert.equal(await sample('portcullis_gateway_logins_total', '{outcome="admitted"}'), 1);
  assert.equal(await sample('portcullis_gateway_logins_total', '{outcome="refused"}'), 1);
  assert.equal(await sample('portcullis_gateway_logins_total', '{outcome="rejected"}'), 1);
  assert.equal(await sample('portcullis_gateway_protocol_errors_total'), 1);
  assert.equal(await sample('portcullis_gateway_sessions'), 1);
  assert.equal(await sample('portcullis_gateway_connections'), 1);
  // An extended query is two records: its Parse, and its Execute with the Bind folded in.
  assert.equal(await sample('portcullis_gateway_statements_recorded_total'), 6);

  const ended = rejection(client.query('select pg_sleep(30)'));
  const revoked = await h.api(sessions.carol ?? '', 'POST', `/api/v1/grants/${grant.grantId}/revoke`, {
    reason: 'metrics test',
  });
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  assert.equal((await ended).code, '57P01');
  await waitFor('the session gone', async () =>
    (await sample('portcullis_gateway_sessions')) === 0 ? true : undefined,
  );
  assert.equal(await sample('portcullis_gateway_terminations_total', '{reason="revoked"}'), 1);
  assert.equal(await sample('portcullis_gateway_connections'), 0);
  assert.equal(await sample('portcullis_gateway_recording_writable'), 1);
});

test('a login the database refuses counts as upstream_failed and its session is recorded as ended', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h, sessions, cluster } = world;
  const grant = await liveGrant(h, sessions);
  // Drift behind Portcullis's back: someone with rights on the database locks the grant's role.
  const admin = new pg.Client({ connectionString: cluster?.adminUrl });
  await admin.connect();
  try {
    await admin.query(`alter role ${admin.escapeIdentifier(grant.login)} nologin`);
  } finally {
    await admin.end();
  }
  const before = (await sample('portcullis_gateway_logins_total', '{outcome="upstream_failed"}')) ?? 0;

  const refused = await rejection(connectViaGateway(viaGateway(h, 'demo:alice', grant.token)));
  // The database's own SQLSTATE and reason reach the client; the upstream password does not.
  assert.equal(refused.code, '28000');
  assert.match(refused.message, /the database refused the session: .*not permitted to log in/);

  assert.equal(await sample('portcullis_gateway_logins_total', '{outcome="upstream_failed"}'), before + 1);
  await waitFor('the session gone', async () =>
    (await sample('portcullis_gateway_sessions')) === 0 ? true : undefined,
  );
  const ended = (await gatewayEvents(h, 'gateway.session_ended')).filter((e) => e.grantId === grant.grantId);
  assert.equal(ended.length, 1);
  assert.equal(ended[0]?.reason, 'upstream refused');
  assert.equal(ended[0]?.data.relayed, false);
  assert.equal(ended[0]?.data.statements, 0);
});
