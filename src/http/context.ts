import type { FastifyRequest } from 'fastify';
import type { AccessService } from '../app/access-service.js';
import type { BreakGlassService } from '../app/break-glass-service.js';
import type { GatewaySessions } from '../app/gateway-sessions.js';
import type { AuditRecord } from '../app/ports.js';
import type { PrincipalLocks } from '../app/principal-locks.js';
import type { Reconciler } from '../app/reconciler.js';
import type { ScimService } from '../app/scim-service.js';
import type { SessionService } from '../app/session-service.js';
import type { SshKeyCertification } from '../app/ssh-key-certification.js';
import type { SshSessionReports } from '../app/ssh-session-reports.js';
import type { RequestOrigin } from '../core/audit-event.js';
import { PortcullisError } from '../core/errors.js';
import type { PolicyDecision } from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';

/** What the HTTP edge needs from the rest of Portcullis; built by the composition root. */
/** What the hosts of `ssh` resources fetch; undefined answers mean "no such ssh resource". */
export interface SshHostMaterial {
  caPublicKey(resourceId: string): string | undefined;
  revocationList(resourceId: string): Promise<Buffer | undefined>;
}

export interface HttpDependencies {
  readonly access: AccessService;
  readonly sessions: SessionService;
  /** Open database-gateway sessions, on every replica. */
  readonly gatewaySessions: GatewaySessions;
  /** Reconciliation on demand (administrators). */
  readonly reconciler: Pick<Reconciler, 'runFor'>;
  /** Administrators lock and unlock principals. */
  readonly principalLocks: PrincipalLocks;
  /** JWKS of the token-signing keys (current and still-published). */
  readonly tokenJwks: () => Promise<{ keys: Record<string, unknown>[] }>;
  /** Public material of `ssh` resources, for their hosts. */
  readonly ssh?: SshHostMaterial;
  /** Certificates of `ssh` grants for keys their holders made. */
  readonly sshKeys?: Pick<SshKeyCertification, 'certify'>;
  /** Session reports of `portcullis ssh-guard` on the hosts of `ssh` resources. */
  readonly sshReports?: Pick<SshSessionReports, 'authenticate' | 'record'>;
  /** Public keys that sign audit checkpoints, for offline verification. */
  readonly auditJwks: () => Promise<{ keys: Record<string, unknown>[] }>;
  /** RFC 7662 response for a Portcullis access token. */
  readonly introspect: (token: string) => Promise<Record<string, unknown>>;
  /** Streams the audit export (JSON Lines) into `sink`. */
  readonly exportAudit: (sink: NodeJS.WritableStream) => Promise<void>;
  readonly readAudit: (afterSeq: number, limit: number) => Promise<readonly AuditRecord[]>;
  /** The sequence number of the newest audit event. */
  readonly auditHead: () => Promise<number>;
  /** Policy decision for `view_audit`. */
  readonly mayViewAudit: (principal: Principal) => PolicyDecision;
  readonly recordAuditView: (principal: Principal, from: RequestOrigin, what: string) => Promise<void>;
  /** Prometheus text exposition. */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly readiness: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
  /** SCIM provisioning at /scim/v2; null when no SCIM client is configured. */
  readonly scim?: { readonly service: ScimService; readonly baseUrl: string } | null;
  readonly bodyLimitBytes: number;
  readonly trustProxy: boolean | string[];
  readonly logger: boolean | object;
  /** Break-glass; absent when no emergency account is configured. */
  readonly breakGlass?: BreakGlassService;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function originOf(request: FastifyRequest): RequestOrigin {
  const client = request.headers['x-portcullis-client'];
  return {
    sourceIp: request.ip ?? null,
    userAgent:
      typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'].slice(0, 256) : null,
    channel: client === 'cli' ? 'cli' : 'api',
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new PortcullisError('unauthenticated');
  return request.principal;
}
