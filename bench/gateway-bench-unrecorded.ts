/**
 * A DIAGNOSTIC second gateway for the gateway benchmark (target `gateway-norec`): built by the same
 * factory as the real one (`gatewayFromConfig`) over the same running Portcullis — same admission,
 * upstream login, relay and recorder — except that its `gateway.statements` events are dropped
 * before the store instead of being appended to the audit chain (admission, session start and end
 * are still written). It separates the relay's cost from the recording's; it is not a product
 * configuration and its figures are not the gateway's.
 */
import type { Transaction } from '../src/app/ports.js';
import { systemClock } from '../src/core/clock.js';
import { gatewayFromConfig, type PostgresGateway } from '../src/gateway/index.js';
import type { RunningPortcullis } from '../src/server/start.js';

const silent = { warn() {}, error() {}, debug() {} };

export async function startUnrecordedGateway(portcullis: RunningPortcullis): Promise<PostgresGateway> {
  const { config, tokens, access, store } = portcullis;
  if (!config.gateway) throw new Error('the configuration has no gateway section');
  const gateway = gatewayFromConfig({
    config: { ...config.gateway, port: 0 },
    resources: config.resources,
    verifyAccessToken: (token, now, options) => tokens.verifyAccessToken(token, now, options),
    upstreamCredentials: (grantId) => access.upstreamCredentials(grantId),
    isGrantLive: (grantId) => access.isGrantLive(grantId),
    store: {
      ephemeral: store.ephemeral,
      transaction: <T>(work: (tx: Transaction) => Promise<T>) =>
        store.transaction((tx) =>
          work({
            ...tx,
            audit: {
              append: (event, at) =>
                event.type === 'gateway.statements'
                  ? Promise.resolve(undefined as never)
                  : tx.audit.append(event, at),
              appendAll: (events) =>
                tx.audit.appendAll(events.filter((e) => e.event.type !== 'gateway.statements')),
            },
          }),
        ),
    },
    clock: systemClock,
    log: silent,
  });
  await gateway.listen();
  return gateway;
}
