/**
 * The codec against a real PostgreSQL with scram-sha-256: a raw TCP socket, our StartupMessage, our
 * SCRAM client, our framer reading every reply. Fails (does not skip) when CI=true and no cluster
 * can start.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ScramCluster, startScramClusterOrSkip } from '../../../test-support/scram-cluster.js';
import {
  encodeBind,
  encodeCancelRequest,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeSslRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
} from './encode.js';
import { FrameReader } from './frame-reader.js';
import { BackendMessage } from './message-types.js';
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeCommandComplete,
  decodeNoticeFields,
  decodeParameterStatus,
  decodeReadyForQuery,
} from './messages.js';
import { SCRAM_SHA_256, startScram } from './scram-client.js';

interface ReceivedFrame {
  readonly type: string;
  readonly body: Buffer;
}

/** A raw connection whose incoming bytes go through a FrameReader. */
class WireConnection {
  readonly #socket: Socket;
  readonly #reader = new FrameReader({ phase: 'regular' });
  readonly #frames: ReceivedFrame[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;
  #error: unknown;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
        while (this.#reader.next())
          this.#frames.push({ type: String.fromCharCode(this.#reader.type), body: this.#reader.body() });
      } catch (error) {
        this.#error = error;
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', (error) => {
      this.#error = error;
    });
  }

  static open(port: number): Promise<WireConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(new WireConnection(socket)));
      socket.once('error', reject);
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  write(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  async frame(timeoutMs = 10_000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.#frames.shift();
      if (frame) return frame;
      if (this.#error) throw this.#error;
      if (this.#closed) throw new Error('connection closed');
      const wait = deadline - Date.now();
      if (wait <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Frames up to and including the next one of `type`. */
  async until(type: string): Promise<ReceivedFrame[]> {
    const frames: ReceivedFrame[] = [];
    for (;;) {
      const frame = await this.frame();
      frames.push(frame);
      if (frame.type === type) return frames;
    }
  }

  /** Resolves with the first raw chunk (for the one-byte SSL response, which is not a frame). */
  static rawFirstChunk(port: number, send: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(send));
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        resolve(chunk);
      });
      socket.once('error', reject);
    });
  }

  close(): void {
    this.#socket.end(encodeTerminate());
  }
}

/** DataRow columns as UTF-8 text (null for NULL). */
function columns(row: Buffer): (string | null)[] {
  const values: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < row.readInt16BE(0); i++) {
    const length = row.readInt32BE(pos);
    pos += 4;
    values.push(length < 0 ? null : row.toString('utf8', pos, pos + length));
    pos += Math.max(length, 0);
  }
  return values;
}

function expectType(frame: ReceivedFrame, type: string): ReceivedFrame {
  if (frame.type === 'E') assert.fail(`server error: ${decodeNoticeFields(frame.body).message}`);
  assert.equal(frame.type, type);
  return frame;
}

