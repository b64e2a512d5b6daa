/**
 * Micro-benchmark of the PostgreSQL wire codec alone (no sockets): how many frames a second the
 * framer finds in realistic streams, the hot path of the gateway. Not a test. Run with
 * `node --import tsx bench/gateway-codec-bench.ts` (GATEWAY_CODEC_BENCH_MS sets the time per case,
 * default 1500 ms).
 *
 * Cases:
 * - server → client result stream (RowDescription, small DataRows, CommandComplete, ReadyForQuery)
 *   cut into 64 KiB socket reads, so frames straddle chunks as they do on a real socket;
 * - client → server `Query` stream, one message per read (as `pgbench -S` sends them), framed and
 *   decoded for the audit log;
 * - extended protocol (Parse/Bind/Execute/Sync per read), framed and decoded.
 */
import { pathToFileURL } from 'node:url';
import {
  encodeBind,
  encodeCommandComplete,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeSync,
} from '../src/gateway/protocol/encode.js';
import { FrameReader } from '../src/gateway/protocol/frame-reader.js';
import { BackendMessage, FrontendMessage } from '../src/gateway/protocol/message-types.js';
import { decodeBind, decodeExecute, decodeParse, decodeQuery } from '../src/gateway/protocol/messages.js';

export interface CodecBenchFigures {
  readonly name: string;
  readonly frames: number;
  readonly seconds: number;
  readonly framesPerSecond: number;
  readonly megabytesPerSecond: number;
}

/** A DataRow of the given text columns. */
function dataRow(columns: readonly string[]): Buffer {
  const values = columns.map((column) => Buffer.from(column));
  const length = 4 + 2 + values.reduce((sum, value) => sum + 4 + value.length, 0);
  const frame = Buffer.alloc(1 + length);
  frame[0] = BackendMessage.DataRow;
  frame.writeInt32BE(length, 1);
  frame.writeInt16BE(values.length, 5);
  let pos = 7;
  for (const value of values) {
    frame.writeInt32BE(value.length, pos);
    value.copy(frame, pos + 4);
    pos += 4 + value.length;
  }
  return frame;
}

function rowDescription(columns: readonly string[]): Buffer {
  const fields = columns.map((column) => {
    const name = Buffer.from(`${column}\0`);
    const rest = Buffer.alloc(18);
    rest.writeUInt32BE(23, 6); // int4
    rest.writeInt16BE(4, 10);
    rest.writeInt32BE(-1, 12);
    return Buffer.concat([name, rest]);
  });
  const body = Buffer.concat([Buffer.from([0, columns.length]), ...fields]);
  const header = Buffer.alloc(5);
  header[0] = BackendMessage.RowDescription;
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

/** About 4 MiB of results: 50-row results of three small columns each, cut into 64 KiB reads. */
function resultStream(): { chunks: Buffer[]; frames: number } {
  const parts: Buffer[] = [];
  let frames = 0;
  let total = 0;
  for (let result = 0; total < 4 * 1024 * 1024; result++) {
    parts.push(rowDescription(['aid', 'bid', 'abalance']));
    for (let row = 0; row < 50; row++)
      parts.push(dataRow([String(result * 50 + row), String(row % 10), String((row * 7919) % 100_000)]));
    parts.push(encodeCommandComplete('SELECT 50'), encodeReadyForQuery('I'));
    frames += 53;
    total = parts.reduce((sum, part) => sum + part.length, 0);
  }
  const stream = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let start = 0; start < stream.length; start += 65_536)
    chunks.push(stream.subarray(start, start + 65_536));
  return { chunks, frames };
}

function measure(
  name: string,
  budgetMs: number,
  round: () => { frames: number; bytes: number },
): CodecBenchFigures {
  for (let i = 0; i < 20; i++) round(); // warm up the JIT
  let frames = 0;
  let bytes = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(budgetMs) * 1_000_000n;
  let now = started;
  while (now < deadline) {
    const done = round();
    frames += done.frames;
    bytes += done.bytes;
    now = process.hrtime.bigint();
  }
  const seconds = Number(now - started) / 1e9;
  return {
    name,
    frames,
    seconds,
    framesPerSecond: frames / seconds,
    megabytesPerSecond: bytes / seconds / 1024 / 1024,
  };
}

