/**
 * Break-glass on a gateway-only resource: with every IdP down, the quorum's credentials are a
 * gateway connection (never the grant's own login), the session runs through the gateway within
 * the account's scope, and ending the activation cuts it with FATAL 57P01.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { confirmActivation, initiateActivation } from '../../test-support/break-glass-activation.js';
import {
  demoDbEmergencyAccount,
  enrolInHarness,
  type TestCustodian,
  webhookChannelConfig,
} from '../../test-support/break-glass-fixtures.js';
import { recordedStatements, rejection } from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';

const account = 'db-emergency';
let custodians: Record<string, TestCustodian> = {};
const world = useGatewayWorld({
  users: [],
  harness: {
    targetGatewayOnly: true,
    configOverrides: {
      break_glass: {
        accounts: [demoDbEmergencyAccount(account, ['alice', 'bob'])],
        reviewer_groups: ['sre'],
        // Nothing listens there: an alert outage never blocks break-glass.
        alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
      },
    },
  },
  setUp: async ({ h }) => {
    custodians = await enrolInHarness(h, account, ['alice', 'bob']);
  },
});

test('with the IdP down, break-glass credentials lead through the gateway, in scope, and end with the activation', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const { h } = world;
  await h.idp.stop();
  const alice = custodians.alice as TestCustodian;
  const bob = custodians.bob as TestCustodian;
  const { id, handle } = await initiateActivation(h, account, alice, {
    reason: 'orders stuck, IdP outage',
    incident: 'INC-7',
    duration_minutes: 10,
  });
  assert.equal(await confirmActivation(h, id, bob), 'active');
  const withHandle = { 'x-break-glass-handle': handle };

  const creds = await h.api(
    null,
    'POST',
    `/api/v1/break-glass/activations/${id}/credentials`,
    undefined,
    withHandle,
  );
  assert.equal(creds.status, 200, JSON.stringify(creds.body));
  const [grant] = creds.body.grants as { grant_id: string; credentials: Record<string, string> }[];
  const credentials = grant?.credentials ?? {};
  assert.equal(credentials.port, String(h.portcullis.gateway?.port));
  assert.equal(credentials.username, grant?.grant_id);

  const db = new pg.Client({ connectionString: credentials.connection_string });
  db.on('error', () => {});
  await db.connect();
  const { rows } = await db.query('select count(*)::int as n from items');
  assert.equal(rows[0]?.n, 2);
  // Outside the scope the database itself refuses, as for a direct login.
  assert.equal((await rejection(db.query("insert into items (name) values ('x')"))).code, '42501');
  const recorded = (await recordedStatements(h)).filter((s) => s.grantId === grant?.grant_id);
  assert.ok(recorded.some((s) => s.data.sql === 'select count(*)::int as n from items'));

  const cut = rejection(db.query('select pg_sleep(30)'));
  const ended = await h.api(null, 'POST', `/api/v1/break-glass/activations/${id}/end`, undefined, withHandle);
  assert.equal(ended.status, 200, JSON.stringify(ended.body));
  assert.equal((await cut).code, '57P01');
  await db.end().catch(() => {});
  const again = await rejection(new pg.Client({ connectionString: credentials.connection_string }).connect());
  assert.equal(again.code, '28000');
});
