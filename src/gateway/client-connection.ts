/**
 * One client connection of the gateway, from the first byte to the last:
 *
 * 1. **Startup**: SSLRequest (TLS upgrade when configured, else `N`), GSSENCRequest (`N`),
 *    CancelRequest (routed upstream by the gateway's key, then closed) or the StartupMessage.
 *    Without TLS, only a loopback peer with `allow_plaintext_on_loopback` may go on.
 * 2. **Password**: AuthenticationCleartextPassword; the password is the access token.
 * 3. **Admission** (see admission.ts); a refusal is audited and answered with FATAL 28P01/28000,
 *    and no upstream connection is opened. Admitted: `gateway.session_started` is written
 *    synchronously, then the upstream login (upstream-connection.ts); the client gets
 *    AuthenticationOk, the server's ParameterStatus, the gateway's own BackendKeyData and
 *    ReadyForQuery.
 * 4. **Relay**: client → upstream, frames are read by header only; Query, Parse, Bind, Execute
 *    and FunctionCall are decoded for the recorder; the original bytes are forwarded with one write
 *    per incoming chunk.
 *    Upstream → client, frames are only delimited (so a FATAL can be inserted at a message
 *    boundary) and forwarded the same way; a large message is forwarded in pieces as it arrives,
 *    never collected whole. Backpressure both ways, and from the recorder.
 * 5. **End**: the client leaves, the server leaves, the grant ends (57P01), the audit log fails
 *    (57P01), a protocol error (08P01), or the startup timeout. The upstream connection is closed in
 *    every case (with a CancelRequest first when a query is still running), and
 *    `gateway.session_ended` records bytes and duration.
 */
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { isLoopbackAddress } from '../text/loopback-address.js';
import { type AdmissionDeps, admit } from './admission.js';
import type { CancelKeys } from './cancel-keys.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import {
  BackendMessage,
  decodePasswordMessage,
  decodeStartupPacket,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeErrorResponse,
  encodeSslResponse,
  FrameReader,
  FrontendMessage,
  isProtocolError,
  isProtocolOption,
  protocolNegotiation,
  type StartupMessage,
} from './protocol/index.js';
import type { SessionDirectory } from './session-directory.js';
import type { RegisteredSession, SessionRegistry, TerminationReason } from './session-registry.js';
import { terminationMessage } from './session-registry.js';
import type { SessionRecording, StatementRecorder } from './statement-recorder.js';
import { type SessionFacts, StatementTracker } from './statement-tracker.js';
import {
  connectUpstream,
  openUpstreamSocket,
  type UpstreamAddress,
  UpstreamError,
  type UpstreamSession,
  type UpstreamTarget,
} from './upstream-connection.js';

/** The slice of a logger the gateway uses (pino's signature). */
export interface GatewayLog {
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
  debug(object: object, message: string): void;
}

/** What every connection shares; built once by the gateway. */
export interface ConnectionContext {
  readonly tls: SecureContext | null;
  readonly allowPlaintextOnLoopback: boolean;
  readonly recordParameters: boolean;
  readonly maxMessageBytes: number;
  readonly startupTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly admission: AdmissionDeps;
  readonly recorder: StatementRecorder;
  readonly registry: SessionRegistry;
  readonly directory: SessionDirectory;
  readonly cancelKeys: CancelKeys;
  readonly upstreamTarget: (resourceId: string) => UpstreamTarget;
  readonly newId: () => string;
  readonly now: () => number;
  readonly log: GatewayLog;
  readonly metrics: GatewayMetrics;
  /** Called once when the connection is gone. */
  readonly onClosed: (connection: ClientConnection) => void;
  /** Called once when the connection's login is over (admitted, refused or gone). */
  readonly onLoginOver: (connection: ClientConnection) => void;
}

type State = 'startup' | 'password' | 'admitting' | 'relay' | 'closed';

interface OpenSession {
  readonly facts: SessionFacts;
  readonly tracker: StatementTracker;
  readonly recording: SessionRecording;
  readonly startedAt: number;
  unregister: () => void;
  cancelProcessId: number | null;
}

