/**
 * The PostgreSQL wire-protocol gateway: a TCP listener whose connections (client-connection.ts)
 * admit only live grants, log in upstream as the grant's own login, record every statement and end
 * when the grant ends. See docs/gateway.md.
 *
 * @example
 * const gateway = new PostgresGateway(settings, { admission, isGrantLive, writeAudit, clock, newId, log, upstreamTarget });
 * const port = await gateway.listen();
 * access.onGrantEnded = (grantId, why) => gateway.endGrant(grantId, why);
 * // …
 * await gateway.close();
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Clock } from '../core/clock.js';
import type { AdmissionDeps } from './admission.js';
import { CancelKeys, type CancelKeysOptions } from './cancel-keys.js';
import { ClientConnection, type ConnectionContext, type GatewayLog } from './client-connection.js';
import { type GatewayMetrics, type GatewayState, noGatewayMetrics } from './gateway-metrics.js';
import { encodeErrorResponse } from './protocol/index.js';
import { SessionDirectory, type SessionDirectoryOptions } from './session-directory.js';
import { SessionRegistry } from './session-registry.js';
import { type AuditBatchWriter, StatementRecorder } from './statement-recorder.js';
import type { UpstreamTarget } from './upstream-connection.js';

export type { GatewayLog } from './client-connection.js';

export interface PostgresGatewaySettings {
  readonly host: string;
  readonly port: number;
  /** PEM texts; null serves without TLS. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly allowPlaintextOnLoopback: boolean;
  readonly recordParameters: boolean;
  readonly maxMessageBytes: number;
  readonly livenessCheckIntervalMs: number;
  /** Client connections at once, logins in progress included; more are closed at once (default 10,000). */
  readonly maxConnections?: number;
  /** Logins in progress at once from one client address; more are refused with 53300 (default 256). */
  readonly maxLoginsPerAddress?: number;
  /** Time a client has from connecting to being logged in (default 10 s). */
  readonly startupTimeoutMs?: number;
  /** Time allowed to connect and log in upstream (default 10 s). */
  readonly upstreamTimeoutMs?: number;
}

export interface PostgresGatewayDeps {
  readonly admission: AdmissionDeps;
  readonly isGrantLive: (grantId: string) => Promise<boolean>;
  /**
   * Where replicas publish their open sessions, take requests to end one (session-directory.ts)
   * and share their cancel keys (cancel-keys.ts).
   */
  readonly sessionStore: SessionDirectoryOptions['store'] & CancelKeysOptions['store'];
  /** One store transaction per batch, an audit append per event. */
  readonly writeAudit: AuditBatchWriter;
  readonly upstreamTarget: (resourceId: string) => UpstreamTarget;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly log: GatewayLog;
  /** Counters for monitoring (default: none). */
  readonly metrics?: GatewayMetrics;
}

/** The gateway; see the module comment. */
export class PostgresGateway {
  readonly #settings: PostgresGatewaySettings;
  readonly #server: Server;
  readonly #connections = new Set<ClientConnection>();
  /** Logins in progress by client address. */
  readonly #logins = new Map<string, number>();
  readonly #maxLoginsPerAddress: number;
  readonly #registry: SessionRegistry;
  readonly #directory: SessionDirectory;
  readonly #recorder: StatementRecorder;
  readonly #context: ConnectionContext;
  #port = 0;
  #closing = false;

