/**
 * An incremental framer for one direction of a PostgreSQL connection: bytes go in with
 * {@link FrameReader.push}, complete frames come out of {@link FrameReader.next} as headers (type,
 * length, offsets) without parsing any body, so the proxy can forward the bytes untouched.
 *
 * Two phases:
 * - `startup`: `int32 length` (including itself) then `int32 code`, no type byte: StartupMessage
 *   (protocol 3.x), SSLRequest, GSSENCRequest, CancelRequest. At most `maxStartupSize` bytes
 *   (default 10 000, PostgreSQL's own limit). After a protocol-3 StartupMessage the reader switches to
 *   `regular` by itself; after SSLRequest, GSSENCRequest or CancelRequest it stays in `startup`.
 * - `regular`: `byte type`, `int32 length` (including itself, excluding the type byte). A frame
 *   (type byte included) may be at most `maxMessageSize` bytes (default 1 MiB).
 *
 * Lengths are checked as soon as the header has arrived, before anything beyond the header is kept:
 * a length below the minimum or negative is `malformed_length`, one above the cap `message_too_large`.
 * After an error the reader is dead: every later call throws the same error.
 *
 * ## Ownership of the bytes
 * - `push(chunk)` takes the chunk: the caller must not modify it afterwards (a Node socket's `data`
 *   chunks are fresh buffers, so forwarding them as they come is fine).
 * - A frame is returned as `buffer` + offsets. When a chunk holds the whole frame, `buffer` *is* that
 *   chunk (no copy); a frame split across chunks is concatenated once into a new buffer of exactly its
 *   size. The reader never writes into a buffer it has handed out, so views (`buffer.subarray(offset,
 *   end)`, {@link FrameReader.body}, and the Buffers that decoders return from them) stay valid as long
 *   as the caller holds them, e.g. while a socket write is queued.
 * - The header fields (`type`, `offset`, …) describe the current frame only: they change on the next
 *   call of `next()`. Take {@link FrameReader.frame} for a snapshot that outlives it.
 * - Consecutive frames in the same `buffer` are adjacent (`end` of one is `offset` of the next), so the
 *   proxy can forward a run of frames with one write.
 *
 * ## Streaming large frames
 * With {@link FrameReader.streamFramesAbove} set, a regular frame larger than that which is not
 * already whole in one chunk is not collected: `next()` returns it in pieces as its bytes arrive,
 * so a proxy forwards a 400 MB DataRow without holding it. The first piece starts with the header
 * (`type`, `length` and `bodyOffset` as usual, `end` where the bytes available end); later pieces
 * have {@link FrameReader.continued} set (`offset` = `bodyOffset`, `type` still the frame's), and
 * {@link FrameReader.inFrame} stays true until the piece that ends the frame was returned — only
 * then is the stream at a message boundary. The body of a streamed frame cannot be decoded.
 *
 * @example
 * const reader = new FrameReader({ phase: 'regular' });
 * socket.on('data', (chunk) => {
 *   reader.push(chunk);
 *   while (reader.next()) {
 *     if (reader.type === FrontendMessage.Query) audit(decodeQuery(reader.body()).sql);
 *     upstream.write(reader.buffer.subarray(reader.offset, reader.end));
 *   }
 * });
 * socket.on('end', () => reader.finish()); // throws unexpected_eof inside a message
 */
import { StartupCode } from './message-types.js';
import { ProtocolError } from './protocol-error.js';

/** Default cap on one regular-phase frame, type byte and length included: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** Cap on a startup packet, as in PostgreSQL (`MAX_STARTUP_PACKET_LENGTH`). */
export const MAX_STARTUP_PACKET_SIZE = 10_000;

export type FramePhase = 'startup' | 'regular';

export interface FrameReaderOptions {
  /** Starting phase: `startup` for the client side of a new connection (default), `regular` otherwise. */
  readonly phase?: FramePhase;
  /** Largest regular frame in bytes, type byte and length included (default 1 MiB, at least 5). */
  readonly maxMessageSize?: number;
  /** Largest startup packet in bytes (default and at most 10 000, at least 8). */
  readonly maxStartupSize?: number;
}

