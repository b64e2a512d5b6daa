import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeCancelRequest,
  encodeQuery,
  encodeSslRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
} from './encode.js';
import { type Frame, FrameReader } from './frame-reader.js';
import { FrontendMessage, StartupCode } from './message-types.js';
import { ProtocolError } from './protocol-error.js';

function bytesOf(frame: Frame): Buffer {
  return frame.buffer.subarray(frame.offset, frame.end);
}

function framesOf(reader: FrameReader): Frame[] {
  return [...reader.frames()];
}

function assertProtocolError(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ProtocolError && error.code === code);
}

describe('FrameReader', () => {
  it('returns whole frames of one chunk as views into that chunk, without copying', () => {
    const chunk = Buffer.concat([encodeQuery('select 1'), encodeSync(), encodeTerminate()]);
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(chunk);
    const frames = framesOf(reader);
    assert.deepEqual(
      frames.map((frame) => [String.fromCharCode(frame.type), frame.length, frame.offset, frame.end]),
      [
        ['Q', 13, 0, 14],
        ['S', 4, 14, 19],
        ['X', 4, 19, 24],
      ],
    );
    for (const frame of frames) assert.equal(frame.buffer, chunk);
    assert.equal(frames[0]?.bodyOffset, 5);
    assert.equal(reader.bufferedBytes, 0);
    reader.finish();
  });

  it('reassembles a frame split byte by byte and keeps only the partial tail', () => {
    const query = encodeQuery('select * from pg_class');
    const reader = new FrameReader({ phase: 'regular' });
    for (let i = 0; i < query.length - 1; i++) {
      reader.push(query.subarray(i, i + 1));
      assert.equal(reader.next(), false);
      assert.equal(reader.bufferedBytes, i + 1);
    }
    reader.push(query.subarray(query.length - 1));
    assert.equal(reader.next(), true);
    assert.equal(reader.type, FrontendMessage.Query);
    assert.deepEqual(reader.bytes(), query);
    assert.equal(reader.body().toString('latin1'), 'select * from pg_class\0');
    assert.equal(reader.next(), false);
    assert.equal(reader.bufferedBytes, 0);
  });

  it('a frame straddling two chunks is copied; the frames after it are views into the second chunk', () => {
    const a = encodeQuery('a');
    const b = encodeQuery('bb');
    const c = encodeQuery('ccc');
    const stream = Buffer.concat([a, b, c]);
    const split = a.length + 3;
    const first = stream.subarray(0, split);
    const second = stream.subarray(split);
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(first);
    assert.equal(reader.next(), true);
    assert.equal(reader.buffer, first);
    assert.equal(reader.next(), false);
    reader.push(second);
    assert.equal(reader.next(), true);
    assert.notEqual(reader.buffer, second);
    assert.deepEqual(reader.bytes(), b);
    assert.equal(reader.next(), true);
    assert.equal(reader.buffer, second);
    assert.deepEqual(reader.bytes(), c);
  });

  it('accepts pushes before the previous chunk is consumed', () => {
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(encodeSync());
    reader.push(encodeQuery('x'));
    reader.push(encodeTerminate());
    assert.deepEqual(
      framesOf(reader).map((frame) => String.fromCharCode(frame.type)),
      ['S', 'Q', 'X'],
    );
  });

  it('frames startup packets and switches to the regular phase after a StartupMessage', () => {
    const reader = new FrameReader();
    assert.equal(reader.phase, 'startup');
    reader.push(encodeSslRequest());
    assert.equal(reader.next(), true);
    assert.equal(reader.type, 0);
    assert.equal(reader.code, StartupCode.SSLRequest);
    assert.equal(reader.length, 8);
    assert.equal(reader.phase, 'startup');
    reader.push(Buffer.concat([encodeStartupMessage({ user: 'alice', database: 'db' }), encodeQuery('x')]));
    assert.equal(reader.next(), true);
    assert.equal(reader.code, StartupCode.Protocol3);
    assert.equal(reader.bodyOffset, 4);
    assert.equal(reader.phase, 'regular');
    assert.equal(reader.next(), true);
    assert.equal(reader.type, FrontendMessage.Query);
  });

  it('keeps the startup phase after a CancelRequest', () => {
    const reader = new FrameReader();
    reader.push(encodeCancelRequest(42, Buffer.from([1, 2, 3, 4])));
    assert.equal(reader.next(), true);
    assert.equal(reader.code, StartupCode.CancelRequest);
    assert.equal(reader.length, 16);
    assert.equal(reader.phase, 'startup');
  });

  it('refuses a length below the minimum', () => {
    const regular = new FrameReader({ phase: 'regular' });
    regular.push(Buffer.from([0x51, 0, 0, 0, 3]));
    assertProtocolError(() => regular.next(), 'malformed_length');
    const negative = new FrameReader({ phase: 'regular' });
    negative.push(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]));
    assertProtocolError(() => negative.next(), 'malformed_length');
    const startup = new FrameReader();
    startup.push(Buffer.from([0, 0, 0, 7, 0, 0, 0]));
    assertProtocolError(() => startup.next(), 'malformed_length');
  });

  it('refuses an oversized message from its header alone and stays failed', () => {
    const reader = new FrameReader({ phase: 'regular', maxMessageSize: 100 });
    const header = Buffer.from([0x51, 0, 0, 0, 100]); // 101 bytes with the type byte
    reader.push(header.subarray(0, 2));
    assert.equal(reader.next(), false);
    reader.push(header.subarray(2));
    assertProtocolError(() => reader.next(), 'message_too_large');
    assertProtocolError(() => reader.push(Buffer.alloc(1)), 'message_too_large');
    assertProtocolError(() => reader.next(), 'message_too_large');
    const exact = new FrameReader({ phase: 'regular', maxMessageSize: 100 });
    exact.push(Buffer.concat([Buffer.from([0x51, 0, 0, 0, 99]), Buffer.alloc(95)]));
    assert.equal(exact.next(), true);
  });

  it('refuses a startup packet over 10 000 bytes, e.g. an HTTP request', () => {
    const reader = new FrameReader();
    reader.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assertProtocolError(() => reader.next(), 'message_too_large');
  });

  it('reports a stream that ends inside a message', () => {
    const reader = new FrameReader({ phase: 'regular' });
    reader.push(encodeQuery('select 1').subarray(0, 7));
    assert.equal(reader.next(), false);
    assertProtocolError(() => reader.finish(), 'unexpected_eof');
  });

  it('views stay intact after later pushes', () => {
    const reader = new FrameReader({ phase: 'regular' });
    const query = encodeQuery('select 42');
    reader.push(query.subarray(0, 6));
    reader.next();
    reader.push(query.subarray(6));
    assert.equal(reader.next(), true);
    const kept = reader.bytes();
    reader.push(encodeQuery('something else entirely'));
    reader.next();
    assert.deepEqual(kept, query);
  });

  it('takeUnframed hands back a partial frame and unread chunks in order, then frames anew', () => {
    const reader = new FrameReader({ phase: 'regular' });
    const first = encodeQuery('select 1');
    const second = encodeQuery('select 2');
    const third = encodeSync();
    reader.push(Buffer.concat([first, second.subarray(0, 3)]));
    reader.push(second.subarray(3, 7));
    assert.equal(reader.next(), true);
    assert.deepEqual(reader.bytes(), first);
    assert.equal(reader.next(), false, 'the second frame is still partial');
    reader.push(second.subarray(7));
    reader.push(third);
    assert.deepEqual(reader.takeUnframed(), Buffer.concat([second, third]));
    assert.equal(reader.bufferedBytes, 0);
    assert.equal(reader.next(), false);
    assert.deepEqual(reader.takeUnframed(), Buffer.alloc(0));
    reader.push(third);
    assert.equal(reader.next(), true);
    assert.equal(reader.type, FrontendMessage.Sync);
  });
});
