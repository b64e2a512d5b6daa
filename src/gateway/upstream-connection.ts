/**
 * Opens the upstream side of a gateway session: a TCP connection to the resource's PostgreSQL
 * (TLS first when the admin URL says `sslmode=require`/`verify-ca`/`verify-full`, checked against
 * its `sslrootcert`), a StartupMessage as the grant's own login, SCRAM-SHA-256 with the grant's
 * password (cleartext or no password only where the resource allows it), and the startup phase up to
 * the first ReadyForQuery. The server's BackendKeyData is kept (for
 * cancel routing) and not forwarded; its ParameterStatus/NoticeResponse frames are handed back to
 * be replayed to the client.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  BackendMessage,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeNoticeFields,
  encodePasswordMessage,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeSslRequest,
  encodeStartupMessage,
  FrameReader,
  isProtocolOption,
  ProtocolError,
} from './protocol/index.js';
import {
  SCRAM_SHA_256,
  SCRAM_SHA_256_PLUS,
  type ScramExchange,
  type ScramFinal,
  startScram,
} from './protocol/scram-client.js';
import { tlsServerEndPoint } from './protocol/tls-server-end-point.js';

/** Where the upstream server is and how to reach it. */
export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
  /**
   * As libpq's sslmode: `disable`, plain TCP; `require`, TLS without certificate checks;
   * `verify-ca`, TLS with a certificate chained to `ca`; `verify-full`, that and the certificate
   * names `host` (a DNS name or an IP address). A server that does not offer TLS is refused.
   */
  readonly tls: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  /** PEM of the CAs to trust (libpq's sslrootcert); the system's CAs when absent. */
  readonly ca?: string;
}

/**
 * How the gateway lets a server authenticate its login, as libpq's `require_auth`:
 * `scram-sha-256` (the server proves it knows the password too), `password` (the password in
 * cleartext, to whoever asks), `none` (the server asks for nothing, so proves nothing).
 */
export type UpstreamAuthMethod = 'scram-sha-256' | 'password' | 'none';

/** A resource's server: where it is, and which authentication the gateway accepts from it. */
export interface UpstreamTarget extends UpstreamAddress {
  readonly acceptedAuth: ReadonlySet<UpstreamAuthMethod>;
  /**
   * As libpq's `channel_binding`: `prefer` binds SCRAM to the TLS connection
   * (`SCRAM-SHA-256-PLUS`) whenever the server offers it; `require` refuses a login that is not
   * bound; `disable` never binds. Without TLS there is nothing to bind to.
   */
  readonly channelBinding: 'disable' | 'prefer' | 'require';
}

export interface UpstreamLogin {
  readonly username: string;
  readonly password: string;
  readonly database: string;
  /** Client startup parameters passed through (application_name, client_encoding, options, …). */
  readonly parameters: ReadonlyMap<string, string>;
}

export interface UpstreamSession {
  readonly socket: Socket | TLSSocket;
  /** Reads the server direction from here on (frames after the first ReadyForQuery may be buffered). */
  readonly reader: FrameReader;
  /** ParameterStatus and NoticeResponse frames of the startup phase, to replay to the client. */
  readonly startupFrames: readonly Buffer[];
  /** The first ReadyForQuery frame. */
  readonly readyForQuery: Buffer;
  readonly backendKey: { readonly processId: number; readonly secretKey: Buffer };
}