/** One complete frame, as offsets into `buffer`. */
export interface Frame {
  /** The type byte (e.g. 0x51 for Query); 0 for a startup-phase packet. */
  readonly type: number;
  /** Startup phase: the int32 request code (196608, 80877103, …); regular phase: 0. */
  readonly code: number;
  /** The declared length: includes the length field itself, excludes the type byte. */
  readonly length: number;
  /** The bytes the frame lives in (see the ownership rules in the module documentation). */
  readonly buffer: Buffer;
  /** First byte of the frame in `buffer` (the type byte, or the length of a startup packet). */
  readonly offset: number;
  /** First byte after the length field: the body of a regular frame, the request code of a startup packet. */
  readonly bodyOffset: number;
  /** One past the last byte of the frame. */
  readonly end: number;
}

const EMPTY = Buffer.alloc(0);

/** Incremental framer; see the module documentation for phases, caps and ownership of the bytes. */
export class FrameReader implements Frame {
  #phase: FramePhase;
  #maxMessageSize: number;
  readonly #maxStartupSize: number;

  // Input: the chunk being read, the read position in it, and chunks pushed before it was used up.
  #chunk: Buffer = EMPTY;
  #pos = 0;
  #queue: Buffer[] = [];
  #buffered = 0;

  // A frame split across chunks: its pieces so far (views), their size, and its total size once known.
  #pieces: Buffer[] = [];
  #pieceBytes = 0;
  #pieceTotal = -1;

  #failure: ProtocolError | undefined;

  // Streaming: frames above this size are returned in pieces; bytes of the current one still to come.
  #streamAbove = Number.POSITIVE_INFINITY;
  #streamLeft = 0;
  #continued = false;

  // The current frame.
  #type = 0;
  #code = 0;
  #length = 0;
  #buffer: Buffer = EMPTY;
  #offset = 0;
  #bodyOffset = 0;
  #end = 0;

  constructor(options: FrameReaderOptions = {}) {
    this.#phase = options.phase ?? 'startup';
    const maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const maxStartupSize = options.maxStartupSize ?? MAX_STARTUP_PACKET_SIZE;
    if (!Number.isInteger(maxMessageSize) || maxMessageSize < 5 || maxMessageSize > 0x7fffffff)
      throw new RangeError(`maxMessageSize must be an integer from 5 to 2^31-1, not ${maxMessageSize}`);
    if (!Number.isInteger(maxStartupSize) || maxStartupSize < 8 || maxStartupSize > MAX_STARTUP_PACKET_SIZE)
      throw new RangeError(`maxStartupSize must be an integer from 8 to 10000, not ${maxStartupSize}`);
    this.#maxMessageSize = maxMessageSize;
    this.#maxStartupSize = maxStartupSize;
  }

  get phase(): FramePhase {
    return this.#phase;
  }

  /**
   * Switches the phase for the bytes not yet framed (e.g. `regular` for the server direction after
   * the proxy's own StartupMessage). Throws while inside a partial frame.
   */
  setPhase(phase: FramePhase): void {
    if (this.#pieces.length > 0 || this.#streamLeft > 0)
      throw new Error('cannot change the phase inside a partial frame');
    this.#phase = phase;
  }

  /**
   * Changes the cap on regular frames whose header has not been read yet (e.g. raised once a
   * client is logged in, after a tighter cap on what it may send before).
   */
  setMaxMessageSize(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 5 || bytes > 0x7fffffff)
      throw new RangeError(`maxMessageSize must be an integer from 5 to 2^31-1, not ${bytes}`);
    this.#maxMessageSize = bytes;
  }

