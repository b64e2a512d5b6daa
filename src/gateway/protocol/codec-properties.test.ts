/**
 * Property tests over the codec (fast-check): round trips for every message type through arbitrary
 * chunk splits, split invariance of the framer on arbitrary streams, garbage never escaping as
 * anything but ProtocolError, and oversized declarations refused from the header alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as encode from './encode.js';
import { FrameReader, type FrameReaderOptions } from './frame-reader.js';
import * as decode from './messages.js';
import { ProtocolError } from './protocol-error.js';

const runs = Number(process.env.FC_RUNS ?? 300);

/** Any Unicode text without NUL (a lone surrogate would not survive UTF-8, as in PostgreSQL). */
const text = fc.string({ unit: 'binary', maxLength: 40 }).map((value) => value.replaceAll('\0', ''));
const name = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 12 })
  .map((value) => value.replaceAll('\0', '_'));
const bytes = fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array));
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const format = fc.constantFrom<decode.FormatCode>(0, 1);
const cancelKey = fc.uint8Array({ minLength: 4, maxLength: 256 }).map((array) => Buffer.from(array));

/** fc.record, with plain objects (its null-prototype objects fail deepStrictEqual). */
const record: typeof fc.record = ((model: never, constraints?: never) =>
  fc.record(model, constraints).map((value) => ({ ...(value as object) }))) as never;

interface Case {
  readonly frame: Buffer;
  readonly decode: (body: Buffer) => unknown;
  readonly expected: unknown;
}