  constructor(settings: PostgresGatewaySettings, deps: PostgresGatewayDeps) {
    this.#settings = settings;
    let tls: SecureContext | null = null;
    if (settings.tls) tls = createSecureContext({ cert: settings.tls.cert, key: settings.tls.key });
    this.#registry = new SessionRegistry({
      clock: deps.clock,
      isGrantLive: deps.isGrantLive,
      livenessCheckIntervalMs: settings.livenessCheckIntervalMs,
      onError: (error) => deps.log.warn({ err: error }, 'gateway liveness check failed'),
    });
    this.#directory = new SessionDirectory({
      store: deps.sessionStore,
      replica: deps.newId(),
      clock: deps.clock,
      checkIntervalMs: settings.livenessCheckIntervalMs,
      onError: (error) => deps.log.warn({ err: error }, 'gateway session directory failed'),
    });
    this.#recorder = new StatementRecorder({
      write: deps.writeAudit,
      now: () => deps.clock.now(),
      onUnwritable: (error) => {
        deps.log.error({ err: error }, 'gateway: the audit log cannot be written; ending every session');
        this.#registry.terminateAll({ kind: 'recording_failed' });
      },
      onError: (error) => deps.log.warn({ err: error }, 'gateway: writing statement records failed'),
    });
    this.#context = {
      tls,
      allowPlaintextOnLoopback: settings.allowPlaintextOnLoopback,
      recordParameters: settings.recordParameters,
      maxMessageBytes: settings.maxMessageBytes,
      startupTimeoutMs: settings.startupTimeoutMs ?? 10_000,
      upstreamTimeoutMs: settings.upstreamTimeoutMs ?? 10_000,
      admission: deps.admission,
      recorder: this.#recorder,
      registry: this.#registry,
      directory: this.#directory,
      cancelKeys: new CancelKeys({
        store: deps.sessionStore,
        now: () => deps.clock.now(),
        onError: (error) => deps.log.warn({ err: error }, 'gateway: sharing a cancel key failed'),
      }),
      upstreamTarget: deps.upstreamTarget,
      newId: deps.newId,
      now: () => deps.clock.now(),
      log: deps.log,
      metrics: deps.metrics ?? noGatewayMetrics,
      onClosed: (connection) => this.#connections.delete(connection),
      onLoginOver: (connection) => {
        const address = connection.remoteAddress ?? '';
        const left = (this.#logins.get(address) ?? 1) - 1;
        if (left > 0) this.#logins.set(address, left);
        else this.#logins.delete(address);
      },
    };
    this.#maxLoginsPerAddress = settings.maxLoginsPerAddress ?? 256;
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    // Beyond this Node closes a new connection as soon as it is accepted, before any byte is read.
    this.#server.maxConnections = settings.maxConnections ?? 10_000;
    // Node closes a connection beyond maxConnections unread; it still shows on /metrics.
    this.#server.on('drop', () => this.#context.metrics.login('throttled'));
    this.#server.on('error', (error) => deps.log.error({ err: error }, 'gateway listener error'));
  }

  /** The port listened on (after {@link listen}). */
  get port(): number {
    return this.#port;
  }

  /** Open client connections (sessions and logins in progress). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** What monitoring reads at scrape time. */
  state(): GatewayState {
    return {
      connections: this.#connections.size,
      sessions: this.#registry.size,
      statementsRecorded: this.#recorder.recordedStatements,
      recordingQueued: this.#recorder.queued,
      recordingWritable: this.#recorder.writable,
    };
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#settings.host, port: this.#settings.port, backlog: 2048 }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === 'object' && address ? address.port : this.#settings.port;
    this.#registry.start();
    this.#directory.start();
    return this.#port;
  }

  /** A grant ended on this replica: its sessions are closed now (wire to `onGrantEnded`). */
  endGrant(grantId: string, why: 'expired' | 'revoked' | 'released'): void {
    this.#registry.endGrant(grantId, why);
  }

  /** This replica's open sessions, and ending one of them (src/app/gateway-sessions.ts). */
  get directory(): SessionDirectory {
    return this.#directory;
  }

  /** Writes every queued record now (tests and shutdown). */
  flushRecords(): Promise<void> {
    return this.#recorder.flush();
  }

  /** Stops listening, ends every session (FATAL 57P01) and writes the remaining records. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#registry.terminateAll({ kind: 'shutdown' });
    for (const connection of [...this.#connections]) connection.terminate({ kind: 'shutdown' });
    this.#registry.stop();
    await this.#directory.stop();
    await closed;
    await this.#recorder.close();
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    // Until the connection has its own handler, an early reset must not become an uncaught error.
    socket.on('error', () => {});
    const address = socket.remoteAddress ?? '';
    const logins = this.#logins.get(address) ?? 0;
    if (logins >= this.#maxLoginsPerAddress) {
      // Unauthenticated connections from one address cannot pile up (each may hold a message).
      this.#context.metrics.login('throttled');
      socket.end(
        encodeErrorResponse({
          severity: 'FATAL',
          code: '53300',
          message: 'too many logins in progress from this address; try again later',
        }),
      );
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    this.#logins.set(address, logins + 1);
    this.#connections.add(new ClientConnection(socket, this.#context));
  }
}