const startupReplyTypes = new Set<number>([FrontendMessage.Password]);

/**
 * Largest message a client may send before it is logged in (its password: PostgreSQL itself takes
 * at most 65,535 bytes); `max_message_bytes` applies once it is admitted.
 */
export const maxPreAuthMessageBytes = 64 * 1024;

/**
 * A server message larger than this that does not arrive in one chunk is forwarded in pieces as
 * its bytes arrive, not collected first: a session holds at most about this much of it (plus the
 * sockets' buffers), whatever the size of a row.
 */
const streamServerFramesAbove = 64 * 1024;

/** One client connection; see the module comment for its life. */
export class ClientConnection implements RegisteredSession {
  readonly #ctx: ConnectionContext;
  readonly #raw: Socket;
  #socket: Socket | TLSSocket;
  #tls = false;
  #state: State = 'startup';
  readonly #reader: FrameReader;
  #startup: StartupMessage | undefined;
  readonly #startupTimer: NodeJS.Timeout;
  readonly #abort = new AbortController();
  #session: OpenSession | undefined;
  #upstream: UpstreamSession | undefined;
  #upstreamTarget: UpstreamTarget | undefined;
  #grantId = '';
  #bytesIn = 0;
  #bytesOut = 0;
  /**
   * Queries, FunctionCalls and Syncs sent upstream minus ReadyForQuery received: each of them is
   * answered by exactly one ReadyForQuery, so this is > 0 while one is unanswered. It may overcount
   * (a Query sent while the server skips to the next Sync gets no answer), never undercount.
   */
  #pending = 0;
  /** A Parse, Bind or Execute went upstream since the last Sync: it may run with no Sync to end it. */
  #unsynced = false;
  /** Portcullis itself ends the session (grant ended, shutdown, recording failure, protocol error). */
  #endedByGateway = false;
  #loginOver = false;
  #clientSaidGoodbye = false;
  #upstreamBlocked = false;
  #recorderBlocked = false;
  #endReason = 'client closed the connection';