/** Runs every case for about `budgetMs` each. */
export function runGatewayCodecBench(budgetMs = 1500): CodecBenchFigures[] {
  const results = resultStream();
  const resultBytes = results.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  let sink = 0;

  const figures: CodecBenchFigures[] = [];
  figures.push(
    measure('results, 64 KiB reads: next() + type', budgetMs, () => {
      const reader = new FrameReader({ phase: 'regular' });
      let frames = 0;
      for (const chunk of results.chunks) {
        reader.push(chunk);
        while (reader.next()) {
          if (reader.type === BackendMessage.ReadyForQuery)
            sink += reader.buffer[reader.bodyOffset] as number;
          frames++;
        }
      }
      return { frames, bytes: resultBytes };
    }),
  );
  figures.push(
    measure('results, 64 KiB reads: frames() snapshots', budgetMs, () => {
      const reader = new FrameReader({ phase: 'regular' });
      let frames = 0;
      for (const chunk of results.chunks) {
        reader.push(chunk);
        for (const frame of reader.frames()) {
          sink += frame.type;
          frames++;
        }
      }
      return { frames, bytes: resultBytes };
    }),
  );

  const queries = Array.from({ length: 1000 }, (_, i) =>
    encodeQuery(`SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 100_000};`),
  );
  const queryBytes = queries.reduce((sum, query) => sum + query.length, 0);
  figures.push(
    measure('Query, one per read: next() only', budgetMs, () => {
      const reader = new FrameReader({ phase: 'regular' });
      for (const query of queries) {
        reader.push(query);
        while (reader.next()) sink += reader.length;
      }
      return { frames: queries.length, bytes: queryBytes };
    }),
  );
  figures.push(
    measure('Query, one per read: next() + decodeQuery', budgetMs, () => {
      const reader = new FrameReader({ phase: 'regular' });
      for (const query of queries) {
        reader.push(query);
        while (reader.next())
          if (reader.type === FrontendMessage.Query) sink += decodeQuery(reader.body()).sql.length;
      }
      return { frames: queries.length, bytes: queryBytes };
    }),
  );

  const extended = Array.from({ length: 1000 }, (_, i) =>
    Buffer.concat([
      encodeParse('', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1', [23]),
      encodeBind({ parameters: [String((i * 7919) % 100_000)] }),
      encodeExecute(),
      encodeSync(),
    ]),
  );
  const extendedBytes = extended.reduce((sum, message) => sum + message.length, 0);
  figures.push(
    measure('Parse/Bind/Execute/Sync per read: next() + decode', budgetMs, () => {
      const reader = new FrameReader({ phase: 'regular' });
      for (const chunk of extended) {
        reader.push(chunk);
        while (reader.next()) {
          switch (reader.type) {
            case FrontendMessage.Parse:
              sink += decodeParse(reader.body()).query.length;
              break;
            case FrontendMessage.Bind:
              sink += decodeBind(reader.body()).parameters.length;
              break;
            case FrontendMessage.Execute:
              sink += decodeExecute(reader.body()).maxRows;
              break;
          }
        }
      }
      return { frames: extended.length * 4, bytes: extendedBytes };
    }),
  );
  if (sink === -1) console.log(sink); // keep the work observable
  return figures;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const raw = process.env.GATEWAY_CODEC_BENCH_MS;
  const budgetMs = raw ? Number(raw) : 1500;
  if (!Number.isInteger(budgetMs) || budgetMs < 1)
    throw new Error('GATEWAY_CODEC_BENCH_MS must be a positive integer');
  console.log(`gateway codec (node ${process.version}, ${budgetMs} ms per case)`);
  for (const figure of runGatewayCodecBench(budgetMs)) {
    console.log(
      `  ${figure.name.padEnd(52)} ${(figure.framesPerSecond / 1e6).toFixed(2).padStart(6)} M frames/s` +
        `  ${figure.megabytesPerSecond.toFixed(0).padStart(5)} MiB/s`,
    );
  }
}
