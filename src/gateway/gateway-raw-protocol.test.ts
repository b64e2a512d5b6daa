/**
 * The gateway against clients that speak the protocol by hand (test-support/gateway-raw-client.ts):
 * messages no common driver sends, or sends in an order drivers avoid, each checked against what
 * really ran on a real PostgreSQL and what the audit log says about it. Started from the security
 * review's reproductions.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  recordedStatements,
} from '../../test-support/gateway-fixtures.js';
import {
  bind,
  execute,
  flush,
  frame,
  functionCall,
  parse,
  query,
  RawClient,
  sqlState,
  sync,
} from '../../test-support/gateway-raw-client.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { encodeStartupMessage, FrameReader } from './protocol/index.js';

let grant: GatewayGrant;
const world = useGatewayWorld({
  harness: { gateway: { record_parameters: true, max_logins_per_address: 3, max_connections: 6 } },
  setUp: async ({ h, sessions }) => {
    grant = await liveGrant(h, sessions);
  },
});

const gatewayPort = () => world.h.portcullis.gateway?.port ?? 0;

async function open(parameters: [string, string][] = []): Promise<RawClient> {
  const raw = new RawClient();
  const hello = await raw.open(gatewayPort(), 'demo:alice', grant.token, parameters);
  assert.equal(hello.at(-1)?.type, 'Z', `login: ${hello.map((f) => f.type).join('')}`);
  return raw;
}

/** The statement records of one session (by its recorded session id), in order. */
async function sessionRecords(sessionId: string) {
  return (await recordedStatements(world.h))
    .filter((s) => s.grantId === grant.grantId && s.data.session === sessionId)
    .map((s) => s.data);
}

/** The session id of the last statement recorded with `sql` (a marker query the test sent). */
async function sessionOf(sql: string): Promise<string> {
  const found = (await recordedStatements(world.h)).filter((s) => s.data.sql === sql).at(-1);
  assert.ok(found, `no record of ${sql}`);
  return found.data.session as string;
}

