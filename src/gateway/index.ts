/**
 * The database gateway's public surface: the gateway itself and the factory the composition root
 * uses. Connections, admission, recording and termination are internals.
 */
export {
  type GatewayFromConfigDeps,
  gatewayFromConfig,
  publicGatewayEndpoint,
} from './gateway-from-config.js';
export type { CancelOutcome, GatewayMetrics, GatewayState, LoginOutcome } from './gateway-metrics.js';
export {
  type GatewayLog,
  PostgresGateway,
  type PostgresGatewayDeps,
  type PostgresGatewaySettings,
} from './postgres-gateway.js';