const regularCases: fc.Arbitrary<Case>[] = [
  text.map((sql) => ({
    frame: encode.encodeQuery(sql),
    decode: decode.decodeQuery,
    expected: { sql, sqlBytes: Buffer.from(sql) },
  })),
  record({
    statement: text,
    query: text,
    parameterTypes: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 8 }),
  }).map((parse) => ({
    frame: encode.encodeParse(parse.statement, parse.query, parse.parameterTypes),
    decode: decode.decodeParse,
    expected: {
      statement: parse.statement,
      query: parse.query,
      queryBytes: Buffer.from(parse.query),
      parameterTypes: parse.parameterTypes,
    },
  })),
  record({
    portal: text,
    statement: text,
    parameters: fc.array(fc.option(bytes, { nil: null }), { maxLength: 6 }),
    formatShape: fc.constantFrom('none', 'one', 'each'),
    formats: fc.array(format, { minLength: 6, maxLength: 6 }),
    resultFormats: fc.array(format, { maxLength: 5 }),
  }).map((bind) => {
    const parameterFormats =
      bind.formatShape === 'none'
        ? []
        : bind.formatShape === 'one'
          ? bind.formats.slice(0, 1)
          : bind.formats.slice(0, bind.parameters.length);
    const fields = { ...bind, parameterFormats };
    return {
      frame: encode.encodeBind(fields),
      decode: decode.decodeBind,
      expected: {
        portal: bind.portal,
        statement: bind.statement,
        parameterFormats,
        parameters: bind.parameters,
        resultFormats: bind.resultFormats,
      },
    };
  }),
  record({
    functionOid: fc.nat({ max: 2 ** 32 - 1 }),
    arguments: fc.array(fc.option(bytes, { nil: null }), { maxLength: 6 }),
    formatShape: fc.constantFrom('none', 'one', 'each'),
    formats: fc.array(format, { minLength: 6, maxLength: 6 }),
    resultFormat: format,
  }).map((call) => {
    const argumentFormats =
      call.formatShape === 'none'
        ? []
        : call.formatShape === 'one'
          ? call.formats.slice(0, 1)
          : call.formats.slice(0, call.arguments.length);
    const expected = {
      functionOid: call.functionOid,
      argumentFormats,
      arguments: call.arguments,
      resultFormat: call.resultFormat,
    };
    return { frame: encode.encodeFunctionCall(expected), decode: decode.decodeFunctionCall, expected };
  }),
  record({ portal: text, maxRows: int32 }).map((execute) => ({
    frame: encode.encodeExecute(execute.portal, execute.maxRows),
    decode: decode.decodeExecute,
    expected: execute,
  })),
  fc.constant({
    frame: encode.encodeTerminate(),
    decode: (b: Buffer) => decode.decodeEmpty(b, 'Terminate'),
    expected: undefined,
  }),
  fc.constant({
    frame: encode.encodeSync(),
    decode: (b: Buffer) => decode.decodeEmpty(b, 'Sync'),
    expected: undefined,
  }),
  text.map((password) => ({
    frame: encode.encodePasswordMessage(password),
    decode: decode.decodePasswordMessage,
    expected: { password },
  })),
  record({ mechanism: text, data: fc.option(bytes, { nil: null }) }).map((initial) => ({
    frame: encode.encodeSaslInitialResponse(initial.mechanism, initial.data),
    decode: decode.decodeSaslInitialResponse,
    expected: initial,
  })),
  bytes.map((data) => ({
    frame: encode.encodeSaslResponse(data),
    decode: decode.decodeSaslResponse,
    expected: { data },
  })),
  fc.constant({
    frame: encode.encodeAuthenticationOk(),
    decode: decode.decodeAuthentication,
    expected: { kind: 'ok' },
  }),
  fc.constant({
    frame: encode.encodeAuthenticationCleartextPassword(),
    decode: decode.decodeAuthentication,
    expected: { kind: 'cleartext-password' },
  }),
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((salt) => ({
    frame: encode.encodeAuthenticationMd5Password(salt),
    decode: decode.decodeAuthentication,
    expected: { kind: 'md5-password', salt: Buffer.from(salt) },
  })),
  fc.array(name, { minLength: 1, maxLength: 4 }).map((mechanisms) => ({
    frame: encode.encodeAuthenticationSasl(mechanisms),
    decode: decode.decodeAuthentication,
    expected: { kind: 'sasl', mechanisms },
  })),
  bytes.map((data) => ({
    frame: encode.encodeAuthenticationSaslContinue(data),
    decode: decode.decodeAuthentication,
    expected: { kind: 'sasl-continue', data },
  })),
  bytes.map((data) => ({
    frame: encode.encodeAuthenticationSaslFinal(data),
    decode: decode.decodeAuthentication,
    expected: { kind: 'sasl-final', data },
  })),
  record({ name: text, value: text }).map((status) => ({
    frame: encode.encodeParameterStatus(status.name, status.value),
    decode: decode.decodeParameterStatus,
    expected: status,
  })),
  record({ processId: int32, secretKey: cancelKey }).map((key) => ({
    frame: encode.encodeBackendKeyData(key.processId, key.secretKey),
    decode: decode.decodeBackendKeyData,
    expected: key,
  })),
  fc.constantFrom<decode.TransactionStatus>('I', 'T', 'E').map((status) => ({
    frame: encode.encodeReadyForQuery(status),
    decode: decode.decodeReadyForQuery,
    expected: { status },
  })),
  record(
    {
      severity: fc.constantFrom('FATAL', 'ERROR', 'WARNING', 'NOTICE') as fc.Arbitrary<
        encode.ErrorFields['severity']
      >,
      code: fc.stringMatching(/^[0-9A-Z]{5}$/),
      message: text,
      detail: text,
      hint: text,
    },
    { requiredKeys: ['severity', 'code', 'message'] },
  ).chain((fields) =>
    fc.boolean().map((notice) => ({
      frame: notice ? encode.encodeNoticeResponse(fields) : encode.encodeErrorResponse(fields),
      decode: (body: Buffer) => {
        const { fields: _all, ...named } = decode.decodeNoticeFields(body);
        return named;
      },
      expected: fields,
    })),
  ),
  text.map((tag) => ({
    frame: encode.encodeCommandComplete(tag),
    decode: decode.decodeCommandComplete,
    expected: { tag },
  })),
];

const startupCases: fc.Arbitrary<Case>[] = [
  record({
    user: text,
    database: fc.option(text, { nil: undefined }),
    applicationName: fc.option(text, { nil: undefined }),
    extra: fc.uniqueArray(fc.tuple(name, text), { maxLength: 5, selector: ([key]) => key }),
  })
    .filter(({ extra }) => extra.every(([key]) => !['user', 'database', 'application_name'].includes(key)))
    .map((startup) => {
      const expected = new Map<string, string>([['user', startup.user]]);
      if (startup.database !== undefined) expected.set('database', startup.database);
      if (startup.applicationName !== undefined) expected.set('application_name', startup.applicationName);
      for (const [key, value] of startup.extra) expected.set(key, value);
      return {
        frame: encode.encodeStartupMessage({ ...startup, parameters: startup.extra }),
        decode: (body: Buffer) => decode.decodeStartupPacket(body),
        expected: { kind: 'startup', protocolVersion: 196608, parameters: expected },
      };
    }),
  record({ processId: int32, secretKey: cancelKey }).map((key) => ({
    frame: encode.encodeCancelRequest(key.processId, key.secretKey),
    decode: (body: Buffer) => decode.decodeStartupPacket(body),
    expected: { kind: 'cancel', ...key },
  })),
  fc.constant({
    frame: encode.encodeSslRequest(),
    decode: (body: Buffer) => decode.decodeStartupPacket(body),
    expected: { kind: 'ssl' },
  }),
];