  constructor(socket: Socket, ctx: ConnectionContext) {
    this.#ctx = ctx;
    this.#raw = socket;
    this.remoteAddress = socket.remoteAddress;
    this.#socket = socket;
    this.#reader = new FrameReader({
      phase: 'startup',
      maxMessageSize: Math.min(ctx.maxMessageBytes, maxPreAuthMessageBytes),
    });
    socket.setNoDelay(true);
    this.#listen(socket);
    this.#startupTimer = setTimeout(
      () =>
        this.#fatal(
          '08P01',
          'terminating connection: the client did not complete the login in time',
          'startup timeout',
        ),
      ctx.startupTimeoutMs,
    );
    this.#startupTimer.unref();
  }

  /** The client's address, as the socket had it when the connection was accepted. */
  readonly remoteAddress: string | undefined;

  #endLogin(): void {
    if (this.#loginOver) return;
    this.#loginOver = true;
    this.#ctx.onLoginOver(this);
  }

  /** The grant of the session ('' before admission). */
  get grantId(): string {
    return this.#grantId;
  }

  /** Ends the session because its grant ended, the audit log failed or the gateway stops. */
  terminate(reason: TerminationReason): void {
    if (this.#closed()) return;
    this.#ctx.metrics.terminated(reason.kind);
    this.#fatal('57P01', terminationMessage(reason), reason.kind);
  }

  /** A method, not a field test, so the compiler does not assume the state across awaits. */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  // ------------------------------------------------------------------ sockets

  #listen(socket: Socket | TLSSocket): void {
    socket.on('data', this.#onClientData);
    socket.on('error', this.#onClientError);
    socket.on('close', this.#onClientClose);
  }

  readonly #onClientData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
      this.#process();
    } catch (error) {
      this.#onFailure(error);
    }
  };

  readonly #onClientError = (error: Error): void => {
    this.#ctx.log.debug({ err: error }, 'gateway client socket error');
    this.#close(`client connection error: ${error.message}`);
  };

  readonly #onClientClose = (): void => {
    this.#close(this.#clientSaidGoodbye ? 'client terminated the session' : this.#endReason);
  };

  #onFailure(error: unknown): void {
    if (isProtocolError(error)) {
      this.#ctx.metrics.protocolError();
      this.#fatal(error.sqlState, `invalid message: ${error.message}`, `protocol error: ${error.code}`);
      return;
    }
    this.#ctx.log.error({ err: error }, 'gateway connection failed');
    this.#fatal('XX000', 'internal error in the Portcullis gateway', 'internal error');
  }

  /** Sends a FATAL ErrorResponse (at a message boundary) and closes both sides. */
  #fatal(sqlState: string, message: string, why: string): void {
    if (this.#closed()) return;
    this.#endReason = why;
    this.#endedByGateway = true;
    const socket = this.#socket;
    // Inside a server message streamed to the client, an ErrorResponse would corrupt it: the
    // connection is then cut without one.
    const atBoundary = !this.#upstream?.reader.inFrame;
    if (!socket.destroyed && socket.writable && atBoundary) {
      socket.end(encodeErrorResponse({ severity: 'FATAL', code: sqlState, message }));
      // A client that does not read must not keep the socket (and its buffers) forever.
      setTimeout(() => socket.destroy(), 2000).unref();
    } else {
      socket.destroy();
    }
    this.#close(why);
  }

  #close(why: string): void {
    if (this.#closed()) return;
    const wasRelaying = this.#state === 'relay';
    this.#state = 'closed';
    this.#endLogin();
    clearTimeout(this.#startupTimer);
    this.#abort.abort();
    if (!this.#socket.writableEnded) this.#socket.destroy();
    this.#closeUpstream();
    const session = this.#session;
    if (session) {
      session.unregister();
      if (session.cancelProcessId !== null) this.#ctx.cancelKeys.release(session.cancelProcessId);
      const facts = session.facts;
      this.#ctx.recorder.record({
        type: 'gateway.session_ended',
        actor: facts.principalId,
        requestId: facts.requestId,
        grantId: facts.grantId,
        resourceId: facts.resourceId,
        reason: why,
        data: {
          session: facts.sessionId,
          bytesIn: this.#bytesIn,
          bytesOut: this.#bytesOut,
          durationMs: this.#ctx.now() - session.startedAt,
          relayed: wasRelaying,
          // The number of the session's last statement: a lost last batch shows as a gap.
          statements: session.recording.next - 1,
        },
      });
    }
    this.#ctx.onClosed(this);
  }

  #closeUpstream(): void {
    const upstream = this.#upstream;
    if (!upstream) return;
    this.#upstream = undefined;
    // A backend busy with a query would only notice the closed socket when the query ends. When
    // Portcullis ends the session the cancel is always sent (to an idle backend it is a no-op), so
    // no guess about the protocol state can leave a query running; when the client goes, only if
    // something may run and the client did not say goodbye.
    const busy = this.#pending > 0 || this.#unsynced;
    if (this.#upstreamTarget && (this.#endedByGateway || (busy && !this.#clientSaidGoodbye))) {
      this.#sendUpstreamCancel(this.#upstreamTarget, upstream.backendKey);
    }
    // end(), not destroy(): a Terminate the client sent last must still reach the server.
    upstream.socket.end();
    setTimeout(() => upstream.socket.destroy(), 2000).unref();
  }

  #sendUpstreamCancel(address: UpstreamAddress, key: UpstreamSession['backendKey']): void {
    openUpstreamSocket(address, this.#ctx.upstreamTimeoutMs)
      .then((socket) => {
        socket.on('error', () => {});
        socket.end(encodeCancelRequest(key.processId, key.secretKey));
      })
      .catch((error) => this.#ctx.log.warn({ err: error }, 'gateway could not send a cancel upstream'));
  }

  // ------------------------------------------------------------------ phases

  #process(): void {
    if (this.#state === 'startup') {
      while (this.#state === 'startup' && this.#reader.next()) this.#onStartupPacket();
    }
    if (this.#state === 'password') {
      if (this.#reader.next()) this.#onPassword();
    }
    if (this.#state === 'relay') this.#relayFromClient();
  }

  #onStartupPacket(): void {
    const packet = decodeStartupPacket(this.#reader.body());
    switch (packet.kind) {
      case 'ssl':
        this.#onSslRequest();
        return;
      case 'gssenc':
        this.#socket.write(encodeSslResponse(false));
        return;
      case 'cancel':
        this.#onCancelRequest(packet.processId, packet.secretKey);
        return;
      case 'startup':
        this.#onStartupMessage(packet);
        return;
    }
  }

  #onSslRequest(): void {
    if (this.#tls) {
      this.#fatal('08P01', 'invalid message: SSLRequest inside TLS', 'protocol error: repeated SSLRequest');
      return;
    }
    if (!this.#ctx.tls) {
      this.#socket.write(encodeSslResponse(false));
      return;
    }
    // INVARIANT: nothing sent before the handshake may be read as if it had come over TLS.
    if (this.#reader.bufferedBytes > 0) {
      this.#fatal('08P01', 'invalid message: data after SSLRequest', 'protocol error: data after SSLRequest');
      return;
    }
    const raw = this.#raw;
    raw.off('data', this.#onClientData);
    raw.off('close', this.#onClientClose);
    raw.write(encodeSslResponse(true));
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.#ctx.tls });
    this.#socket = secure;
    this.#tls = true;
    this.#listen(secure);
  }

  #onCancelRequest(processId: number, secretKey: Buffer): void {
    // As PostgreSQL does: no answer either way, the connection just closes.
    this.#state = 'closed';
    clearTimeout(this.#startupTimer);
    this.#socket.destroy();
    this.#endLogin();
    this.#ctx.onClosed(this);
    void this.#ctx.cancelKeys.resolve(processId, secretKey).then((resolution) => {
      this.#ctx.metrics.cancel(resolution.found);
      if (resolution.found !== 'here' && resolution.found !== 'shared') return;
      let address: UpstreamAddress;
      try {
        address = this.#ctx.upstreamTarget(resolution.target.resourceId);
      } catch (error) {
        this.#ctx.log.warn({ err: error }, 'gateway cannot route a cancel: its resource is gone');
        return;
      }
      this.#sendUpstreamCancel(address, resolution.target);
    });
  }

  #onStartupMessage(startup: StartupMessage): void {
    this.#startup = startup;
    const user = startup.parameters.get('user');
    if (!user) {
      this.#ctx.metrics.login('rejected');
      this.#fatal('28000', 'no PostgreSQL user name specified in startup packet', 'no user');
      return;
    }
    if (startup.parameters.has('replication')) {
      this.#ctx.metrics.login('rejected');
      this.#fatal('28000', 'replication connections are not served by the Portcullis gateway', 'replication');
      return;
    }
    if (!this.#tls && !(this.#ctx.allowPlaintextOnLoopback && isLoopbackAddress(this.#raw.remoteAddress))) {
      this.#ctx.metrics.login('rejected');
      this.#fatal(
        '28000',
        this.#ctx.tls
          ? 'the Portcullis gateway requires TLS: connect with sslmode=require'
          : 'the Portcullis gateway accepts tokens only over TLS, and it has no TLS certificate configured',
        'tls required',
      );
      return;
    }
    const negotiation = protocolNegotiation(startup);
    if (negotiation) this.#socket.write(negotiation);
    this.#socket.write(encodeAuthenticationCleartextPassword());
    this.#state = 'password';
  }

  #onPassword(): void {
    if (!startupReplyTypes.has(this.#reader.type)) {
      this.#fatal('08P01', 'invalid message: expected a password message', 'protocol error: no password');
      return;
    }
    const { password } = decodePasswordMessage(this.#reader.body());
    this.#state = 'admitting';
    this.#socket.pause();
    void this.#admit(password).catch((error) => this.#onFailure(error));
  }

  async #admit(password: string): Promise<void> {
    const parameters = this.#startup?.parameters ?? new Map<string, string>();
    const user = parameters.get('user') ?? '';
    const database = parameters.get('database') ?? user;
    const sourceIp = this.#raw.remoteAddress ?? null;
    const userAgent = parameters.get('application_name') ?? null;
    let result: Awaited<ReturnType<typeof admit>>;
    try {
      result = await admit(this.#ctx.admission, { user, database, password });
    } catch (error) {
      this.#ctx.log.error({ err: error }, 'gateway admission failed');
      this.#ctx.metrics.login('unavailable');
      this.#fatal('57P03', 'the Portcullis gateway cannot check access right now', 'admission error');
      return;
    }
    if (this.#closed()) return;
    if (!result.ok) {
      this.#ctx.metrics.login('refused');
      await this.#ctx.recorder
        .writeNow({
          type: 'gateway.admission_refused',
          actor: result.principalId ?? 'anonymous',
          severity: 'warning',
          sourceIp,
          userAgent,
          grantId: result.grantId,
          resourceId: this.#ctx.admission.resources.has(database) ? database : null,
          reason: result.reason,
          data: { user, database, tls: this.#tls },
        })
        .catch((error) => this.#ctx.log.warn({ err: error }, 'gateway could not audit a refused login'));
      this.#fatal(result.sqlState, result.message, `refused: ${result.reason}`);
      return;
    }
    const { grant } = result;
    const facts: SessionFacts = {
      sessionId: this.#ctx.newId(),
      principalId: result.principalId,
      grantId: grant.id,
      resourceId: grant.resourceId,
      requestId: grant.requestId,
    };
    const unavailable = () => {
      this.#ctx.metrics.login('unavailable');
      this.#fatal(
        '57P03',
        'the audit log cannot be written, so the Portcullis gateway admits no session',
        'audit log unavailable',
      );
    };
    if (!this.#ctx.recorder.writable) return unavailable();
    try {
      // Written before anything reaches the database: no session without its record.
      await this.#ctx.recorder.writeNow({
        type: 'gateway.session_started',
        actor: facts.principalId,
        sourceIp,
        userAgent,
        requestId: facts.requestId,
        grantId: facts.grantId,
        resourceId: facts.resourceId,
        data: {
          session: facts.sessionId,
          user,
          login: result.upstream.username,
          tls: this.#tls,
          expiresAt: grant.expiresAt,
          // What goes upstream with the login: `options` can set any setting (search_path, roles' GUCs).
          parameters: passedParameters(parameters),
        },
      });
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'gateway could not audit a session start');
      return unavailable();
    }
    if (this.#closed()) return;
    this.#grantId = grant.id;
    this.#session = {
      facts,
      tracker: new StatementTracker(this.#ctx.recordParameters),
      recording: this.#ctx.recorder.openSession(facts),
      startedAt: this.#ctx.now(),
      unregister: () => {},
      cancelProcessId: null,
    };
    const unregister = this.#ctx.registry.add(this, grant.expiresAt);
    const unlist = this.#ctx.directory.add(
      {
        id: facts.sessionId,
        grantId: facts.grantId,
        principalId: facts.principalId,
        resourceId: facts.resourceId,
        requestId: facts.requestId,
        clientAddress: sourceIp,
        applicationName: userAgent,
        tls: this.#tls,
        startedAt: this.#session.startedAt,
      },
      (reason) => this.terminate(reason),
    );
    this.#session.unregister = () => {
      unregister();
      unlist();
    };

    let upstream: UpstreamSession;
    try {
      this.#upstreamTarget = this.#ctx.upstreamTarget(grant.resourceId);
      upstream = await connectUpstream(
        this.#upstreamTarget,
        {
          username: result.upstream.username,
          password: result.upstream.password,
          database: result.target.database,
          parameters,
        },
        { timeoutMs: this.#ctx.upstreamTimeoutMs, signal: this.#abort.signal },
      );
    } catch (error) {
      if (this.#closed()) return;
      this.#ctx.metrics.login('upstream_failed');
      const sqlState = error instanceof UpstreamError ? error.sqlState : '08006';
      const message = error instanceof Error ? error.message : String(error);
      this.#fatal(
        /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState : '08006',
        `the database refused the session: ${message}`,
        'upstream refused',
      );
      return;
    }
    if (this.#closed()) {
      upstream.socket.destroy();
      return;
    }
    this.#upstream = upstream;
    upstream.reader.streamFramesAbove(streamServerFramesAbove);
    const key = this.#ctx.cancelKeys.issue(
      { resourceId: grant.resourceId, ...upstream.backendKey },
      grant.expiresAt,
    );
    this.#session.cancelProcessId = key.processId;
    clearTimeout(this.#startupTimer);
    const hello = Buffer.concat([
      encodeAuthenticationOk(),
      ...upstream.startupFrames,
      encodeBackendKeyData(key.processId, key.secretKey),
      upstream.readyForQuery,
    ]);
    this.#bytesOut += hello.length;
    this.#socket.write(hello);
    this.#state = 'relay';
    this.#reader.setMaxMessageSize(this.#ctx.maxMessageBytes);
    this.#endLogin();
    this.#ctx.metrics.login('admitted');
    upstream.socket.on('data', this.#onUpstreamData);
    upstream.socket.on('error', this.#onUpstreamError);
    upstream.socket.on('close', this.#onUpstreamClose);
    // Frames the server sent after its ReadyForQuery, already framed during the login.
    this.#relayFromUpstream();
    upstream.socket.resume();
    // Whatever the client pipelined behind its password.
    this.#process();
    this.#maybeResumeClient();
  }

  // ------------------------------------------------------------------ relay

  /** Client → upstream: record what must be recorded, then forward the bytes as they came. */
  #relayFromClient(): void {
    const upstream = this.#upstream;
    const session = this.#session;
    if (!upstream || !session) return;
    const reader = this.#reader;
    const out = new FrameRuns();
    while (reader.next()) {
      const type = reader.type;
      if (type === FrontendMessage.Query || type === FrontendMessage.FunctionCall) {
        const statement = session.tracker.observe(type, reader.body(), this.#ctx.now());
        if (statement) this.#ctx.recorder.recordStatement(session.recording, statement);
        this.#pending++;
      } else if (
        type === FrontendMessage.Parse ||
        type === FrontendMessage.Bind ||
        type === FrontendMessage.Execute
      ) {
        const statement = session.tracker.observe(type, reader.body(), this.#ctx.now());
        if (statement) this.#ctx.recorder.recordStatement(session.recording, statement);
        this.#unsynced = true;
      } else if (type === FrontendMessage.Sync) {
        session.tracker.sync();
        this.#pending++;
        this.#unsynced = false;
      } else if (type === FrontendMessage.CopyDone || type === FrontendMessage.CopyFail) {
        session.tracker.copyEnded();
      } else if (type === FrontendMessage.Terminate) {
        this.#clientSaidGoodbye = true;
      }
      out.add(reader.buffer, reader.offset, reader.end);
    }
    const pieces = out.take();
    if (pieces.length === 0) return;
    const ok = writeAll(upstream.socket, pieces);
    for (const piece of pieces) this.#bytesIn += piece.length;
    if (!ok && !this.#upstreamBlocked) {
      this.#upstreamBlocked = true;
      this.#socket.pause();
      upstream.socket.once('drain', () => {
        this.#upstreamBlocked = false;
        this.#maybeResumeClient();
      });
    }
    if (this.#ctx.recorder.congested && !this.#recorderBlocked) {
      // Fail closed under load: stop taking statements until their records are written.
      this.#recorderBlocked = true;
      this.#socket.pause();
      this.#ctx.recorder.onDrain(() => {
        this.#recorderBlocked = false;
        this.#maybeResumeClient();
      });
    }
  }

  #maybeResumeClient(): void {
    if (this.#state === 'relay' && !this.#upstreamBlocked && !this.#recorderBlocked) this.#socket.resume();
  }

  readonly #onUpstreamData = (chunk: Buffer): void => {
    const upstream = this.#upstream;
    if (!upstream) return;
    try {
      upstream.reader.push(chunk);
      this.#relayFromUpstream();
    } catch (error) {
      this.#ctx.log.warn({ err: error }, 'gateway: invalid data from the database');
      this.#fatal('08P01', 'invalid message from the database', 'upstream protocol error');
    }
  };

  /**
   * Upstream → client: whole frames, except that a large one is forwarded in pieces as it arrives
   * (streamServerFramesAbove); a FATAL is added only at a boundary (see #fatal).
   */
  #relayFromUpstream(): void {
    const upstream = this.#upstream;
    if (!upstream) return;
    const reader = upstream.reader;
    const tracker = this.#session?.tracker;
    const out = new FrameRuns();
    while (reader.next()) {
      const type = reader.type;
      if (reader.continued) {
        // a later piece of a large message, forwarded as it came
      } else if (type === BackendMessage.ReadyForQuery) {
        if (this.#pending > 0) this.#pending--;
        tracker?.serverSaid(type, reader.buffer[reader.bodyOffset]);
      } else if (
        type === BackendMessage.ErrorResponse ||
        type === BackendMessage.CopyInResponse ||
        type === BackendMessage.CopyBothResponse ||
        ((type === BackendMessage.ParseComplete || type === BackendMessage.BindComplete) &&
          tracker?.awaitingAnswers)
      ) {
        // Only what the server accepted becomes a statement or portal the Execute records name.
        tracker?.serverSaid(type);
      }
      out.add(reader.buffer, reader.offset, reader.end);
    }
    const pieces = out.take();
    if (pieces.length === 0) return;
    for (const piece of pieces) this.#bytesOut += piece.length;
    if (!writeAll(this.#socket, pieces)) {
      upstream.socket.pause();
      this.#socket.once('drain', () => this.#upstream?.socket.resume());
    }
  }

  readonly #onUpstreamError = (error: Error): void => {
    this.#ctx.log.debug({ err: error }, 'gateway upstream socket error');
    this.#endUpstreamGone(`database connection error: ${error.message}`);
  };

  readonly #onUpstreamClose = (): void => {
    this.#endUpstreamGone('the database closed the connection');
  };

  /** The server went away: whatever it sent (often its own FATAL) has been forwarded; end the client. */
  #endUpstreamGone(why: string): void {
    if (this.#state !== 'relay') return;
    this.#upstream = undefined;
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 2000).unref();
    // After the client's Terminate the server closing is the expected answer, whichever close
    // reaches the gateway first.
    this.#close(this.#clientSaidGoodbye ? 'client terminated the session' : why);
  }
}

