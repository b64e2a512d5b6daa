/**
 * Protocol negotiation as a 3.0 server owes it: a client asking for a newer minor version of
 * protocol 3, or sending `_pq_.` protocol options, is told with NegotiateProtocolVersion which
 * version it gets (3.0) and which options were not recognised (all of them), before
 * authentication, as PostgreSQL does. Both the gateway and `portcullis proxy` answer so.
 */
import { encodeNegotiateProtocolVersion } from './encode.js';
import type { StartupMessage } from './messages.js';

/** Whether a startup parameter is a protocol option (`_pq_.` prefix) rather than a setting. */
export function isProtocolOption(name: string): boolean {
  return name.startsWith('_pq_.');
}

/** The NegotiateProtocolVersion message this client must get first, or undefined when none is due. */
export function protocolNegotiation(startup: StartupMessage): Buffer | undefined {
  const options = [...startup.parameters.keys()].filter(isProtocolOption);
  if ((startup.protocolVersion & 0xffff) === 0 && options.length === 0) return undefined;
  return encodeNegotiateProtocolVersion(0, options);
}
