/**
 * The client side of a login to the Portcullis database gateway, for `portcullis proxy`: connects
 * (with TLS when the credentials say `sslmode=require`, the certificate verified, unlike libpq's
 * `require`), sends the StartupMessage and the access token, and hands back the socket once the
 * gateway has accepted the token, with the bytes that followed — AuthenticationOk first — for the
 * local client. A refusal comes back as the gateway's own ErrorResponse, to forward as it is.
 */
import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  BackendMessage,
  decodeAuthentication,
  decodeNoticeFields,
  encodeCancelRequest,
  encodePasswordMessage,
  encodeSslRequest,
  encodeStartupMessage,
  FrameReader,
} from '../gateway/protocol/index.js';

/** One gateway login, as `GET /api/v1/grants/{id}/credentials` gives it for a gateway-only grant. */
export interface GatewayLogin {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** An access token. */
  readonly password: string;
  readonly database: string;
  readonly tls: boolean;
  /** Epoch ms after which the gateway takes no new login with this password. */
  readonly expiresAt: number;
}

export interface GatewayTlsOptions {
  /** Trusted CA certificates (PEM) instead of the system's, e.g. for a private CA. */
  readonly ca?: string;
}

export type GatewayLoginOutcome =
  | {
      readonly ok: true;
      readonly socket: Socket;
      /** AuthenticationOk and every byte after it read so far: forward to the client first. */
      readonly first: Buffer;
    }
  | {
      readonly ok: false;
      /** The gateway's ErrorResponse, whole. */
      readonly error: Buffer;
      readonly sqlState: string;
      readonly message: string;
    };

/** The gateway could not be reached, its TLS failed, or it answered out of protocol. */
export class GatewayDialError extends Error {
  override readonly name = 'GatewayDialError';
}

/** Largest message accepted from the gateway before the login is done (an ErrorResponse, say). */
const maxLoginMessageBytes = 64 * 1024;

/**
 * Logs in to the gateway as `login` with the client's other startup parameters.
 * @throws GatewayDialError when the gateway is unreachable, TLS fails, or the answer is out of protocol.
 */
export async function loginThroughGateway(
  login: GatewayLogin,
  parameters: ReadonlyMap<string, string>,
  tls: GatewayTlsOptions,
  timeoutMs: number,
): Promise<GatewayLoginOutcome> {
  const deadline = Date.now() + timeoutMs;
  const socket = await openGatewaySocket(login, tls, deadline);
  const frames = new LoginFrames(socket);
  try {
    socket.write(encodeStartupMessage({ user: login.user, database: login.database, parameters }));
    let frame = await frames.next(deadline);
    if (frame.type === BackendMessage.ErrorResponse) return refused(socket, frame.bytes);
    if (
      frame.type !== BackendMessage.Authentication ||
      decodeAuthentication(frame.body).kind !== 'cleartext-password'
    )
      throw new GatewayDialError('the gateway did not ask for the access token');
    socket.write(encodePasswordMessage(login.password));
    frame = await frames.next(deadline);
    if (frame.type === BackendMessage.ErrorResponse) return refused(socket, frame.bytes);
    if (frame.type !== BackendMessage.Authentication || decodeAuthentication(frame.body).kind !== 'ok')
      throw new GatewayDialError('the gateway answered the access token out of protocol');
    return { ok: true, socket, first: Buffer.concat([frame.bytes, frames.release()]) };
  } catch (error) {
    socket.destroy();
    throw error instanceof GatewayDialError
      ? error
      : new GatewayDialError(`login to the gateway failed: ${messageOf(error)}`, { cause: error });
  }
}

/** Sends a client's CancelRequest on to the gateway that issued its key (over TLS when it serves TLS). */
export async function cancelThroughGateway(
  login: Pick<GatewayLogin, 'host' | 'port' | 'tls'>,
  processId: number,
  secretKey: Uint8Array,
  tls: GatewayTlsOptions,
  timeoutMs: number,
): Promise<void> {
  const socket = await openGatewaySocket(login, tls, Date.now() + timeoutMs);
  socket.on('error', () => {});
  socket.end(encodeCancelRequest(processId, secretKey));
  setTimeout(() => socket.destroy(), timeoutMs).unref();
}

function refused(socket: Socket, error: Buffer): GatewayLoginOutcome {
  socket.destroy();
  const fields = decodeNoticeFields(error.subarray(5));
  return { ok: false, error, sqlState: fields.code, message: fields.message };
}

