/**
 * `portcullis proxy GRANT`: a PostgreSQL listener on loopback for one grant on a gateway-only
 * resource. A client (psql, a GUI, a connection pool) logs in with a local password; for each
 * login the proxy logs in to the Portcullis gateway with a current access token (renewed through
 * the API as tokens run out) and from then on only relays bytes. The gateway still admits,
 * records and ends every session; the proxy adds no access, it spares people from pasting a new
 * token every `tokens.access_token_ttl`. See docs/cli.md, "proxy".
 *
 * Local clients are told `N` to TLS: the listener takes only loopback connections, and the bytes
 * to the gateway go over TLS whenever the gateway serves it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { sameSecret } from '../crypto/same-secret.js';
import {
  decodePasswordMessage,
  decodeStartupPacket,
  encodeAuthenticationCleartextPassword,
  encodeErrorResponse,
  encodeSslResponse,
  FrameReader,
  FrontendMessage,
  isProtocolError,
  isProtocolOption,
  protocolNegotiation,
  type StartupMessage,
} from '../gateway/protocol/index.js';
import {
  cancelThroughGateway,
  type GatewayLogin,
  type GatewayLoginOutcome,
  type GatewayTlsOptions,
  loginThroughGateway,
} from './gateway-dialer.js';

/** Gateway credentials, and whether they came from the cache (a refused cached token is renewed once). */
export interface ProxyLogin {
  readonly login: GatewayLogin;
  readonly cached: boolean;
}

export interface DbProxyOptions {
  /** A loopback address. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** What local clients must send as their password. */
  readonly password: string;
  /** Credentials for one gateway login; `fresh` skips the cache. */
  readonly login: (fresh: boolean) => Promise<ProxyLogin>;
  readonly tls: GatewayTlsOptions;
  /** Time a local client has to log in, and the proxy to log in to the gateway (default 10 s). */
  readonly timeoutMs?: number;
  /**
   * Credentials could not be had: what the client reads, and whether no later login can succeed
   * either (the grant ended, the CLI session expired), which stops the proxy.
   */
  readonly onLoginError: (error: unknown) => { readonly message: string; readonly final: boolean };
  /** One line per login and per refusal, for the person running the proxy. */
  readonly note: (text: string) => void;
}

/** Longest message a local client may send before its session is relayed. */
const maxLocalStartupMessageBytes = 64 * 1024;

/** See the module comment. */
export class DbProxy {
  readonly #options: Required<DbProxyOptions>;
  readonly #server: Server;
  readonly #sessions = new Set<LocalSession>();
  readonly #onDrained: (() => void)[] = [];
  #stop: ((why: string) => void) | undefined;
  /** Settles with why the proxy stopped on its own (credentials can no longer be had). */
  readonly stopped: Promise<string>;
  #closing = false;

  constructor(options: DbProxyOptions) {
    this.#options = { timeoutMs: 10_000, ...options };
    this.stopped = new Promise((resolve) => {
      this.#stop = resolve;
    });
    this.#server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.#accept(socket));
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#options.host, port: this.#options.port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : this.#options.port;
  }

  /** Open local connections (logging in or relaying). */
  get connectionCount(): number {
    return this.#sessions.size;
  }

  /** Resolves once no local connection is open. */
  drained(): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onDrained.push(resolve));
  }

  /** Stops listening and ends every local connection; the gateway ends its side of each. */
  async close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions)
      session.end('57P01', 'terminating connection: the Portcullis proxy is stopping');
    await closed;
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {});
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const session = new LocalSession(socket, {
      options: this.#options,
      onClosed: () => {
        this.#sessions.delete(session);
        if (this.#sessions.size === 0) for (const resolve of this.#onDrained.splice(0)) resolve();
      },
      onFinal: (why) => this.#stopOnce(why),
    });
    this.#sessions.add(session);
  }

  #stopOnce(why: string): void {
    const stop = this.#stop;
    this.#stop = undefined;
    if (!stop) return;
    this.#closing = true;
    this.#server.close();
    stop(why);
  }
}

interface SessionContext {
  readonly options: Required<DbProxyOptions>;
  readonly onClosed: () => void;
  readonly onFinal: (why: string) => void;
}

