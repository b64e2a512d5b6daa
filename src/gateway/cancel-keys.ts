/**
 * Cancel routing. Each gateway session gives its client the gateway's own BackendKeyData (a random
 * process id and secret), never the upstream's; a CancelRequest carrying that key is turned into
 * the upstream's CancelRequest, sent on a short connection to the server that holds the backend.
 *
 * A CancelRequest arrives on a new connection, which a load balancer may hand to a replica other
 * than the one holding the session. So every key is also put in the shared ephemeral store (kind
 * {@link cancelKeyKind}) in a form only a holder of the client's key can use: the row's key and an
 * AES-256-GCM key are both derived (HKDF-SHA-256) from the client's process id and secret, and the
 * value is the upstream key and resource id sealed with the latter. A replica that does not hold
 * the session finds the row, opens it and sends the cancel itself. Someone who reads the store
 * learns neither the upstream key nor which row belongs to which session.
 */
import {
  createCipheriv,
  createDecipheriv,
  hkdfSync,
  randomBytes,
  randomInt,
  timingSafeEqual,
} from 'node:crypto';
import type { EphemeralStore } from '../app/ports.js';

export const cancelKeyKind = 'gateway_cancel_key';

/** Where a cancel must go: the resource (its upstream address is configuration) and its backend. */
export interface CancelTarget {
  readonly resourceId: string;
  readonly processId: number;
  readonly secretKey: Buffer;
}

/** The key the gateway gives its client in BackendKeyData. */
export interface GatewayKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

/** How a CancelRequest was resolved: held here, found in the shared store, or not at all. */
export type CancelResolution =
  | { readonly found: 'here' | 'shared'; readonly target: CancelTarget }
  | { readonly found: 'unknown' | 'dropped' };

export interface CancelKeysOptions {
  readonly store: Pick<EphemeralStore, 'put' | 'peek' | 'take'>;
  readonly now: () => number;
  /** A store write or read failed: the cancel path degrades to this replica's own keys. */
  readonly onError: (error: unknown) => void;
  /**
   * Store look-ups under way at most; a CancelRequest for a key unknown here beyond that is
   * dropped, so a flood of made-up keys cannot turn into a flood of store reads.
   */
  readonly maxLookups?: number;
}

interface Entry {
  readonly key: GatewayKey;
  readonly target: CancelTarget;
  /** The key of its row in the store. */
  readonly rowKey: string;
  /** The store write; the row is taken back only after it has landed. */
  readonly shared: Promise<void>;
}

const sealVersion = 1;
const ivBytes = 12;
const tagBytes = 16;

/** The store row's key and the sealing key, both from the client's key; see the module comment. */
function derive(key: GatewayKey): { rowKey: string; sealKey: Buffer } {
  const material = Buffer.alloc(8);
  material.writeUInt32BE(key.processId >>> 0, 0);
  key.secretKey.copy(material, 4, 0, 4);
  const salt = 'portcullis gateway cancel key';
  const rowKey = Buffer.from(hkdfSync('sha256', material, salt, 'row', 32)).toString('base64url');
  const sealKey = Buffer.from(hkdfSync('sha256', material, salt, 'seal', 32));
  return { rowKey, sealKey };
}

function seal(target: CancelTarget, rowKey: string, sealKey: Buffer): string {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
  cipher.setAAD(Buffer.from(rowKey));
  const plain = JSON.stringify({
    r: target.resourceId,
    p: target.processId,
    s: target.secretKey.toString('base64'),
  });
  const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `${sealVersion}.${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')}`;
}

/** The target inside a row, or undefined when it does not open with this key or is malformed. */
function open(value: string, rowKey: string, sealKey: Buffer): CancelTarget | undefined {
  const [version, body] = value.split('.');
  if (version !== String(sealVersion) || body === undefined) return undefined;
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length <= ivBytes + tagBytes) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealKey, bytes.subarray(0, ivBytes));
    decipher.setAAD(Buffer.from(rowKey));
    decipher.setAuthTag(bytes.subarray(ivBytes, ivBytes + tagBytes));
    const plain = Buffer.concat([decipher.update(bytes.subarray(ivBytes + tagBytes)), decipher.final()]);
    const parsed = JSON.parse(plain.toString('utf8')) as { r?: unknown; p?: unknown; s?: unknown };
    if (typeof parsed.r !== 'string' || typeof parsed.p !== 'number' || typeof parsed.s !== 'string')
      return undefined;
    return { resourceId: parsed.r, processId: parsed.p, secretKey: Buffer.from(parsed.s, 'base64') };
  } catch {
    return undefined;
  }
}

/** The gateway keys of open sessions and where each one's cancel must go; see the module comment. */
export class CancelKeys {
  readonly #options: CancelKeysOptions;
  readonly #maxLookups: number;
  readonly #entries = new Map<number, Entry>();
  #lookups = 0;

  constructor(options: CancelKeysOptions) {
    this.#options = options;
    this.#maxLookups = options.maxLookups ?? 32;
  }

  /**
   * A fresh key for a session, shared with the other replicas until `expiresAt` (the grant's end:
   * the session cannot outlive it). `release` it when the session ends.
   */
  issue(target: CancelTarget, expiresAt: number): GatewayKey {
    let processId: number;
    do processId = randomInt(1, 0x7fff_ffff);
    while (this.#entries.has(processId));
    const key = { processId, secretKey: randomBytes(4) };
    const { rowKey, sealKey } = derive(key);
    const shared = this.#options.store
      .put(cancelKeyKind, rowKey, seal(target, rowKey, sealKey), expiresAt)
      .catch(this.#options.onError);
    this.#entries.set(processId, { key, target, rowKey, shared });
    return key;
  }

  release(processId: number): void {
    const entry = this.#entries.get(processId);
    if (!entry) return;
    this.#entries.delete(processId);
    void entry.shared
      .then(() => this.#options.store.take(cancelKeyKind, entry.rowKey, this.#options.now()))
      .catch(this.#options.onError);
  }

  /** Where a client's CancelRequest must go; see {@link CancelResolution}. */
  async resolve(processId: number, secretKey: Buffer): Promise<CancelResolution> {
    if (secretKey.length !== 4) return { found: 'unknown' };
    const entry = this.#entries.get(processId);
    if (entry && timingSafeEqual(entry.key.secretKey, secretKey))
      return { found: 'here', target: entry.target };
    // Otherwise another replica may have issued the same process id with another secret.
    if (this.#lookups >= this.#maxLookups) return { found: 'dropped' };
    this.#lookups++;
    try {
      const { rowKey, sealKey } = derive({ processId, secretKey });
      const value = await this.#options.store.peek(cancelKeyKind, rowKey, this.#options.now());
      const target = value === undefined ? undefined : open(value, rowKey, sealKey);
      return target ? { found: 'shared', target } : { found: 'unknown' };
    } catch (error) {
      this.#options.onError(error);
      return { found: 'unknown' };
    } finally {
      this.#lookups--;
    }
  }
}
