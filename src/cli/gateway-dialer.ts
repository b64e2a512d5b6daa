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
  encodeStartupMessage,
  FrameReader,
} from '../gateway/protocol/index.js';
import { openUpstreamSocket } from '../gateway/upstream-connection.js';

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

/** The gateway's socket, through the gateway's own upstream connector; its errors as GatewayDialError. */
async function openGatewaySocket(
  login: Pick<GatewayLogin, 'host' | 'port' | 'tls'>,
  tls: GatewayTlsOptions,
  deadline: number,
): Promise<Socket> {
  try {
    return await openUpstreamSocket(
      {
        host: login.host,
        port: login.port,
        // The certificate must chain to a trusted CA and name the host (IP addresses included).
        tls: login.tls ? 'verify-full' : 'disable',
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      },
      Math.max(0, deadline - Date.now()),
      undefined,
      {
        name: `the gateway at ${login.host}:${login.port}`,
        tlsDemand: 'which its credentials require (sslmode=require)',
      },
    );
  } catch (error) {
    throw new GatewayDialError(messageOf(error), { cause: error });
  }
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
