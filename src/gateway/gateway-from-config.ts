/**
 * Builds the gateway from the loaded configuration and the services it needs, for the composition
 * root: upstream addresses from each resource's admin URL, the access token check from the token
 * service, live grants and upstream credentials from the access service, records into the store.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GatewayEndpoint } from '../app/gateway-credentials.js';
import type { Store } from '../app/ports.js';
import type { ConfiguredResource, GatewayConfig } from '../config/load.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { channelBindingOf } from '../postgres/auth-policy.js';
import { adminAddress, postgresTargetOf } from '../provisioners/postgres-target.js';
import { unbracketedHost } from '../text/postgres-url.js';
import type { AdmissionDeps } from './admission.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { type GatewayLog, PostgresGateway } from './postgres-gateway.js';
import type { UpstreamAddress, UpstreamTarget } from './upstream-connection.js';

export interface GatewayFromConfigDeps {
  readonly config: GatewayConfig;
  readonly resources: ReadonlyMap<string, ConfiguredResource>;
  readonly verifyAccessToken: AdmissionDeps['verifyAccessToken'];
  readonly upstreamCredentials: AdmissionDeps['upstreamCredentials'];
  readonly isGrantLive: (grantId: string) => Promise<boolean>;
  readonly store: Pick<Store, 'transaction' | 'ephemeral'>;
  readonly clock: Clock;
  readonly log: GatewayLog;
  readonly metrics?: GatewayMetrics;
}

/**
 * libpq's sslmode → how the gateway reaches the server. prefer/allow fall back to plain TCP; as in
 * libpq, `require` with a root certificate file checks the chain (verify-ca).
 */
function upstreamTls(sslMode: string | null, hasRootCert: boolean): UpstreamAddress['tls'] {
  if (sslMode === 'require') return hasRootCert ? 'verify-ca' : 'require';
  if (sslMode === 'verify-ca' || sslMode === 'verify-full') return sslMode;
  return 'disable';
}

/**
 * The upstream target of a resource, read once: a CA file that cannot be read, or a cleartext
 * password allowed to a server whose certificate is not checked, fails at start-up.
 */
export function upstreamTargetOf(resource: ConfiguredResource): UpstreamTarget {
  const target = postgresTargetOf(resource);
  const address = adminAddress(target);
  const tls = upstreamTls(address.sslMode, address.sslRootCert !== null);
  const acceptedAuth = new Set(target.gatewayUpstreamAuth);
  const channelBinding = channelBindingOf(address.channelBinding, `Resource ${resource.id}'s admin URL`);
  if (channelBinding === 'require' && tls === 'disable') {
    throw new PortcullisError(
      'config_invalid',
      `Resource ${resource.id}: channel_binding=require needs TLS to the server (an sslmode of require or stricter)`,
    );
  }
  if (acceptedAuth.has('password') && tls !== 'verify-ca' && tls !== 'verify-full') {
    throw new PortcullisError(
      'config_invalid',
      `Resource ${resource.id}: gateway_upstream_auth allows a cleartext password, which needs an admin URL with sslmode=verify-ca or verify-full (anyone on the path could ask for it)`,
    );
  }
  if (tls === 'disable' || address.sslRootCert === null)
    return { host: address.host, port: address.port, tls, acceptedAuth, channelBinding };
  let ca: string;
  try {
    ca = readFileSync(address.sslRootCert, 'utf8');
  } catch (error) {
    throw new PortcullisError(
      'config_invalid',
      `Resource ${resource.id}: the admin URL's sslrootcert ${address.sslRootCert} cannot be read`,
      {},
      { cause: error },
    );
  }
  return { host: address.host, port: address.port, tls, ca, acceptedAuth, channelBinding };
}

function adminAddressOrUndefined(resource: ConfiguredResource): unknown {
  try {
    return adminAddress(postgresTargetOf(resource));
  } catch {
    return undefined;
  }
}

export function gatewayFromConfig(deps: GatewayFromConfigDeps): PostgresGateway {
  const { config, resources, clock } = deps;
  const targets = new Map<string, UpstreamTarget>();
  for (const resource of resources.values()) {
    if (resource.kind !== 'postgres' || !resource.postgres) continue;
    // A resource the gateway cannot reach (a unix-socket admin URL) is refused when used, not here.
    if (adminAddressOrUndefined(resource) === undefined) continue;
    targets.set(resource.id, upstreamTargetOf(resource));
  }
  return new PostgresGateway(
    {
      host: config.host,
      port: config.port,
      tls: config.tls ? { cert: config.tls.cert.reveal(), key: config.tls.key.reveal() } : null,
      allowPlaintextOnLoopback: config.allowPlaintextOnLoopback,
      recordParameters: config.recordParameters,
      maxMessageBytes: config.maxMessageBytes,
      maxConnections: config.maxConnections,
      maxLoginsPerAddress: config.maxLoginsPerAddress,
      livenessCheckIntervalMs: config.livenessCheckIntervalSeconds * 1000,
    },
    {
      admission: {
        verifyAccessToken: deps.verifyAccessToken,
        upstreamCredentials: deps.upstreamCredentials,
        resources,
        now: () => clock.now(),
      },
      isGrantLive: deps.isGrantLive,
      sessionStore: deps.store.ephemeral,
      writeAudit: (events) =>
        deps.store.transaction(async (tx) => {
          await tx.audit.appendAll(events);
        }),
      upstreamTarget: (resourceId) => {
        const target = targets.get(resourceId);
        if (target) return target;
        const resource = resources.get(resourceId);
        if (!resource) throw new Error(`no resource ${resourceId}`);
        return upstreamTargetOf(resource);
      },
      clock,
      newId: randomUUID,
      log: deps.log,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    },
  );
}

const wildcardHosts = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * Where people reach the gateway: `public_host`/`public_port` when set; else the listening host
 * (the public URL's host when the gateway listens on every interface) and the bound port.
 */
export function publicGatewayEndpoint(
  config: GatewayConfig,
  publicUrl: string,
  boundPort: number | undefined,
): GatewayEndpoint {
  const host =
    config.publicHost ?? (wildcardHosts.has(config.host) ? new URL(publicUrl).hostname : config.host);
  return {
    host: unbracketedHost(host),
    port: config.publicPort ?? boundPort ?? config.port,
    tls: config.tls !== null,
  };
}