/** The startup parameters passed upstream (all but user, database and `_pq_.` protocol options). */
function passedParameters(parameters: ReadonlyMap<string, string>): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const [name, value] of parameters) {
    if (name !== 'user' && name !== 'database' && !isProtocolOption(name)) passed[name] = value;
  }
  return passed;
}

/** One write, or a corked batch that leaves as one writev. */
function writeAll(socket: Socket | TLSSocket, pieces: readonly Buffer[]): boolean {
  if (pieces.length === 1) return socket.write(pieces[0] as Buffer);
  socket.cork();
  let ok = true;
  for (const piece of pieces) ok = socket.write(piece);
  socket.uncork();
  return ok;
}

/**
 * Collects frames to forward untouched: adjacent frames of one chunk go out as one slice of it, so
 * a chunk of many small messages is one write, not one per message.
 */
class FrameRuns {
  readonly #pieces: Buffer[] = [];
  #buffer: Buffer | undefined;
  #start = 0;
  #end = 0;

  add(buffer: Buffer, start: number, end: number): void {
    if (buffer === this.#buffer && start === this.#end) {
      this.#end = end;
      return;
    }
    if (this.#buffer) this.#pieces.push(this.#buffer.subarray(this.#start, this.#end));
    this.#buffer = buffer;
    this.#start = start;
    this.#end = end;
  }

  take(): Buffer[] {
    if (this.#buffer) this.#pieces.push(this.#buffer.subarray(this.#start, this.#end));
    this.#buffer = undefined;
    return this.#pieces;
  }
}