describe('the codec against a real PostgreSQL (scram-sha-256)', async () => {
  const started = await startScramClusterOrSkip();
  let cluster: ScramCluster | undefined;
  let password = '';
  const skip = started.skip;

  before(() => {
    cluster = started.cluster;
    if (cluster) password = decodeURIComponent(new URL(cluster.adminUrl).password);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function login(withPassword: string): Promise<{
    connection: WireConnection;
    outcome: ReceivedFrame[];
    scramError?: unknown;
  }> {
    assert.ok(cluster);
    const connection = await WireConnection.open(cluster.port);
    connection.write(
      encodeStartupMessage({
        user: 'postgres',
        database: 'postgres',
        applicationName: 'portcullis-codec-test',
        parameters: { client_encoding: 'UTF8' },
      }),
    );
    const sasl = decodeAuthentication(expectType(await connection.frame(), 'R').body);
    assert.equal(sasl.kind, 'sasl');
    assert.ok(sasl.kind === 'sasl' && sasl.mechanisms.includes(SCRAM_SHA_256));
    const scram = startScram(withPassword);
    connection.write(encodeSaslInitialResponse(SCRAM_SHA_256, scram.clientFirstMessage));
    const serverFirst = decodeAuthentication(expectType(await connection.frame(), 'R').body);
    assert.equal(serverFirst.kind, 'sasl-continue');
    const final = await scram.next(serverFirst.kind === 'sasl-continue' ? serverFirst.data : '');
    connection.write(encodeSaslResponse(final.clientFinalMessage));
    const reply = await connection.frame();
    if (reply.type !== 'R') return { connection, outcome: [reply] };
    const serverFinal = decodeAuthentication(reply.body);
    assert.equal(serverFinal.kind, 'sasl-final');
    final.verify(serverFinal.kind === 'sasl-final' ? serverFinal.data : '');
    return { connection, outcome: await connection.until('Z') };
  }

  it('authenticates with SCRAM and reads the session start', { skip }, async () => {
    const { connection, outcome } = await login(password);
    const [ok, ...rest] = outcome;
    assert.ok(ok);
    assert.deepEqual(decodeAuthentication(ok.body), { kind: 'ok' });
    const statuses = new Map(
      rest
        .filter((frame) => frame.type === 'S')
        .map((frame) => {
          const { name, value } = decodeParameterStatus(frame.body);
          return [name, value] as const;
        }),
    );
    assert.equal(statuses.get('client_encoding'), 'UTF8');
    assert.equal(statuses.get('application_name'), 'portcullis-codec-test');
    assert.match(statuses.get('server_version') ?? '', /^\d+/);
    const keyData = rest.find((frame) => frame.type === 'K');
    assert.ok(keyData);
    assert.ok(decodeBackendKeyData(keyData.body).processId > 0);
    assert.deepEqual(decodeReadyForQuery((rest.at(-1) as ReceivedFrame).body), { status: 'I' });
    connection.close();
  });

  it('runs simple and extended queries and frames every reply', { skip }, async () => {
    const { connection } = await login(password);

    connection.write(encodeQuery("select 1 as one, 'é' as two; select generate_series(1, 1000)"));
    const simple = await connection.until('Z');
    const types = simple.map((frame) => frame.type).join('');
    assert.equal(types, `TDCT${'D'.repeat(1000)}CZ`);
    assert.equal(decodeCommandComplete((simple[2] as ReceivedFrame).body).tag, 'SELECT 1');
    assert.equal(decodeCommandComplete((simple.at(-2) as ReceivedFrame).body).tag, 'SELECT 1000');
    assert.deepEqual(columns((simple[1] as ReceivedFrame).body), ['1', 'é']);
    assert.deepEqual(columns((simple.at(-3) as ReceivedFrame).body), ['1000']);

    connection.write(
      Buffer.concat([
        encodeParse('s1', 'select $1::int + 1 as n, $2::text as t', [23, 25]),
        encodeBind({ statement: 's1', parameters: ['41', null] }),
        encodeExecute(),
        encodeSync(),
      ]),
    );
    const extended = await connection.until('Z');
    assert.deepEqual(
      extended.map((frame) => frame.type),
      ['1', '2', 'D', 'C', 'Z'],
    );
    assert.deepEqual(columns((extended[2] as ReceivedFrame).body), ['42', null]);

    connection.write(encodeQuery('select 1/0'));
    const failed = await connection.until('Z');
    const error = decodeNoticeFields((failed[0] as ReceivedFrame).body);
    assert.equal(error.code, '22012');
    assert.equal(error.severity, 'ERROR');
    connection.close();
  });

  it('reads a large row split across many TCP chunks', { skip }, async () => {
    const { connection } = await login(password);
    connection.write(encodeQuery("select repeat('x', 500000)"));
    const frames = await connection.until('Z');
    const row = frames.find((frame) => frame.type === 'D');
    assert.ok(row);
    assert.equal(row.body.readInt32BE(2), 500_000);
    connection.close();
  });

  it('is refused with 28P01 for a wrong password', { skip }, async () => {
    const { connection, outcome } = await login('not the password');
    const [error] = outcome;
    assert.ok(error);
    assert.equal(error.type, 'E');
    assert.equal(decodeNoticeFields(error.body).code, '28P01');
    connection.close();
  });

  it('cancels a running query with an encoded CancelRequest', { skip }, async () => {
    const { connection, outcome } = await login(password);
    const keyFrame = outcome.find(
      (frame) => frame.type === String.fromCharCode(BackendMessage.BackendKeyData),
    );
    assert.ok(keyFrame && cluster);
    const key = decodeBackendKeyData(keyFrame.body);
    connection.write(encodeQuery('select pg_sleep(30)'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await new Promise<void>((resolve, reject) => {
      const socket = connect((cluster as ScramCluster).port, '127.0.0.1', () =>
        socket.end(encodeCancelRequest(key.processId, key.secretKey)),
      );
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const frames = await connection.until('Z');
    // RowDescription comes before the query runs, then the cancellation error.
    const error = frames.find((frame) => frame.type === 'E');
    assert.ok(error);
    assert.equal(decodeNoticeFields(error.body).code, '57014');
    connection.close();
  });

  it("answers an encoded SSLRequest with one byte ('N' without TLS)", { skip }, async () => {
    assert.ok(cluster);
    const chunk = await WireConnection.rawFirstChunk(cluster.port, encodeSslRequest());
    assert.equal(chunk.toString('latin1'), 'N');
  });
});