/** One local client, from its startup packet until both sides close. */
class LocalSession {
  readonly #client: Socket;
  readonly #ctx: SessionContext;
  readonly #reader = new FrameReader({ maxMessageSize: maxLocalStartupMessageBytes });
  readonly #who: string;
  #state: 'startup' | 'password' | 'connecting' | 'relay' | 'closed' = 'startup';
  readonly #parameters = new Map<string, string>();
  #gateway: Socket | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(client: Socket, ctx: SessionContext) {
    this.#client = client;
    this.#ctx = ctx;
    this.#who = `${client.remoteAddress ?? '?'}:${client.remotePort ?? '?'}`;
    this.#timer = setTimeout(
      () => this.end('08006', 'the Portcullis proxy timed out waiting for the login'),
      ctx.options.timeoutMs,
    );
    this.#timer.unref();
    client.on('data', this.#onData);
    client.on('close', this.#onClientClose);
    client.resume();
  }

  /**
   * Ends the session: with a FATAL the client can read while logging in; once relaying, by closing
   * both sides (a FATAL could land inside a message the gateway is sending).
   */
  end(sqlState: string, message: string): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'relay') {
      this.#gateway?.destroy();
      this.#client.destroy();
      this.#finish();
      return;
    }
    this.#gateway?.destroy();
    this.#closeWith(encodeErrorResponse({ severity: 'FATAL', code: sqlState, message }));
  }

  /** Sends the client its last message (a FATAL) and ends the session; a client that does not read is cut. */
  #closeWith(lastMessage: Buffer): void {
    this.#client.end(lastMessage);
    setTimeout(() => this.#client.destroy(), 2000).unref();
    this.#finish();
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
      while (this.#state === 'startup' && this.#reader.next()) this.#onStartupPacket();
      if (this.#state === 'password' && this.#reader.next()) this.#onPassword();
    } catch (error) {
      if (!isProtocolError(error)) throw error;
      this.end('08P01', `invalid message: ${error.message}`);
    }
  };

  readonly #onClientClose = (): void => {
    const gateway = this.#gateway;
    if (gateway) {
      // end(), not destroy(): the client's Terminate, piped just before, must still reach the gateway.
      gateway.end();
      setTimeout(() => gateway.destroy(), 2000).unref();
    }
    this.#finish();
  };

  #onStartupPacket(): void {
    const packet = decodeStartupPacket(this.#reader.body());
    switch (packet.kind) {
      case 'ssl':
      case 'gssenc':
        this.#client.write(encodeSslResponse(false));
        return;
      case 'cancel':
        this.#finish();
        this.#client.destroy();
        this.#cancel(packet.processId, packet.secretKey);
        return;
      case 'startup':
        this.#onStartupMessage(packet);
        return;
    }
  }

  #onStartupMessage(startup: StartupMessage): void {
    // The gateway speaks 3.0 without protocol options: say so, as PostgreSQL itself would.
    const negotiation = protocolNegotiation(startup);
    if (negotiation) this.#client.write(negotiation);
    if (startup.parameters.has('replication')) {
      this.end('28000', 'replication connections are not served by the Portcullis gateway');
      return;
    }
    // The grant decides user and database; the client's other settings travel on.
    for (const [name, value] of startup.parameters)
      if (name !== 'user' && name !== 'database' && !name.startsWith('_pq_.'))
        this.#parameters.set(name, value);
    this.#client.write(encodeAuthenticationCleartextPassword());
    this.#state = 'password';
  }

  #onPassword(): void {
    if (this.#reader.type !== FrontendMessage.Password) {
      this.end('08P01', 'invalid message: expected a password message');
      return;
    }
    const { password } = decodePasswordMessage(this.#reader.body());
    if (!sameSecret(password, this.#ctx.options.password)) {
      this.#ctx.options.note(`proxy: ${this.#who} gave a wrong local password`);
      this.end('28P01', 'password authentication failed for the local Portcullis proxy');
      return;
    }
    this.#state = 'connecting';
    this.#client.pause();
    const early = this.#reader.takeUnframed();
    void this.#connect(early);
  }

  async #connect(early: Buffer): Promise<void> {
    const { options } = this.#ctx;
    let outcome = await this.#loginOnce(false);
    if (outcome?.retry) outcome = await this.#loginOnce(true);
    if (!outcome) return;
    const result = outcome.result;
    if (this.#state !== 'connecting') {
      if (result.ok) result.socket.destroy();
      return;
    }
    if (!result.ok) {
      options.note(`proxy: the gateway refused ${this.#who}: ${result.message}`);
      this.#closeWith(result.error);
      return;
    }
    this.#relay(result.socket, result.first, early);
  }

  /** One gateway login; undefined when the session has already been ended with an error. */
  async #loginOnce(
    fresh: boolean,
  ): Promise<{ readonly result: GatewayLoginOutcome; readonly retry: boolean } | undefined> {
    const { options } = this.#ctx;
    let login: ProxyLogin;
    try {
      login = await options.login(fresh);
    } catch (error) {
      const { message, final } = options.onLoginError(error);
      options.note(`proxy: no gateway credentials for ${this.#who}: ${message}`);
      this.end('28000', `the Portcullis proxy has no credentials: ${message}`);
      if (final) this.#ctx.onFinal(message);
      return undefined;
    }
    if (this.#state !== 'connecting') return undefined;
    try {
      const result = await loginThroughGateway(login.login, this.#parameters, options.tls, options.timeoutMs);
      // The gateway refused a cached token (it expired by the server's clock, keys were rotated, the
      // grant ended): one try with fresh credentials, which also asks the API whether the grant is over.
      const retry = !result.ok && result.sqlState.startsWith('28') && login.cached && !fresh;
      return { result, retry };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      options.note(`proxy: ${this.#who}: ${message}`);
      this.end('08001', `the Portcullis proxy ${message}`);
      return undefined;
    }
  }

  #relay(gateway: Socket, first: Buffer, early: Buffer): void {
    const client = this.#client;
    this.#gateway = gateway;
    this.#state = 'relay';
    clearTimeout(this.#timer);
    this.#ctx.options.note(`proxy: ${this.#who} logged in through the gateway`);
    client.off('data', this.#onData);
    client.write(first);
    if (early.length > 0) gateway.write(early);
    // `pipe` ends each side when the other ends, after what was sent (a FATAL from the gateway, say).
    gateway.pipe(client);
    client.pipe(gateway);
    gateway.on('close', () => {
      client.end();
      setTimeout(() => client.destroy(), 2000).unref();
    });
    gateway.on('error', () => client.destroy());
    client.on('error', () => gateway.destroy());
  }

  #cancel(processId: number, secretKey: Buffer): void {
    const { options } = this.#ctx;
    options
      .login(false)
      .then(({ login }) => cancelThroughGateway(login, processId, secretKey, options.tls, options.timeoutMs))
      .catch((error: unknown) =>
        options.note(
          `proxy: a cancel request could not be sent: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
  }

  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#timer);
    this.#ctx.onClosed();
  }
}