/** Split points for a buffer: sorted distinct offsets strictly inside it. */
function splitAt(buffer: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(buffer.subarray(start, point));
    start = point;
  }
  chunks.push(buffer.subarray(start));
  return chunks;
}

const cuts = fc.array(fc.nat(), { maxLength: 12 });

interface Outcome {
  readonly frames: string[];
  readonly error?: string;
  readonly buffered: number;
}

/** Frames a stream pushed as `chunks`, draining after every push as a proxy would. */
function frameAll(chunks: readonly Buffer[], options: FrameReaderOptions): Outcome {
  const reader = new FrameReader(options);
  const frames: string[] = [];
  try {
    for (const chunk of chunks) {
      reader.push(chunk);
      while (reader.next())
        frames.push(`${reader.type}/${reader.code}/${reader.length}/${reader.bytes().toString('hex')}`);
    }
    return { frames, buffered: reader.bufferedBytes };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { frames, error: error.code, buffered: -1 };
  }
}

describe('codec properties', () => {
  it('encode → frame (split anywhere) → decode round-trips every regular message', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(...regularCases), { minLength: 1, maxLength: 12 }),
        cuts,
        (cases, cutPoints) => {
          const reader = new FrameReader({ phase: 'regular' });
          const decoded: unknown[] = [];
          for (const chunk of splitAt(Buffer.concat(cases.map((c) => c.frame)), cutPoints)) {
            reader.push(chunk);
            while (reader.next()) decoded.push((cases[decoded.length] as Case).decode(reader.body()));
          }
          reader.finish();
          assert.deepStrictEqual(
            decoded,
            cases.map((c) => c.expected),
          );
        },
      ),
      { numRuns: runs },
    );
  });

  it('encode → frame (split anywhere) → decode round-trips every startup packet', () => {
    fc.assert(
      fc.property(fc.oneof(...startupCases), cuts, (c, cutPoints) => {
        const reader = new FrameReader();
        const decoded: unknown[] = [];
        for (const chunk of splitAt(c.frame, cutPoints)) {
          reader.push(chunk);
          while (reader.next()) decoded.push(c.decode(reader.body()));
        }
        assert.deepStrictEqual(decoded, [c.expected]);
      }),
      { numRuns: runs },
    );
  });

  // Streams of plausible frames (random type and body, true length) with occasional corruption.
  const plausibleStream = fc
    .array(
      fc.oneof(
        {
          weight: 8,
          arbitrary: fc.tuple(fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 80 })).map(([type, body]) => {
            const frame = Buffer.alloc(5 + body.length);
            frame[0] = type;
            frame.writeInt32BE(4 + body.length, 1);
            frame.set(body, 5);
            return frame;
          }),
        },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((array) => Buffer.from(array)) },
      ),
      { maxLength: 20 },
    )
    .map((parts) => Buffer.concat(parts));

  it('a stream split at arbitrary points frames exactly as one big push', () => {
    const anyStream = fc.oneof(
      plausibleStream,
      fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array)),
    );
    fc.assert(
      fc.property(
        anyStream,
        cuts,
        fc.constantFrom<FrameReaderOptions>(
          { phase: 'regular', maxMessageSize: 64 },
          { phase: 'regular' },
          { phase: 'startup' },
        ),
        (stream, cutPoints, options) => {
          assert.deepStrictEqual(frameAll(splitAt(stream, cutPoints), options), frameAll([stream], options));
        },
      ),
      { numRuns: runs * 3 },
    );
  });

  it('a streamed stream (frames above a size in pieces) carries the same frames, bytes and boundaries', () => {
    fc.assert(
      fc.property(plausibleStream, cuts, fc.integer({ min: 5, max: 60 }), (stream, cutPoints, above) => {
        const options: FrameReaderOptions = { phase: 'regular', maxMessageSize: 1 << 20 };
        const reader = new FrameReader(options);
        reader.streamFramesAbove(above);
        const frames: string[] = [];
        let error: string | undefined;
        let current: Buffer[] = [];
        let type = 0;
        let length = 0;
        try {
          for (const chunk of splitAt(stream, cutPoints)) {
            reader.push(chunk);
            while (reader.next()) {
              if (!reader.continued) {
                assert.equal(current.length, 0, 'a new frame began inside a streamed one');
                type = reader.type;
                length = reader.length;
              } else assert.equal(reader.type, type);
              current.push(Buffer.from(reader.buffer.subarray(reader.offset, reader.end)));
              if (!reader.inFrame) {
                frames.push(`${type}/0/${length}/${Buffer.concat(current).toString('hex')}`);
                current = [];
              }
            }
          }
        } catch (caught) {
          if (!(caught instanceof ProtocolError)) throw caught;
          error = caught.code;
        }
        const whole = frameAll([stream], options);
        assert.deepStrictEqual(frames, whole.frames);
        assert.equal(error, whole.error);
      }),
      { numRuns: runs * 3 },
    );
  });

  // A decoder that loops forever fails this by the test's timeout. There is no per-call time bound:
  // under a loaded machine a GC pause or the scheduler made one of the 900 cases exceed a second.
  it('garbage never throws anything but ProtocolError, and every call returns', { timeout: 120_000 }, () => {
    const decoders: ((body: Buffer) => unknown)[] = [
      (body) => decode.decodeStartupPacket(body, { maxParameters: 8 }),
      decode.decodePasswordMessage,
      decode.decodeSaslInitialResponse,
      decode.decodeQuery,
      decode.decodeParse,
      decode.decodeBind,
      decode.decodeExecute,
      decode.decodeFunctionCall,
      (body) => decode.decodeDescribeOrClose(body, 'Describe'),
      (body) => decode.decodeEmpty(body, 'Terminate'),
      decode.decodeAuthentication,
      decode.decodeParameterStatus,
      decode.decodeBackendKeyData,
      decode.decodeReadyForQuery,
      decode.decodeNoticeFields,
      decode.decodeCommandComplete,
      decode.decodeNegotiateProtocolVersion,
    ];
    // Garbage biased towards small counts, zeros and NULs, where bounds bugs live.
    const garbage = fc
      .array(fc.oneof(fc.nat({ max: 255 }), fc.constant(0), fc.constant(255), fc.constant(1)), {
        maxLength: 200,
      })
      .map((values) => Buffer.from(values));
    fc.assert(
      fc.property(garbage, cuts, (body, cutPoints) => {
        for (const decoder of decoders) {
          try {
            decoder(body);
          } catch (error) {
            assert.ok(error instanceof ProtocolError, `not a ProtocolError: ${String(error)}`);
          }
        }
        for (const phase of ['startup', 'regular'] as const) frameAll(splitAt(body, cutPoints), { phase });
      }),
      { numRuns: runs * 3 },
    );
  });

  it('refuses a declared length beyond the cap from the header alone, byte by byte', () => {
    const oversized = fc.oneof(
      // Regular phase: cap in bytes including the type byte, so a length field ≥ cap is too large.
      fc
        .tuple(fc.integer({ min: 5, max: 2 ** 21 }), fc.nat(), fc.nat({ max: 255 }))
        .map(([cap, excess, type]) => {
          const header = Buffer.alloc(5);
          header[0] = type;
          header.writeInt32BE(Math.min(2 ** 31 - 1, cap + (excess % 2 ** 30)), 1);
          return { options: { phase: 'regular', maxMessageSize: cap } as FrameReaderOptions, header };
        }),
      fc.tuple(fc.integer({ min: 8, max: 10_000 }), fc.nat()).map(([cap, excess]) => {
        const header = Buffer.alloc(4);
        header.writeInt32BE(Math.min(2 ** 31 - 1, cap + 1 + (excess % 2 ** 30)));
        return { options: { phase: 'startup', maxStartupSize: cap } as FrameReaderOptions, header };
      }),
    );
    fc.assert(
      fc.property(oversized, ({ options, header }) => {
        const reader = new FrameReader(options);
        for (let i = 0; i < header.length - 1; i++) {
          reader.push(header.subarray(i, i + 1));
          assert.equal(reader.next(), false);
        }
        reader.push(header.subarray(header.length - 1));
        assert.equal(reader.bufferedBytes, header.length);
        assert.throws(
          () => reader.next(),
          (error: unknown) => error instanceof ProtocolError && error.code === 'message_too_large',
        );
      }),
      { numRuns: runs },
    );
  });

  it('accepts a frame of exactly the cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 4096 }), cuts, (maxMessageSize, cutPoints) => {
        const frame = Buffer.alloc(maxMessageSize);
        frame[0] = 0x64;
        frame.writeInt32BE(maxMessageSize - 1, 1);
        const outcome = frameAll(splitAt(frame, cutPoints), { phase: 'regular', maxMessageSize });
        assert.equal(outcome.error, undefined);
        assert.equal(outcome.frames.length, 1);
      }),
      { numRuns: runs / 3 },
    );
  });
});
