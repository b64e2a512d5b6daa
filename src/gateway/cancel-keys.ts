/**
 * Cancel routing. Each gateway session gives its client the gateway's own BackendKeyData (a random
 * process id and secret), never the upstream's; a CancelRequest carrying that key is turned into
 * the upstream's CancelRequest, sent on a short connection to the server that holds the backend.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { UpstreamAddress } from './upstream-connection.js';

export interface CancelTarget {
  readonly address: UpstreamAddress;
  readonly processId: number;
  readonly secretKey: Buffer;
}

export interface GatewayKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

/** The gateway keys of open sessions and where each one's cancel must go. */
export class CancelKeys {
  readonly #entries = new Map<number, { secretKey: Buffer; target: CancelTarget }>();

  /** A fresh key for a session; `release` it when the session ends. */
  issue(target: CancelTarget): GatewayKey {
    let processId: number;
    do processId = randomInt(1, 0x7fff_ffff);
    while (this.#entries.has(processId));
    const secretKey = randomBytes(4);
    this.#entries.set(processId, { secretKey, target });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.#entries.delete(processId);
  }

  /** The upstream target for a client's CancelRequest, or undefined (unknown key or wrong secret). */
  resolve(processId: number, secretKey: Buffer): CancelTarget | undefined {
    const entry = this.#entries.get(processId);
    if (!entry || entry.secretKey.length !== secretKey.length) return undefined;
    return timingSafeEqual(entry.secretKey, secretKey) ? entry.target : undefined;
  }
}