describe('gateway: raw protocol', () => {
  test('a FunctionCall is recorded with its function OID and arguments', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(query('select 1 as fc_marker'));
    await raw.until((f) => f.type === 'Z');
    // query_to_xml(text, bool, bool, text), OID 2924: runs a query of its caller's choosing.
    raw.send(functionCall(2924, ['select name, 4242 as marker from items', 'f', 'f', '']));
    const got = await raw.until((f) => f.type === 'Z');
    const result = got.find((f) => f.type === 'V');
    assert.ok(result, `no FunctionCallResponse: ${got.map((f) => f.type).join('')}`);
    assert.match(result.body.toString(), /4242/);
    raw.close();

    const records = await sessionRecords(await sessionOf('select 1 as fc_marker'));
    const call = records.find((r) => r.kind === 'function_call');
    assert.ok(call, JSON.stringify(records));
    assert.equal(call.functionOid, 2924);
    assert.deepEqual(call.parameters, ['select name, 4242 as marker from items', 'f', 'f', '']);
  });

  for (const [what, pipeline] of [
    [
      'Parse/Bind/Execute/Flush, no Sync',
      () => [parse('', 'select pg_sleep(120)'), bind('', ''), execute(''), flush()],
    ],
    [
      'a FunctionCall, then a Query',
      () => [functionCall(2078, ['search_path', 'public', 'f']), query('select pg_sleep(120)')],
    ],
  ] as const) {
    test(`a session ended on request cancels its running query (${what})`, async (t) => {
      if (world.skip) return t.skip(world.skip);
      const applicationName = `victim-${what.length}`;
      const raw = await open([['application_name', applicationName]]);
      raw.send(...pipeline());
      const admin = new pg.Client({ connectionString: world.cluster?.adminUrl });
      await admin.connect();
      t.after(() => admin.end());
      const running = async () =>
        (
          await admin.query(
            "select pid from pg_stat_activity where application_name = $1 and state = 'active' and query like '%pg_sleep(120)%'",
            [applicationName],
          )
        ).rowCount ?? 0;
      while ((await running()) === 0) await sleep(50);

      const alice = world.sessions.alice ?? '';
      const list = await world.h.api(alice, 'GET', '/api/v1/gateway/sessions?scope=mine');
      const target = (list.body.sessions as { id: string; application_name: string }[]).find(
        (s) => s.application_name === applicationName,
      );
      assert.ok(target);
      const ended = await world.h.api(alice, 'POST', `/api/v1/gateway/sessions/${target.id}/end`, {
        reason: 'runaway query',
      });
      assert.equal(ended.status, 202, JSON.stringify(ended.body));
      await raw.until((f) => f.type === 'E');
      raw.close();
      // The query would run for 120 s: gone well before that means it was cancelled. A generous
      // bound, not a timing assertion.
      const deadline = Date.now() + 60_000;
      while ((await running()) > 0 && Date.now() < deadline) await sleep(100);
      assert.equal(await running(), 0, 'the backend still runs the query after its session was ended');
    });
  }

  test('a re-Parse the server refused does not change the SQL its Execute records', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(parse('s1', "select 'really_ran'::text"), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('s1', 'select 1 as harmless'), sync()); // 42P05: already exists
    const second = await raw.until((f) => f.type === 'Z');
    assert.ok(second.some((f) => f.type === 'E' && f.body.toString().includes('42P05')));
    raw.send(bind('', 's1'), execute(''), sync());
    const third = await raw.until((f) => f.type === 'Z');
    assert.match(third.find((f) => f.type === 'D')?.body.toString('latin1') ?? '', /really_ran/);
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'really_ran'::text"));
    const executed = records.filter((r) => r.kind === 'execute');
    assert.equal(executed.length, 1);
    assert.equal(executed[0]?.sql, "select 'really_ran'::text");
    assert.equal(executed[0]?.statement, 's1');
    // The refused Parse is still recorded: it was sent.
    assert.equal(records.filter((r) => r.kind === 'parse').length, 2);
  });

  /** The text of the first DataRow among `frames`. */
  const firstRow = (frames: { type: string; body: Buffer }[]) =>
    frames.find((f) => f.type === 'D')?.body.toString('latin1') ?? '';

  test('a Parse the server skipped after an error (Flush, then more of the batch) never names what ran', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(parse('q', "select 'really_ran_1'::text"), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('bad', 'garbage here'), flush());
    await raw.until((f) => f.type === 'E');
    raw.send(parse('q', 'select 1 as harmless_1'), sync()); // skipped by the server
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('x', 'select 2'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(bind('', 'q'), execute(''), sync());
    assert.match(firstRow(await raw.until((f) => f.type === 'Z')), /really_ran_1/);
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'really_ran_1'::text"));
    const executed = records.filter((r) => r.kind === 'execute');
    assert.deepEqual(
      executed.map((r) => [r.statement, r.sql]),
      [['q', "select 'really_ran_1'::text"]],
    );
    const skippedParse = records.find((r) => r.kind === 'parse' && r.sql === 'select 1 as harmless_1');
    assert.equal(skippedParse?.skipped, true);
  });

  test('a Sync sent during COPY FROM STDIN does not put later Executes out of step', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(query('create temp table copy_sync_t(x int)'));
    await raw.until((f) => f.type === 'Z');
    raw.send(query('copy copy_sync_t from stdin'));
    await raw.until((f) => f.type === 'G');
    raw.send(sync(), frame('c', Buffer.alloc(0))); // the server ignores this Sync
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('q', 'select count(*) from no_such_table_harmless'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('q', "select 'really_ran_2'::text"), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('z', 'garbage here'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(bind('', 'q'), execute(''), sync());
    assert.match(firstRow(await raw.until((f) => f.type === 'Z')), /really_ran_2/);
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'really_ran_2'::text"));
    assert.deepEqual(
      records.filter((r) => r.kind === 'execute').map((r) => r.sql),
      ["select 'really_ran_2'::text"],
    );
  });

  test('COPY over the extended protocol (Execute, Sync, then the data) keeps Executes in step', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(query('create temp table copy_ext_t(x int)'));
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('', 'copy copy_ext_t from stdin'), bind('', ''), execute(''), sync());
    await raw.until((f) => f.type === 'G');
    raw.send(frame('d', Buffer.from('1\n2\n')), frame('c', Buffer.alloc(0)), sync());
    const done = await raw.until((f) => f.type === 'Z');
    assert.ok(done.some((f) => f.type === 'C' && f.body.toString('latin1').startsWith('COPY 2')));
    raw.send(parse('q', 'select count(*) from no_such_table_harmless_3'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('q', "select 'really_ran_3'::text"), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(bind('', 'q'), execute(''), sync());
    assert.match(firstRow(await raw.until((f) => f.type === 'Z')), /really_ran_3/);
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'really_ran_3'::text"));
    assert.deepEqual(
      records.filter((r) => r.kind === 'execute').map((r) => r.sql),
      ['copy copy_ext_t from stdin', "select 'really_ran_3'::text"],
    );
  });

  test("a portal re-declared as a cursor in SQL is recorded without SQL, not as the Bind's", async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(query('begin'));
    await raw.until((f) => f.type === 'Z');
    raw.send(parse('s1', "select 'harmless_4'::text"), bind('c', 's1'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(query("close c; declare c cursor for select 'really_ran_4'::text"));
    await raw.until((f) => f.type === 'Z');
    raw.send(execute('c'), sync());
    assert.match(firstRow(await raw.until((f) => f.type === 'Z')), /really_ran_4/);
    raw.send(query('commit'));
    await raw.until((f) => f.type === 'Z');
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'harmless_4'::text"));
    assert.deepEqual(
      records.filter((r) => r.kind === 'execute').map((r) => [r.portal, r.sql, r.sqlUnknown]),
      [['c', null, 'redefined_in_sql']],
    );
    assert.ok(records.some((r) => r.kind === 'query' && String(r.sql).includes('really_ran_4')));
  });

  test('after DEALLOCATE and PREPARE in SQL the Execute records the statement name and no SQL', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open();
    raw.send(parse('s2', 'select 1 as harmless_s2'), sync());
    await raw.until((f) => f.type === 'Z');
    raw.send(query("deallocate s2; prepare s2 as select 'swapped_ran'::text"));
    await raw.until((f) => f.type === 'Z');
    raw.send(bind('', 's2'), execute(''), sync());
    const got = await raw.until((f) => f.type === 'Z');
    assert.match(got.find((f) => f.type === 'D')?.body.toString('latin1') ?? '', /swapped_ran/);
    raw.close();

    const records = await sessionRecords(await sessionOf('select 1 as harmless_s2'));
    const executed = records.filter((r) => r.kind === 'execute');
    assert.deepEqual(
      executed.map((r) => [r.statement, r.sql, r.sqlUnknown]),
      [['s2', null, 'redefined_in_sql']],
    );
    // What did run is in the log: the Query that prepared it.
    assert.ok(records.some((r) => r.kind === 'query' && String(r.sql).includes('swapped_ran')));
  });

  test('a LATIN1 session: the records keep the bytes it sent, which rebuild what ran', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const raw = await open([['client_encoding', 'LATIN1']]);
    const sql = Buffer.from("select 'caf\u00e9' as latin1_marker", 'latin1');
    raw.send(frame('Q', Buffer.concat([sql, Buffer.from([0])])));
    const got = await raw.until((f) => f.type === 'Z');
    const row = got.find((f) => f.type === 'D');
    assert.ok(row, got.map((f) => f.type).join(''));
    // The server read é in LATIN1 and answers in it: one byte, 0xe9.
    assert.ok(row.body.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9])), row.body.toString('hex'));
    raw.close();

    const records = await sessionRecords(await sessionOf("select 'caf\ufffd' as latin1_marker"));
    const recorded = records.find((r) => r.kind === 'query');
    assert.ok(recorded);
    assert.deepEqual(Buffer.from(String(recorded.sqlBase64), 'base64'), sql);
    assert.equal(recorded.sqlByteLength, sql.length);
  });

  test('a 400 MB value streams through without the gateway holding it', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const size = 400_000_000;
    const raw = await open();
    // The client reads in pieces too (a FrameReader that streams), keeping nothing.
    const reader = new FrameReader({ phase: 'regular', maxMessageSize: 1 << 30 });
    reader.streamFramesAbove(1 << 16);
    const xs = Buffer.alloc(1 << 16, 'x');
    let valueBytes = 0;
    let wrong = 0;
    let rowLength = -1;
    let done = false;
    raw.socket.removeAllListeners('data');
    raw.socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      while (reader.next()) {
        if (!reader.continued && reader.type === 0x44) rowLength = reader.length;
        if (reader.type === 0x44) {
          // Count the value's bytes: after the header, the column count (2) and length (4).
          const from = reader.continued ? reader.offset : reader.bodyOffset + 6;
          for (let at = from; at < reader.end; at += xs.length) {
            const piece = reader.buffer.subarray(at, Math.min(reader.end, at + xs.length));
            if (piece.compare(xs, 0, piece.length) !== 0) wrong++;
            valueBytes += piece.length;
          }
        }
        if (!reader.continued && reader.type === 0x5a) done = true;
      }
    });
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 5);
    raw.send(query(`select repeat('x', ${size})`));
    while (!done) await sleep(20);
    clearInterval(sampler);
    raw.close();
    assert.equal(rowLength, 4 + 2 + 4 + size);
    assert.equal(valueBytes, size);
    assert.equal(wrong, 0);
    // Collected whole, the value was held at least once and copied once (833 MB before); streamed,
    // the gateway and this client hold pieces of it. A generous bound, far below the value's size.
    const grew = peak - before;
    t.diagnostic(`arrayBuffers grew by ${Math.round(grew / 1e6)} MB at most`);
    assert.ok(grew < size / 4, `arrayBuffers grew by ${grew} bytes`);
  });

  /** A TCP connection to the gateway, and everything it receives until it closes. */
  async function socketToGateway(): Promise<{ socket: Socket; closed: Promise<Buffer> }> {
    const socket = connect({ host: '127.0.0.1', port: gatewayPort() });
    socket.on('error', () => {});
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<Buffer>((resolve) =>
      socket.once('close', () => resolve(Buffer.concat(received))),
    );
    await new Promise((resolve) => socket.once('connect', resolve));
    return { socket, closed };
  }

  /** The SQLSTATE of the first ErrorResponse in `bytes` (a server stream after the startup). */
  function firstError(bytes: Buffer): string {
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(bytes);
    while (reader.next()) if (reader.type === 0x45) return sqlState(reader.body());
    return '';
  }

  test('before login a message above 64 KiB ends the connection from its header (08P01)', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const { socket, closed } = await socketToGateway();
    const header = Buffer.alloc(5);
    header.write('p', 0, 'latin1');
    header.writeInt32BE(1_040_000, 1); // below max_message_bytes (1 MiB), above the pre-login cap
    socket.write(Buffer.concat([encodeStartupMessage({ user: 'demo:alice', database: 'demo-db' }), header]));
    assert.equal(firstError(await closed), '08P01');
  });

  const throttledLogins = async () => {
    const metrics = await fetch(`${world.h.url}/metrics`).then((r) => r.text());
    return Number(/^portcullis_gateway_logins_total\{outcome="throttled"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  };

  test('logins in progress per address and connections in all are capped', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const connections = () => world.h.portcullis.gateway?.connectionCount ?? -1;
    while (connections() > 0) await sleep(20); // earlier tests' connections are gone
    // Three logins in progress from 127.0.0.1 (max_logins_per_address: 3): the fourth is refused.
    const parked = [await socketToGateway(), await socketToGateway(), await socketToGateway()];
    const fourth = await socketToGateway();
    assert.equal(firstError(await fourth.closed), '53300');
    assert.equal(await throttledLogins(), 1);
    // A login that ends frees its place.
    parked.pop()?.socket.destroy();
    while (connections() > 2) await sleep(20);
    const sessions = [await open(), await open()];
    // Admitted sessions do not count as logins in progress, but count as connections
    // (max_connections: 6): 2 parked + 2 sessions + 2 more parked; the next is closed unanswered.
    parked.push(await socketToGateway(), await socketToGateway());
    const beyond = await socketToGateway();
    assert.equal((await beyond.closed).length, 0);
    // Counted as throttled, not as refused or rejected logins: the fourth above, the second of the
    // two parked just now (a fourth login in progress again, answered 53300 and left open until the
    // client closes it), and this one.
    assert.equal(await throttledLogins(), 3);
    for (const { socket } of parked) socket.destroy();
    for (const session of sessions) session.close();
    while (connections() > 0) await sleep(20); // leave no login in progress to later tests
  });

  test('the startup parameters passed upstream are recorded with the session start', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const options = '-c search_path=pg_temp,public -c statement_timeout=1234';
    const raw = await open([
      ['application_name', 'startup-parameters'],
      ['options', options],
    ]);
    raw.send(query('show statement_timeout'));
    const got = await raw.until((f) => f.type === 'Z');
    assert.match(got.find((f) => f.type === 'D')?.body.toString('latin1') ?? '', /1234ms/);
    raw.close();
    const started = (await gatewayEvents(world.h, 'gateway.session_started')).filter(
      (e) =>
        (e.data.parameters as Record<string, string> | undefined)?.application_name === 'startup-parameters',
    );
    assert.equal(started.length, 1);
    assert.deepEqual(started[0]?.data.parameters, { application_name: 'startup-parameters', options });
  });
});
