/**
 * The gateway under bad input and load (slow: its own file): garbage instead of a startup packet,
 * an oversized message, a client that stalls mid-message — each ends only that connection while
 * another session keeps working — and 1,000 concurrent client connections held at once.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  connectViaGateway,
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { type ScramCluster, startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import { waitFor } from '../../test-support/wait-for.js';
import {
  BackendMessage,
  decodeAuthentication,
  decodeNegotiateProtocolVersion,
  encodePasswordMessage,
  encodeStartupMessage,
  encodeTerminate,
  FrameReader,
} from './protocol/index.js';

const connectionsHeld = 1000;

let cluster: ScramCluster | undefined;
let skip: string | undefined;
let h: Harness;
const sessions: Record<string, string> = {};
let grant: GatewayGrant;
let witness: pg.Client;

before(async () => {
  const started = await startScramClusterOrSkip({ maxConnections: connectionsHeld + 100 });
  cluster = started.cluster;
  skip = started.skip;
  if (!cluster) return;
  h = await startHarness({
    storage: 'sqlite',
    targetAdminUrl: cluster.adminUrl,
    gateway: { max_message_bytes: 65_536 },
    targetConnectionLimit: connectionsHeld + 20,
  });
  for (const user of ['alice', 'bob']) sessions[user] = await h.login(user);
  grant = await liveGrant(h, sessions);
  witness = await connectViaGateway(viaGateway(h, 'demo:alice', grant.token));
});
after(async () => {
  await witness?.end().catch(() => {});
  await h?.close();
  await cluster?.stop();
});

/** Opens a raw TCP connection to the gateway and collects what it answers until it closes. */
async function raw(send: (socket: Socket) => void): Promise<{ answer: Buffer; closedAfterMs: number }> {
  const socket = connect({ host: '127.0.0.1', port: h.portcullis.gateway?.port ?? 0 });
  await new Promise((resolve) => socket.once('connect', resolve));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const started = Date.now();
  send(socket);
  await new Promise((resolve) => socket.once('close', resolve));
  return { answer: Buffer.concat(chunks), closedAfterMs: Date.now() - started };
}

/** The SQLSTATE of an ErrorResponse at the end of `answer`. */
function sqlState(answer: Buffer): string | undefined {
  const at = answer.lastIndexOf(0x45);
  if (at < 0) return undefined;
  const match = /C([0-9A-Z]{5})\0/.exec(answer.subarray(at).toString('latin1'));
  return match?.[1];
}

async function witnessStillWorks(): Promise<void> {
  assert.equal((await witness.query('select 1 as ok')).rows[0].ok, 1);
}

describe('gateway robustness', () => {
  test('garbage instead of a startup packet ends that connection with 08P01', async (t) => {
    if (skip) return t.skip(skip);
    const { answer } = await raw((s) => s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')));
    assert.equal(sqlState(answer), '08P01');
    const { answer: tiny } = await raw((s) => s.write(Buffer.from([0, 0, 0, 2, 1, 2, 3, 4])));
    assert.equal(sqlState(tiny), '08P01');
    await witnessStillWorks();
  });

  test('an oversized message ends that connection with 08P01, before the body is read', async (t) => {
    if (skip) return t.skip(skip);
    const c = await connectViaGateway(viaGateway(h, 'demo:alice', grant.token));
    const error = await c.query(`select '${'x'.repeat(100_000)}'`).catch((e: Error & { code?: string }) => e);
    assert.equal((error as { code?: string }).code, '08P01', String(error));
    const { answer } = await raw((s) => {
      s.write(encodeStartupMessage({ user: 'demo:alice', database: 'demo-db' }));
      // A password message announcing 1 GiB.
      s.write(Buffer.from([0x70, 0x40, 0, 0, 0]));
    });
    assert.equal(sqlState(answer), '08P01');
    await witnessStillWorks();
  });

  test('a client asking for protocol 3.2 with a _pq_ option is told 3.0 first, then logs in', async (t) => {
    if (skip) return t.skip(skip);
    const { answer } = await raw((s) =>
      s.write(
        Buffer.concat([
          encodeStartupMessage({
            user: 'demo:alice',
            database: 'demo-db',
            parameters: { '_pq_.test_option': 'on' },
            protocolVersion: 0x30002,
          }),
          encodePasswordMessage(grant.token),
          encodeTerminate(),
        ]),
      ),
    );
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(answer);
    const types: string[] = [];
    while (reader.next()) {
      types.push(String.fromCharCode(reader.type));
      if (reader.type === BackendMessage.NegotiateProtocolVersion)
        assert.deepEqual(decodeNegotiateProtocolVersion(reader.body()), {
          newestMinorVersion: 0,
          unrecognizedOptions: ['_pq_.test_option'],
        });
      if (types.length === 2) assert.equal(decodeAuthentication(reader.body()).kind, 'cleartext-password');
    }
    assert.deepEqual(types.slice(0, 3), ['v', 'R', 'R'], types.join(''));
    assert.equal(types.at(-1), 'Z', 'logged in: ReadyForQuery');
  });

  test("a Terminate is recorded as the client's goodbye though the server closes before the client", async (t) => {
    if (skip) return t.skip(skip);
    const endedBefore = (await gatewayEvents(h, 'gateway.session_ended')).length;
    // The socket stays open after the Terminate: the server's close reaches the gateway first.
    await raw((s) =>
      s.write(
        Buffer.concat([
          encodeStartupMessage({ user: 'demo:alice', database: 'demo-db' }),
          encodePasswordMessage(grant.token),
          encodeTerminate(),
        ]),
      ),
    );
    const ended = await waitFor('the session end to be recorded', async () => {
      const events = await gatewayEvents(h, 'gateway.session_ended');
      return events.length > endedBefore ? events.at(-1) : undefined;
    });
    assert.equal(ended.reason, 'client terminated the session');
    assert.equal(ended.data.relayed, true);
  });

  test('a client that stalls mid-message is cut at the startup timeout; others keep working', async (t) => {
    if (skip) return t.skip(skip);
    const { answer, closedAfterMs } = await raw((s) => {
      s.write(encodeStartupMessage({ user: 'demo:alice', database: 'demo-db' }));
      const password = encodePasswordMessage(grant.token);
      s.write(password.subarray(0, 20)); // and never the rest
    });
    assert.equal(sqlState(answer), '08P01');
    assert.ok(closedAfterMs >= 9000 && closedAfterMs < 12_000, `closed after ${closedAfterMs} ms`);
    await witnessStillWorks();
  });

  test(`${connectionsHeld} concurrent client connections are held`, async (t) => {
    if (skip) return t.skip(skip);
    const clients: pg.Client[] = [];
    const started = Date.now();
    try {
      for (let batch = 0; batch < connectionsHeld / 100; batch++) {
        clients.push(
          ...(await Promise.all(
            Array.from({ length: 100 }, () =>
              connectViaGateway({
                ...viaGateway(h, 'demo:alice', grant.token),
                connectionTimeoutMillis: 20_000,
              }),
            ),
          )),
        );
      }
      const results = await Promise.all(clients.map((c, i) => c.query('select $1::int as i', [i])));
      assert.ok(results.every((r, i) => r.rows[0].i === i));
      assert.ok(h.portcullis.gateway && h.portcullis.gateway.connectionCount >= connectionsHeld);
      await witnessStillWorks();
      t.diagnostic(`${connectionsHeld} sessions opened and queried in ${Date.now() - started} ms`);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
  });
});
