/**
 * Cancel across replicas: a load balancer may send a client's CancelRequest (a new connection) to
 * another replica than the one holding the session. Two Portcullis servers on the same storage and
 * configuration, each with its gateway; node-postgres logs in through one, its CancelRequest goes
 * to the other, and the real PostgreSQL cancels the query. Real scram cluster, PostgreSQL storage.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type pg from 'pg';
import { parse, stringify } from 'yaml';
import { connectViaGateway, liveGrant, rejection, viaGateway } from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { waitFor } from '../../test-support/wait-for.js';
import { type RunningPortcullis, startPortcullis } from '../server/start.js';
import { cancelKeyKind } from './cancel-keys.js';

let second: RunningPortcullis | undefined;
const world = useGatewayWorld({
  // Several replicas need PostgreSQL storage (docs/operations.md).
  harness: { storage: 'postgres' },
  // The second replica: same configuration, same storage, its own gateway on another port.
  setUp: async ({ h }) => {
    const config = parse(readFileSync(h.configPath, 'utf8')) as { server: { port: number } };
    config.server.port = 0;
    const configPath = join(h.dir, 'second-replica.yaml');
    writeFileSync(configPath, stringify(config));
    second = await startPortcullis({ configPath, env: { ...process.env, ...h.env }, logLevel: 'silent' });
  },
});

after(async () => {
  await second?.close();
});

/** Sends a CancelRequest for `key` to the gateway listening on `port`, as libpq does. */
async function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  const request = Buffer.alloc(16);
  request.writeInt32BE(16, 0);
  request.writeInt32BE(80877102, 4);
  request.writeInt32BE(processId, 8);
  request.writeInt32BE(secretKey, 12);
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.end(request));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

function keyOf(client: pg.Client): { processID: number; secretKey: number } {
  return client as unknown as { processID: number; secretKey: number };
}

async function cancelMetric(server: RunningPortcullis, outcome: string): Promise<number> {
  const text = await fetch(`${server.url}/metrics`).then((r) => r.text());
  const prefix = `portcullis_gateway_cancel_requests_total{outcome="${outcome}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

async function sharedKeys(): Promise<number> {
  return (await world.h.portcullis.store.ephemeral.list(cancelKeyKind, Date.now())).length;
}

test('a CancelRequest sent to another replica cancels the query on the one holding the session', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const otherPort = second?.gateway?.port ?? 0;
  assert.notEqual(otherPort, world.h.portcullis.gateway?.port);
  const grant = await liveGrant(world.h, world.sessions);
  const client = await connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token));
  try {
    await waitFor('the session key in the shared store', async () =>
      (await sharedKeys()) > 0 ? true : undefined,
    );
    const before = await cancelMetric(second as RunningPortcullis, 'shared');
    const sleeping = rejection(client.query('select pg_sleep(30)'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { processID, secretKey } = keyOf(client);
    await sendCancel(otherPort, processID, secretKey);

    const error = (await sleeping) as Error & { code?: string };
    assert.equal(error.code, '57014');
    assert.match(error.message, /canceling statement due to user request/);
    assert.equal((await client.query('select 1 as ok')).rows[0].ok, 1, 'the session goes on');
    assert.equal(await cancelMetric(second as RunningPortcullis, 'shared'), before + 1);
  } finally {
    await client.end();
  }
  await waitFor('the key withdrawn from the store', async () =>
    (await sharedKeys()) === 0 ? true : undefined,
  );
});

test('a wrong secret sent to another replica cancels nothing', async (t) => {
  if (world.skip) return t.skip(world.skip);
  const grant = await liveGrant(world.h, world.sessions);
  const client = await connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token));
  try {
    const before = await cancelMetric(second as RunningPortcullis, 'unknown');
    const sleeping = client.query('select pg_sleep(1.5) as slept');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { processID, secretKey } = keyOf(client);
    await sendCancel(second?.gateway?.port ?? 0, processID, secretKey ^ 1);
    await sendCancel(second?.gateway?.port ?? 0, processID ^ 1, secretKey);
    const result = await sleeping;
    assert.equal(result.rows.length, 1, 'the query ran to its end');
    assert.equal(await cancelMetric(second as RunningPortcullis, 'unknown'), before + 2);
  } finally {
    await client.end();
  }
});