/** The server refused the login or broke the protocol; `sqlState`/`message` come from it when it said why. */
export class UpstreamError extends Error {
  constructor(
    readonly sqlState: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** The channel binding data of a TLS connection's server certificate; null over plain TCP. */
function channelBindingOf(socket: Socket | TLSSocket): Buffer | null {
  if (!('getPeerX509Certificate' in socket)) return null;
  const certificate = socket.getPeerX509Certificate();
  return certificate ? tlsServerEndPoint(certificate.raw) : null;
}

/** Ends the login when `target` does not accept `method`; only SCRAM can be bound to TLS. */
function refuseUnaccepted(target: UpstreamTarget, method: UpstreamAuthMethod, what: string): void {
  if (method !== 'scram-sha-256' && target.channelBinding === 'require')
    throw new UpstreamError('28000', `the database ${what}, which channel_binding=require refuses`);
  if (target.acceptedAuth.has(method)) return;
  throw new UpstreamError(
    '28000',
    `the database ${what}, which this resource's gateway_upstream_auth does not accept (${[...target.acceptedAuth].join(', ')})`,
  );
}

/** Largest frame accepted from the server (PostgreSQL's own field limit is 1 GiB). */
export const maxUpstreamMessageBytes = 0x4000_0000;

/** How errors name the server being reached, and what demands TLS from it. */
export interface PeerWording {
  /** e.g. "the database". */
  readonly name: string;
  /** Ends "… does not accept TLS, …", e.g. "which its admin URL requires". */
  readonly tlsDemand: string;
}

const databasePeer: PeerWording = { name: 'the database', tlsDemand: 'which its admin URL requires' };

/**
 * Opens a TCP (and, when asked, TLS) connection to a PostgreSQL server, or to anything speaking
 * its startup protocol such as the Portcullis gateway (`portcullis proxy`); rejects with
 * {@link UpstreamError} (08001) after `timeoutMs` per step, or when TLS is refused or fails.
 */
export async function openUpstreamSocket(
  address: UpstreamAddress,
  timeoutMs: number,
  signal?: AbortSignal,
  peer: PeerWording = databasePeer,
): Promise<Socket | TLSSocket> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: address.host, port: address.port, noDelay: true });
    const fail = (error: unknown) => {
      s.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new UpstreamError('08001', `timed out connecting to ${peer.name}`)),
      timeoutMs,
    );
    // Only until connected: aborting the session later must not destroy the socket under the
    // relay, whose close ends it gracefully so the client's last Terminate still gets through.
    const onAbort = () => fail(new UpstreamError('57P01', 'aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    s.once('error', (error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fail(new UpstreamError('08001', `cannot connect to ${peer.name}: ${error.message}`, { cause: error }));
    });
    s.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
  });
  if (address.tls === 'disable') return socket;
  return startTls(socket, address, timeoutMs, peer);
}

async function startTls(
  socket: Socket,
  address: UpstreamAddress,
  timeoutMs: number,
  peer: PeerWording,
): Promise<TLSSocket> {
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new UpstreamError('08001', 'no answer to SSLRequest')), timeoutMs);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve(chunk);
    });
    socket.once('error', reject);
    socket.write(encodeSslRequest());
  }).catch((error) => {
    socket.destroy();
    throw error;
  });
  // INVARIANT: exactly one byte before the handshake (more would be unencrypted injected data).
  if (answer.length !== 1 || answer[0] !== 0x53) {
    socket.destroy();
    throw new UpstreamError('08001', `${peer.name} does not accept TLS, ${peer.tlsDemand}`);
  }
  socket.removeAllListeners('error');
  return new Promise<TLSSocket>((resolve, reject) => {
    const isIp = isIP(address.host) !== 0;
    const secure = tlsConnect({
      socket,
      // What the certificate is checked against (verify-full): the name, or the IP address.
      host: address.host,
      servername: isIp ? undefined : address.host,
      rejectUnauthorized: address.tls !== 'require',
      ...(address.ca === undefined ? {} : { ca: address.ca }),
      ...(address.tls === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    });
    secure.once('secureConnect', () => {
      secure.removeAllListeners('error');
      resolve(secure);
    });
    secure.once('error', (error) => {
      secure.destroy();
      reject(new UpstreamError('08001', `TLS to ${peer.name} failed: ${error.message}`, { cause: error }));
    });
  });
}

/**
 * Connects and logs in as `login`; resolves once the server is ready for queries. Rejects with
 * {@link UpstreamError} (the server's own SQLSTATE and message when it sent an ErrorResponse).
 */
