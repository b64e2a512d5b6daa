/**
 * A bounds-checked reader over one message body, for the decoders. Every read that would go past the
 * body throws {@link ProtocolError} `malformed_message` naming the message; nothing here can throw a
 * RangeError or loop. Internal to the protocol directory.
 */
import { ProtocolError } from './protocol-error.js';

export class BodyCursor {
  #pos = 0;

  constructor(
    readonly body: Buffer,
    /** The message name for error messages, e.g. "Bind". */
    readonly what: string,
  ) {}

  get position(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.body.length - this.#pos;
  }

  fail(problem: string): ProtocolError {
    return new ProtocolError('malformed_message', `${this.what}: ${problem}`);
  }

  #need(bytes: number, field: string): number {
    const pos = this.#pos;
    if (this.body.length - pos < bytes)
      throw this.fail(`${field} needs ${bytes} bytes but ${this.body.length - pos} remain`);
    this.#pos = pos + bytes;
    return pos;
  }

  uint8(field: string): number {
    return this.body[this.#need(1, field)] as number;
  }

  int16(field: string): number {
    return this.body.readInt16BE(this.#need(2, field));
  }

  uint16(field: string): number {
    return this.body.readUInt16BE(this.#need(2, field));
  }

  int32(field: string): number {
    return this.body.readInt32BE(this.#need(4, field));
  }

  uint32(field: string): number {
    return this.body.readUInt32BE(this.#need(4, field));
  }

  /** A NUL-terminated UTF-8 string; the NUL must lie inside the body. */
  cstring(field: string): string {
    return this.cstringBytes(field).toString('utf8');
  }

  /** A NUL-terminated string's bytes, without the NUL, as a view into the body (no copy). */
  cstringBytes(field: string): Buffer {
    const start = this.#pos;
    const nul = this.body.indexOf(0, start);
    if (nul < 0) throw this.fail(`${field} is not NUL-terminated`);
    this.#pos = nul + 1;
    return this.body.subarray(start, nul);
  }

  /** `length` bytes as a view into the body (no copy). */
  bytes(length: number, field: string): Buffer {
    if (length < 0) throw this.fail(`${field} has negative length ${length}`);
    const start = this.#need(length, field);
    return this.body.subarray(start, start + length);
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    const start = this.#pos;
    this.#pos = this.body.length;
    return this.body.subarray(start);
  }

  /** A count read from the body, refused when `count * minBytesEach` exceeds what remains. */
  count(count: number, minBytesEach: number, field: string): number {
    if (count < 0) throw this.fail(`${field} count ${count} is negative`);
    if (count * minBytesEach > this.remaining)
      throw this.fail(`${field} count ${count} does not fit in the ${this.remaining} bytes left`);
    return count;
  }

  /** The body must be fully consumed. */
  done(): void {
    if (this.#pos !== this.body.length)
      throw this.fail(`${this.body.length - this.#pos} unexpected bytes after the last field`);
  }
}
