/**
 * A raw PostgreSQL protocol client for the gateway's tests: logs in with a token as the password,
 * then lets a test send any frames it builds (including ones no driver sends, such as FunctionCall
 * or a Parse/Bind/Execute without Sync) and wait for the server's frames. Adapted from the
 * security review's reproductions.
 */
import { connect, type Socket } from 'node:net';
import {
  encodeFunctionCall,
  encodePasswordMessage,
  encodeStartupMessage,
  FrameReader,
} from '../src/gateway/protocol/index.js';

export interface RawFrame {
  /** The type byte as a character ('Z', 'E', 'D', …). */
  readonly type: string;
  readonly body: Buffer;
}

export class RawClient {
  socket!: Socket;
  readonly #reader = new FrameReader({ phase: 'regular', maxMessageSize: 1 << 30 });
  frames: RawFrame[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;

  /** Connects and logs in; resolves once the first ReadyForQuery (or an ErrorResponse) arrived. */
  async open(
    port: number,
    user: string,
    token: string,
    parameters: [string, string][] = [],
    database = 'demo-db',
  ): Promise<RawFrame[]> {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('error', () => {});
    await new Promise((resolve) => this.socket.once('connect', resolve));
    this.socket.on('data', (chunk: Buffer) => {
      this.#reader.push(chunk);
      while (this.#reader.next())
        this.frames.push({
          type: String.fromCharCode(this.#reader.type),
          body: Buffer.from(this.#reader.body()),
        });
      this.#wake();
    });
    this.socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    this.socket.write(encodeStartupMessage({ user, database, parameters }));
    await this.until((f) => f.type === 'R');
    this.socket.write(encodePasswordMessage(token));
    return this.until((f) => f.type === 'Z' || f.type === 'E');
  }

  /** Takes the frames up to and including the first that matches; fails if the socket closes first. */
  async until(match: (frame: RawFrame) => boolean): Promise<RawFrame[]> {
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(0, i + 1);
      if (this.#closed)
        throw new Error(`connection closed; frames: ${this.frames.map((f) => f.type).join('')}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** A frame of `type` around `body`. */
export function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** FunctionCall ('F') with text arguments. */
export const functionCall = (oid: number, args: (string | null)[]): Buffer =>
  encodeFunctionCall({ functionOid: oid, argumentFormats: [0], arguments: args });
export const query = (sql: string) => frame('Q', cstr(sql));
export const parse = (name: string, sql: string) =>
  frame('P', Buffer.concat([cstr(name), cstr(sql), i16(0)]));
export const bind = (portal: string, statement: string) =>
  frame('B', Buffer.concat([cstr(portal), cstr(statement), i16(0), i16(0), i16(0)]));
export const execute = (portal: string) => frame('E', Buffer.concat([cstr(portal), i32(0)]));
export const sync = () => frame('S', Buffer.alloc(0));
export const flush = () => frame('H', Buffer.alloc(0));

/** The text of an ErrorResponse's SQLSTATE field ('C'), or ''. */
export function sqlState(body: Buffer): string {
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at] as number);
    const end = body.indexOf(0, at + 1);
    if (code === 'C') return body.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return '';
}