  /**
   * Regular frames of more than `bytes` (type byte and length included) that are not whole in one
   * chunk are returned in pieces from now on (see the module documentation); at least 5.
   */
  streamFramesAbove(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 5)
      throw new RangeError(`cannot stream frames above ${bytes} bytes`);
    this.#streamAbove = bytes;
  }

  /** The current piece is a later part of a streamed frame: no header, `offset` = `bodyOffset`. */
  get continued(): boolean {
    return this.#continued;
  }

  /** More bytes of the current (streamed) frame are still to come: not at a message boundary. */
  get inFrame(): boolean {
    return this.#streamLeft > 0;
  }

  /**
   * Bytes pushed but not yet returned as frames. After an SSLRequest this must be 0 before the TLS
   * handshake starts: bytes sent before it would otherwise be read as if they came over TLS.
   */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Adds bytes from the stream; frames are found lazily by {@link next}. Empty chunks are ignored. */
  push(chunk: Buffer): void {
    if (this.#failure) throw this.#failure;
    if (chunk.length === 0) return;
    this.#buffered += chunk.length;
    if (this.#pos >= this.#chunk.length && this.#queue.length === 0) {
      this.#chunk = chunk;
      this.#pos = 0;
    } else {
      this.#queue.push(chunk);
    }
  }

  /**
   * Advances to the next complete frame and returns true, or returns false when more bytes are needed.
   * Throws {@link ProtocolError} (`malformed_length`, `message_too_large`) on an impossible header.
   */
  next(): boolean {
    if (this.#failure) throw this.#failure;
    for (;;) {
      let chunk = this.#chunk;
      let pos = this.#pos;
      if (pos >= chunk.length) {
        const queued = this.#queue.shift();
        if (queued === undefined) return false;
        this.#chunk = chunk = queued;
        this.#pos = pos = 0;
      }
      if (this.#streamLeft > 0) {
        const take = Math.min(this.#streamLeft, chunk.length - pos);
        this.#streamLeft -= take;
        this.#pos = pos + take;
        this.#buffered -= take;
        this.#buffer = chunk;
        this.#offset = pos;
        this.#bodyOffset = pos;
        this.#end = pos + take;
        this.#continued = true;
        return true;
      }
      if (this.#pieces.length > 0) {
        if (this.#continuePartial(chunk, pos)) return true;
        continue;
      }
      const available = chunk.length - pos;
      const startup = this.#phase === 'startup';
      const headerSize = startup ? 4 : 5;
      if (available < headerSize) {
        this.#startPartial(chunk, pos, -1);
        continue;
      }
      const total = this.#frameSize(chunk, pos);
      if (available < total) {
        if (total > this.#streamAbove && !startup) {
          this.#startStream(chunk, pos, available, total);
          return true;
        }
        this.#startPartial(chunk, pos, total);
        continue;
      }
      this.#pos = pos + total;
      this.#buffered -= total;
      this.#setFrame(chunk, pos, total);
      return true;
    }
  }

  /**
   * Declares the end of the stream: throws `unexpected_eof` if a partial frame or unread bytes remain.
   * Complete frames still buffered count as unread: call {@link next} until it returns false first.
   */
  finish(): void {
    if (this.#failure) throw this.#failure;
    if (this.#streamLeft > 0)
      throw this.#fail(
        new ProtocolError(
          'unexpected_eof',
          `the stream ended inside a message (${this.#streamLeft} bytes missing)`,
        ),
      );
    if (this.#buffered > 0)
      throw this.#fail(
        new ProtocolError(
          'unexpected_eof',
          `the stream ended inside a message (${this.#buffered} bytes of an incomplete message)`,
        ),
      );
  }

  /**
   * Hands back every byte not yet returned as a frame (a partial frame, then unread chunks), in
   * stream order, and empties the reader: for a proxy that stops framing a stream and forwards the
   * rest as it comes. The reader stays usable (same phase) for bytes pushed afterwards.
   */
  takeUnframed(): Buffer {
    if (this.#failure) throw this.#failure;
    const parts = [...this.#pieces];
    if (this.#pos < this.#chunk.length) parts.push(this.#chunk.subarray(this.#pos));
    parts.push(...this.#queue);
    const rest = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.#chunk = EMPTY;
    this.#pos = 0;
    this.#queue = [];
    this.#buffered = 0;
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.#pieceTotal = -1;
    this.#streamLeft = 0;
    return rest;
  }

  get type(): number {
    return this.#type;
  }
  get code(): number {
    return this.#code;
  }
  get length(): number {
    return this.#length;
  }
  get buffer(): Buffer {
    return this.#buffer;
  }
  get offset(): number {
    return this.#offset;
  }
  get bodyOffset(): number {
    return this.#bodyOffset;
  }
  get end(): number {
    return this.#end;
  }

  /** A view of the current frame's body (the bytes after the length field). No copy. */
  body(): Buffer {
    return this.#buffer.subarray(this.#bodyOffset, this.#end);
  }

  /** A view of the whole current frame, type byte and length included. No copy. */
  bytes(): Buffer {
    return this.#buffer.subarray(this.#offset, this.#end);
  }

  /** A snapshot of the current frame's header that stays valid after {@link next}. */
  frame(): Frame {
    return {
      type: this.#type,
      code: this.#code,
      length: this.#length,
      buffer: this.#buffer,
      offset: this.#offset,
      bodyOffset: this.#bodyOffset,
      end: this.#end,
    };
  }

  /** Every complete frame now buffered, as snapshots (convenient; {@link next} allocates nothing). */
  *frames(): Generator<Frame, void, undefined> {
    while (this.next()) yield this.frame();
  }

  /** Validates the length at `pos` (header complete) and returns the frame's total size in bytes. */
  #frameSize(buf: Buffer, pos: number): number {
    if (this.#phase === 'startup') {
      const length = buf.readInt32BE(pos);
      if (length < 8)
        throw this.#fail(new ProtocolError('malformed_length', `invalid startup packet length ${length}`));
      if (length > this.#maxStartupSize)
        throw this.#fail(
          new ProtocolError(
            'message_too_large',
            `startup packet of ${length} bytes exceeds the limit of ${this.#maxStartupSize}`,
          ),
        );
      return length;
    }
    const length = buf.readInt32BE(pos + 1);
    if (length < 4)
      throw this.#fail(
        new ProtocolError('malformed_length', `invalid length ${length} for message type 0x${hex(buf[pos])}`),
      );
    if (length >= this.#maxMessageSize)
      throw this.#fail(
        new ProtocolError(
          'message_too_large',
          `message of ${length + 1} bytes (type 0x${hex(buf[pos])}) exceeds the limit of ${this.#maxMessageSize}`,
        ),
      );
    return length + 1;
  }

  /** Keeps the tail of `chunk` from `pos` as the first piece of a split frame. */
  #startPartial(chunk: Buffer, pos: number, total: number): void {
    // INVARIANT: the piece is a view; pieces are concatenated once, when the frame is complete.
    this.#pieces.push(pos === 0 ? chunk : chunk.subarray(pos));
    this.#pieceBytes = chunk.length - pos;
    this.#pieceTotal = total;
    this.#pos = chunk.length;
  }

  /** Feeds `chunk` from `pos` into the split frame; true when it completed (and is now current). */
  #continuePartial(chunk: Buffer, pos: number): boolean {
    if (this.#pieceTotal < 0) {
      const headerSize = this.#phase === 'startup' ? 4 : 5;
      const take = Math.min(headerSize - this.#pieceBytes, chunk.length - pos);
      this.#pieces.push(chunk.subarray(pos, pos + take));
      this.#pieceBytes += take;
      pos += take;
      this.#pos = pos;
      if (this.#pieceBytes < headerSize) return false;
      const header = Buffer.concat(this.#pieces, headerSize);
      this.#pieces = [header];
      this.#pieceTotal = this.#frameSize(header, 0);
      if (this.#pieceTotal > this.#streamAbove && this.#phase === 'regular') {
        this.#pieces = [];
        this.#pieceBytes = 0;
        const total = this.#pieceTotal;
        this.#pieceTotal = -1;
        this.#startStream(header, 0, headerSize, total);
        return true;
      }
    }
    const take = Math.min(this.#pieceTotal - this.#pieceBytes, chunk.length - pos);
    if (take > 0) {
      this.#pieces.push(pos === 0 && take === chunk.length ? chunk : chunk.subarray(pos, pos + take));
      this.#pieceBytes += take;
      this.#pos = pos + take;
    }
    if (this.#pieceBytes < this.#pieceTotal) return false;
    const total = this.#pieceTotal;
    const frame =
      this.#pieces.length === 1 ? (this.#pieces[0] as Buffer) : Buffer.concat(this.#pieces, total);
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.#pieceTotal = -1;
    this.#buffered -= total;
    this.#setFrame(frame, 0, total);
    return true;
  }

  /** Returns the first `available` bytes of a streamed frame of `total` bytes (header complete). */
  #startStream(buf: Buffer, pos: number, available: number, total: number): void {
    this.#pos = buf === this.#chunk ? pos + available : this.#pos;
    this.#buffered -= available;
    this.#streamLeft = total - available;
    this.#setFrame(buf, pos, available);
    this.#length = total - 1;
  }

  #setFrame(buf: Buffer, offset: number, total: number): void {
    this.#continued = false;
    this.#buffer = buf;
    this.#offset = offset;
    this.#end = offset + total;
    if (this.#phase === 'startup') {
      this.#type = 0;
      this.#length = total;
      this.#bodyOffset = offset + 4;
      const code = buf.readInt32BE(offset + 4);
      this.#code = code;
      // A protocol-3 StartupMessage ends the startup phase; SSL/GSS/Cancel requests do not.
      if (code >>> 16 === StartupCode.Protocol3 >>> 16) this.#phase = 'regular';
    } else {
      this.#type = buf[offset] as number;
      this.#code = 0;
      this.#length = total - 1;
      this.#bodyOffset = offset + 5;
    }
  }

  #fail(error: ProtocolError): ProtocolError {
    this.#failure = error;
    return error;
  }
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, '0');
}
