import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeAuthenticationSasl,
  encodeBind,
  encodeErrorResponse,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  encodeSslResponse,
  encodeStartupMessage,
} from './encode.js';
import { FrameReader } from './frame-reader.js';
import {
  decodeAuthentication,
  decodeBind,
  decodeDescribeOrClose,
  decodeEmpty,
  decodeExecute,
  decodeNoticeFields,
  decodeParse,
  decodeQuery,
  decodeReadyForQuery,
  decodeStartupPacket,
} from './messages.js';
import { ProtocolError } from './protocol-error.js';

/** Builds a body from parts: numbers are int32, strings are C strings, Buffers raw. */
function body(...parts: (number | string | Buffer | ['int16', number] | ['byte', number])[]): Buffer {
  return Buffer.concat(
    parts.map((part) => {
      if (typeof part === 'string') return Buffer.from(`${part}\0`);
      if (Buffer.isBuffer(part)) return part;
      const buf = Buffer.alloc(typeof part === 'number' ? 4 : part[0] === 'int16' ? 2 : 1);
      if (typeof part === 'number') buf.writeInt32BE(part);
      else if (part[0] === 'int16') buf.writeInt16BE(part[1]);
      else buf.writeUInt8(part[1]);
      return buf;
    }),
  );
}

function bodyOf(frame: Buffer, startup = false): Buffer {
  return frame.subarray(startup ? 4 : 5);
}

function malformed(fn: () => unknown, pattern: RegExp, code = 'malformed_message'): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('decodeStartupPacket', () => {
  it('decodes a StartupMessage with its parameters in order', () => {
    const packet = decodeStartupPacket(
      bodyOf(
        encodeStartupMessage({
          user: 'alice',
          database: 'orders',
          applicationName: 'psql',
          parameters: [['options', '-c search_path=x']],
        }),
        true,
      ),
    );
    assert.equal(packet.kind, 'startup');
    assert.ok(packet.kind === 'startup');
    assert.equal(packet.protocolVersion, 196608);
    assert.deepEqual(
      [...packet.parameters],
      [
        ['user', 'alice'],
        ['database', 'orders'],
        ['application_name', 'psql'],
        ['options', '-c search_path=x'],
      ],
    );
  });

  it('decodes SSLRequest, GSSENCRequest and CancelRequest', () => {
    assert.deepEqual(decodeStartupPacket(body(80877103)), { kind: 'ssl' });
    assert.deepEqual(decodeStartupPacket(body(80877104)), { kind: 'gssenc' });
    assert.deepEqual(decodeStartupPacket(body(80877102, 1234, Buffer.from([9, 8, 7, 6]))), {
      kind: 'cancel',
      processId: 1234,
      secretKey: Buffer.from([9, 8, 7, 6]),
    });
  });

  it('refuses malformed startup packets', () => {
    malformed(() => decodeStartupPacket(body(196608, 'user', 'alice')), /terminat/);
    malformed(() => decodeStartupPacket(body(196608, 'user', 'alice', '', 'x')), /terminating NUL/);
    malformed(() => decodeStartupPacket(Buffer.concat([body(196608), Buffer.from('user\0ali')])), /NUL/);
    malformed(() => decodeStartupPacket(body(196608, 'user', 'a', 'user', 'b', '')), /twice/);
    malformed(
      () => decodeStartupPacket(body(196608, 'a', '1', 'b', '2', ''), { maxParameters: 1 }),
      /more than 1/,
    );
    malformed(() => decodeStartupPacket(body(80877103, 0)), /unexpected bytes/);
    malformed(() => decodeStartupPacket(body(80877102, 1, Buffer.from([1, 2, 3]))), /secret key of 3 bytes/);
    malformed(() => decodeStartupPacket(Buffer.from([1, 2])), /request code/);
    malformed(
      () => decodeStartupPacket(body(131072, '')),
      /unsupported frontend protocol 2\.0/,
      'unsupported_protocol',
    );
  });
});