async function openGatewaySocket(
  login: Pick<GatewayLogin, 'host' | 'port' | 'tls'>,
  tls: GatewayTlsOptions,
  deadline: number,
): Promise<Socket> {
  const where = `${login.host}:${login.port}`;
  const raw = tcpConnect({ host: login.host, port: login.port, noDelay: true });
  try {
    await settled(raw, 'connect', deadline, `cannot reach the gateway at ${where}`);
    if (!login.tls) return raw;
    raw.write(encodeSslRequest());
    const answer = await firstByte(raw, deadline);
    if (answer !== 0x53)
      throw new GatewayDialError(
        `the gateway at ${where} does not offer TLS, but its credentials require it (sslmode=require)`,
      );
    const secure = tlsConnect({
      socket: raw,
      host: login.host,
      // SNI takes names only; the certificate is still checked against an IP address.
      ...(isIP(login.host) === 0 ? { servername: login.host } : {}),
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    });
    await settled(secure, 'secureConnect', deadline, `TLS with the gateway at ${where} failed`);
    secure.setNoDelay(true);
    return secure;
  } catch (error) {
    raw.destroy();
    throw error;
  }
}

/** Resolves on `event`; rejects with a GatewayDialError on an error, a close or the deadline. */
function settled(socket: Socket, event: string, deadline: number, failure: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onEvent = () => done();
    const onError = (error: Error) =>
      done(new GatewayDialError(`${failure}: ${error.message}`, { cause: error }));
    const onClose = () => done(new GatewayDialError(`${failure}: the connection closed`));
    const timer = setTimeout(
      () => done(new GatewayDialError(`${failure}: timed out`)),
      Math.max(0, deadline - Date.now()),
    );
    socket.once(event, onEvent);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

/** The one-byte answer to an SSLRequest; anything after it would be read as if it came over TLS. */
function firstByte(socket: Socket, deadline: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | undefined, byte = 0) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', done);
      socket.off('close', onClose);
      socket.pause();
      if (error) reject(error);
      else resolve(byte);
    };
    const onData = (chunk: Buffer) =>
      chunk.length === 1
        ? done(undefined, chunk[0])
        : done(new GatewayDialError('the gateway sent data after its answer to the TLS request'));
    const onClose = () => done(new GatewayDialError('the gateway closed the connection at the TLS request'));
    const timer = setTimeout(
      () => done(new GatewayDialError('the gateway did not answer the TLS request in time')),
      Math.max(0, deadline - Date.now()),
    );
    socket.on('data', onData);
    socket.once('error', done);
    socket.once('close', onClose);
  });
}

interface LoginFrame {
  readonly type: number;
  readonly body: Buffer;
  readonly bytes: Buffer;
}

/** Whole messages from the gateway while logging in, read one at a time. */
class LoginFrames {
  readonly #socket: Socket;
  readonly #reader = new FrameReader({ phase: 'regular', maxMessageSize: maxLoginMessageBytes });
  #failure: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.resume();
  }

  async next(deadline: number): Promise<LoginFrame> {
    for (;;) {
      if (this.#reader.next()) {
        return { type: this.#reader.type, body: this.#reader.body(), bytes: this.#reader.bytes() };
      }
      if (this.#failure) throw this.#failure;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new GatewayDialError('the gateway did not answer the login in time')),
          Math.max(0, deadline - Date.now()),
        );
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Stops reading (the socket is left paused) and returns the bytes not yet framed. */
  release(): Buffer {
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#socket.off('error', this.#onError);
    this.#socket.off('close', this.#onClose);
    // Until the proxy has its own listeners, a reset must not become an uncaught error; `close` still follows.
    this.#socket.on('error', () => {});
    if (this.#failure) throw this.#failure;
    return this.#reader.takeUnframed();
  }

  readonly #onData = (chunk: Buffer) => {
    try {
      this.#reader.push(chunk);
    } catch (error) {
      this.#failure ??= new GatewayDialError(`the gateway sent an invalid message: ${messageOf(error)}`);
    }
    this.#notify();
  };
  readonly #onError = (error: Error) => {
    this.#failure ??= new GatewayDialError(`the gateway connection failed: ${error.message}`, {
      cause: error,
    });
    this.#notify();
  };
  readonly #onClose = () => {
    this.#failure ??= new GatewayDialError('the gateway closed the connection during the login');
    this.#notify();
  };

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
