/**
 * Builds the gateway from the loaded configuration and the services it needs, for the composition
 * root: upstream addresses from each resource's admin URL, the access token check from the token
 * service, live grants and upstream credentials from the access service, records into the store.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from '../app/ports.js';
import type { ConfiguredResource, GatewayConfig } from '../config/load.js';
import type { Clock } from '../core/clock.js';
import { adminAddress, postgresTargetOf } from '../provisioners/postgres-target.js';
import type { AdmissionDeps } from './admission.js';
import { type GatewayLog, PostgresGateway } from './postgres-gateway.js';
import type { UpstreamAddress } from './upstream-connection.js';

export interface GatewayFromConfigDeps {
  readonly config: GatewayConfig;
  readonly resources: ReadonlyMap<string, ConfiguredResource>;
  readonly verifyAccessToken: AdmissionDeps['verifyAccessToken'];
  readonly upstreamCredentials: AdmissionDeps['upstreamCredentials'];
  readonly isGrantLive: (grantId: string) => Promise<boolean>;
  readonly store: Pick<Store, 'transaction'>;
  readonly clock: Clock;
  readonly log: GatewayLog;
}

/** libpq's sslmode → how the gateway reaches the server (prefer/allow fall back to plain TCP). */
function upstreamTls(sslMode: string | null): UpstreamAddress['tls'] {
  if (sslMode === 'require') return 'require';
  if (sslMode === 'verify-ca' || sslMode === 'verify-full') return 'verify-full';
  return 'disable';
}

export function gatewayFromConfig(deps: GatewayFromConfigDeps): PostgresGateway {
  const { config, resources, clock } = deps;
  return new PostgresGateway(
    {
      host: config.host,
      port: config.port,
      tls: config.tls ? { cert: config.tls.cert.reveal(), key: config.tls.key.reveal() } : null,
      allowPlaintextOnLoopback: config.allowPlaintextOnLoopback,
      recordParameters: config.recordParameters,
      maxMessageBytes: config.maxMessageBytes,
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
      writeAudit: (events) =>
        deps.store.transaction(async (tx) => {
          await tx.audit.appendAll(events);
        }),
      upstreamAddress: (resourceId) => {
        const resource = resources.get(resourceId);
        if (!resource) throw new Error(`no resource ${resourceId}`);
        const address = adminAddress(postgresTargetOf(resource));
        return { host: address.host, port: address.port, tls: upstreamTls(address.sslMode) };
      },
      clock,
      newId: randomUUID,
      log: deps.log,
    },
  );
}