export async function connectUpstream(
  address: UpstreamTarget,
  login: UpstreamLogin,
  options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<UpstreamSession> {
  const socket = await openUpstreamSocket(address, options.timeoutMs, options.signal);
  const reader = new FrameReader({ phase: 'regular', maxMessageSize: maxUpstreamMessageBytes });
  try {
    return await new Promise<UpstreamSession>((resolve, reject) => {
      const startupFrames: Buffer[] = [];
      let backendKey: UpstreamSession['backendKey'] | undefined;
      let scram: ScramExchange | undefined;
      let scramFinal: ScramFinal | undefined;
      let busy = false;
      let serverProven = false;
      let passwordSent = false;
      let done = false;
      const finish = (error: unknown, session?: UpstreamSession) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
        // Bytes after the first ReadyForQuery must wait for the relay's own listener.
        if (session) {
          socket.pause();
          resolve(session);
        } else reject(error);
      };
      const timer = setTimeout(
        () => finish(new UpstreamError('08001', 'the database did not complete the login in time')),
        options.timeoutMs,
      );
      const onError = (error: Error) =>
        finish(
          new UpstreamError('08006', `the database connection failed: ${error.message}`, { cause: error }),
        );
      const onClose = () =>
        finish(new UpstreamError('08006', 'the database closed the connection during login'));
      function onAbort() {
        finish(new UpstreamError('57P01', 'aborted'));
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Frames are handled one at a time: the SCRAM proof is computed off the event loop.
      const pump = async () => {
        if (busy) return;
        busy = true;
        try {
          while (!done && reader.next()) {
            const body = reader.body();
            switch (reader.type) {
              case BackendMessage.Authentication: {
                const auth = decodeAuthentication(body);
                if (auth.kind === 'ok') {
                  if (scram && !serverProven)
                    throw new UpstreamError('08006', 'the database skipped the SCRAM server proof');
                  if (!scram && !passwordSent) refuseUnaccepted(address, 'none', 'asks for no password');
                  break;
                }
                if (auth.kind === 'sasl') {
                  refuseUnaccepted(address, 'scram-sha-256', 'asks for SCRAM-SHA-256');
                  const binding =
                    address.channelBinding !== 'disable' && auth.mechanisms.includes(SCRAM_SHA_256_PLUS)
                      ? channelBindingOf(socket)
                      : null;
                  if (binding === null && address.channelBinding === 'require')
                    throw new UpstreamError(
                      '28000',
                      `the database cannot bind the login to TLS (it offers ${auth.mechanisms.join(', ')}), which channel_binding=require demands`,
                    );
                  const mechanism = binding ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256;
                  if (!auth.mechanisms.includes(mechanism))
                    throw new UpstreamError(
                      '28000',
                      `the database offers no supported SASL mechanism (${auth.mechanisms.join(', ')})`,
                    );
                  scram = startScram(login.password, binding ? { channelBinding: binding } : {});
                  socket.write(encodeSaslInitialResponse(mechanism, scram.clientFirstMessage));
                } else if (auth.kind === 'sasl-continue' && scram && !scramFinal) {
                  scramFinal = await scram.next(Buffer.from(auth.data));
                  if (done) return;
                  socket.write(encodeSaslResponse(scramFinal.clientFinalMessage));
                } else if (auth.kind === 'sasl-final' && scramFinal) {
                  // A server that cannot prove it knows the password is not talked to.
                  scramFinal.verify(auth.data);
                  serverProven = true;
                } else if (auth.kind === 'cleartext-password' && !scram && !passwordSent) {
                  // Whoever asks gets the password: only where TLS proved who is asking.
                  refuseUnaccepted(address, 'password', 'asks for the password in cleartext');
                  passwordSent = true;
                  socket.write(encodePasswordMessage(login.password));
                } else {
                  throw new UpstreamError(
                    '28000',
                    `the database asks for an unsupported authentication (${auth.kind})`,
                  );
                }
                break;
              }
              case BackendMessage.BackendKeyData:
                backendKey = decodeBackendKeyData(body);
                break;
              case BackendMessage.ParameterStatus:
              case BackendMessage.NoticeResponse:
                startupFrames.push(Buffer.from(reader.bytes()));
                break;
              case BackendMessage.ErrorResponse: {
                const fields = decodeNoticeFields(body);
                throw new UpstreamError(
                  fields.code || '08006',
                  fields.message || 'the database refused the login',
                );
              }
              case BackendMessage.NegotiateProtocolVersion:
                // We ask for 3.0 without protocol options: nothing to adjust.
                break;
              case BackendMessage.ReadyForQuery: {
                if (!backendKey) throw new UpstreamError('08P01', 'the database sent no BackendKeyData');
                finish(undefined, {
                  socket,
                  reader,
                  startupFrames,
                  readyForQuery: Buffer.from(reader.bytes()),
                  backendKey,
                });
                return;
              }
              default:
                throw new UpstreamError(
                  '08P01',
                  `unexpected message from the database during login (${reader.type})`,
                );
            }
          }
        } catch (error) {
          finish(
            error instanceof UpstreamError
              ? error
              : new UpstreamError(
                  error instanceof ProtocolError ? error.sqlState : '08006',
                  `login to the database failed: ${error instanceof Error ? error.message : String(error)}`,
                  { cause: error },
                ),
          );
        } finally {
          busy = false;
        }
      };
      const onData = (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch (error) {
          finish(
            new UpstreamError('08P01', `bad data from the database: ${String(error)}`, { cause: error }),
          );
          return;
        }
        void pump();
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.write(
        encodeStartupMessage({
          user: login.username,
          database: login.database,
          // Protocol options were declined to the client (protocolNegotiation); they are not settings.
          parameters: [...login.parameters].filter(
            ([name]) => name !== 'user' && name !== 'database' && !isProtocolOption(name),
          ),
        }),
      );
    });
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