describe('frontend decoders', () => {
  it('Query needs its NUL as the last byte', () => {
    assert.deepEqual(decodeQuery(bodyOf(encodeQuery('select 1'))), {
      sql: 'select 1',
      sqlBytes: Buffer.from('select 1'),
    });
    malformed(() => decodeQuery(Buffer.from('select 1')), /not NUL-terminated/);
    malformed(() => decodeQuery(Buffer.from('select 1\0x')), /unexpected bytes/);
  });

  it('Parse refuses a parameter count larger than the body', () => {
    assert.deepEqual(decodeParse(bodyOf(encodeParse('s', 'select $1', [23]))), {
      statement: 's',
      query: 'select $1',
      queryBytes: Buffer.from('select $1'),
      parameterTypes: [23],
    });
    malformed(() => decodeParse(body('', 'q', ['int16', -1])), /count 65535 does not fit/);
    malformed(() => decodeParse(body('', 'q', ['int16', 2], 23)), /count 2 does not fit/);
  });

  it('Bind returns parameter values as views and checks every count and length', () => {
    const frame = encodeBind({
      portal: 'p',
      statement: 's',
      parameterFormats: [1],
      parameters: [Buffer.from([0, 0, 0, 7]), null, 'text'],
      resultFormats: [0, 1],
    });
    const decoded = decodeBind(bodyOf(frame));
    assert.deepEqual(decoded, {
      portal: 'p',
      statement: 's',
      parameterFormats: [1],
      parameters: [Buffer.from([0, 0, 0, 7]), null, Buffer.from('text')],
      resultFormats: [0, 1],
    });
    assert.equal(decoded.parameters[0]?.buffer, frame.buffer);

    malformed(
      () =>
        decodeBind(
          body('', '', ['int16', 2], ['int16', 0], ['int16', 0], ['int16', 1], 1, Buffer.from('x'), [
            'int16',
            0,
          ]),
        ),
      /2 parameter formats but 1 parameters/,
    );
    malformed(
      () => decodeBind(body('', '', ['int16', 0], ['int16', 1], 100, Buffer.from('x'))),
      /parameter 1 needs 100 bytes/,
    );
    malformed(
      () => decodeBind(body('', '', ['int16', 0], ['int16', 1], -2, ['int16', 0])),
      /invalid length -2/,
    );
    malformed(
      () => decodeBind(body('', '', ['int16', 1], ['int16', 2], ['int16', 0], ['int16', 0])),
      /unsupported parameter format code 2/,
    );
    malformed(() => decodeBind(body('', '', ['int16', 0], ['int16', 300], 1)), /count 300 does not fit/);
    malformed(
      () => decodeBind(body('', '', ['int16', 0], ['int16', 0])),
      /result format count needs 2 bytes/,
    );
  });

  it('Execute, Describe, Close and empty messages', () => {
    assert.deepEqual(decodeExecute(body('portal', 10)), { portal: 'portal', maxRows: 10 });
    malformed(() => decodeExecute(body('portal', ['int16', 1])), /row limit needs 4 bytes/);
    assert.deepEqual(decodeDescribeOrClose(body(['byte', 0x53], 'st'), 'Describe'), {
      target: 'S',
      name: 'st',
    });
    malformed(() => decodeDescribeOrClose(body(['byte', 0x51], 'st'), 'Close'), /target must be/);
    decodeEmpty(Buffer.alloc(0), 'Terminate');
    malformed(() => decodeEmpty(Buffer.alloc(1), 'Terminate'), /Terminate: 1 unexpected bytes/);
  });
});

describe('backend decoders', () => {
  it('Authentication requests', () => {
    assert.deepEqual(decodeAuthentication(bodyOf(encodeAuthenticationOk())), { kind: 'ok' });
    assert.deepEqual(decodeAuthentication(bodyOf(encodeAuthenticationCleartextPassword())), {
      kind: 'cleartext-password',
    });
    assert.deepEqual(
      decodeAuthentication(bodyOf(encodeAuthenticationSasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']))),
      {
        kind: 'sasl',
        mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
      },
    );
    assert.deepEqual(decodeAuthentication(body(7)), { kind: 'unsupported', code: 7 });
    malformed(() => decodeAuthentication(body(10, '')), /no SASL mechanism/);
    malformed(() => decodeAuthentication(body(10, 'SCRAM-SHA-256')), /mechanism is not NUL-terminated/);
    malformed(() => decodeAuthentication(body(5, ['int16', 1])), /salt needs 4 bytes/);
    malformed(() => decodeAuthentication(body(99)), /unknown authentication code 99/);
    malformed(() => decodeAuthentication(body(0, 0)), /unexpected bytes/);
  });

  it('ReadyForQuery status', () => {
    assert.deepEqual(decodeReadyForQuery(bodyOf(encodeReadyForQuery('T'))), { status: 'T' });
    malformed(() => decodeReadyForQuery(Buffer.from('X')), /unknown transaction status/);
    malformed(() => decodeReadyForQuery(Buffer.alloc(0)), /transaction status needs 1 bytes/);
  });

  it('ErrorResponse fields, from our encoder and as a server sends them', () => {
    const decoded = decodeNoticeFields(
      bodyOf(
        encodeErrorResponse({ severity: 'FATAL', code: '28000', message: 'no grant', hint: 'request one' }),
      ),
    );
    assert.equal(decoded.severity, 'FATAL');
    assert.equal(decoded.code, '28000');
    assert.equal(decoded.message, 'no grant');
    assert.equal(decoded.hint, 'request one');
    assert.equal(decoded.detail, undefined);
    const server = decodeNoticeFields(
      body(['byte', 0x53], 'ERREUR', ['byte', 0x43], '22012', ['byte', 0x4d], 'division par zéro', [
        'byte',
        0,
      ]),
    );
    assert.equal(server.severity, 'ERREUR');
    assert.equal(server.message, 'division par zéro');
    malformed(() => decodeNoticeFields(body(['byte', 0x53], 'ERROR')), /field code needs 1 bytes/);
  });
});

describe('encoders refuse what the protocol cannot carry', () => {
  it('refuses NULs, bad SQLSTATEs, duplicates and out-of-range integers', () => {
    const invalid = (fn: () => unknown) =>
      assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === 'invalid_value');
    invalid(() => encodeQuery('select 1\0; drop table x'));
    invalid(() => encodeErrorResponse({ severity: 'ERROR', code: '2800', message: 'x' }));
    invalid(() => encodeStartupMessage({ user: 'a', parameters: { user: 'b' } }));
    invalid(() => encodeParse('', 'q', [2 ** 32]));
    invalid(() => encodeBind({ parameters: new Array(70_000).fill(null) }));
  });

  it('answers SSLRequest with one byte', () => {
    assert.deepEqual(encodeSslResponse(true), Buffer.from('S'));
    assert.deepEqual(encodeSslResponse(false), Buffer.from('N'));
  });

  it('frames what it encodes', () => {
    const reader = new FrameReader({ phase: 'regular' });
    const frame = encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: 'the grant ended' });
    reader.push(frame);
    assert.equal(reader.next(), true);
    assert.equal(reader.end, frame.length);
  });
});
