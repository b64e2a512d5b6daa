/**
 * Signed checkpoints of the audit chain. A checkpoint says "the chain's head at `seq` was
 * `head_hash`", signed with an Ed25519 audit key, so anyone with the public key can tell that
 * nothing up to `seq` was rewritten since, even by someone who recomputed every hash.
 *
 * The signature is raw Ed25519 (RFC 8032, 64 bytes, base64url) over the UTF-8 bytes of the
 * canonical JSON body `{"at":…,"head_hash":"…","kid":"…","seq":…}`; signing and verifying use
 * node:crypto with Ed25519 key objects, or WebCrypto for a non-extractable private CryptoKey (the
 * key store's: Node 24 deprecates turning one into a KeyObject, DEP0204).
 */
import { createPublicKey, KeyObject, sign, verify, webcrypto } from 'node:crypto';
import type { JWK } from 'jose';
import type { AuditCheckpoint, AuditReader } from '../app/ports.js';
import { canonicalJson } from './canonical.js';

/** The audit signing key, wherever it is kept (see src/tokens for the key store). */
export interface AuditSigningKey {
  readonly kid: string;
  readonly privateKey: webcrypto.CryptoKey | KeyObject;
  readonly publicJwk: JWK;
}

/** The signed part of a checkpoint. */
export type CheckpointBody = Pick<AuditCheckpoint, 'seq' | 'at' | 'headHash' | 'kid'>;

/** The exact bytes a checkpoint signature covers. */
export function checkpointSigningInput(body: CheckpointBody): Buffer {
  return Buffer.from(
    canonicalJson({ seq: body.seq, at: body.at, head_hash: body.headHash, kid: body.kid }),
    'utf8',
  );
}

/** Signs the head `{ seq, hash }` at time `at`. */
export function signCheckpoint(
  head: { readonly seq: number; readonly hash: string },
  at: number,
  key: { readonly kid: string; readonly privateKey: KeyObject },
): AuditCheckpoint {
  const body: CheckpointBody = { seq: head.seq, at, headHash: head.hash, kid: key.kid };
  const signature = sign(null, checkpointSigningInput(body), key.privateKey).toString('base64url');
  return { ...body, signature };
}

/** Whether `checkpoint`'s signature is valid under `publicKey` (an Ed25519 public KeyObject). */
export function checkpointSignatureValid(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  const signature = Buffer.from(checkpoint.signature, 'base64url');
  if (signature.length !== 64) return false;
  return verify(null, checkpointSigningInput(checkpoint), publicKey, signature);
}

/** An Ed25519 public KeyObject from a JWK; throws if the JWK is anything else. */
export function ed25519PublicKey(jwk: JWK): KeyObject {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new Error(`key ${jwk.kid ?? '(no kid)'} is not an Ed25519 public key (kty OKP, crv Ed25519)`);
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
}

/**
 * Signs bytes with an audit key: node:crypto for a KeyObject, WebCrypto for a non-extractable
 * CryptoKey (whose first signature is checked against its public JWK instead).
 * @throws Error when the key is not an Ed25519 private key matching `publicJwk`.
 */
export function auditKeySigner(key: AuditSigningKey): (input: Buffer) => Promise<Buffer> {
  const notEd25519 = () => new Error(`audit key ${key.kid} is not an Ed25519 private key`);
  const mismatch = () => new Error(`audit key ${key.kid}: the private key does not match its public JWK`);
  const publicKey = ed25519PublicKey(key.publicJwk);
  const privateKey = key.privateKey;
  if (privateKey instanceof KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw notEd25519();
    if (createPublicKey(privateKey).export({ format: 'jwk' }).x !== key.publicJwk.x) throw mismatch();
    return async (input) => sign(null, input, privateKey);
  }
  if (privateKey.type !== 'private' || privateKey.algorithm.name !== 'Ed25519') throw notEd25519();
  return async (input) => {
    const signature = Buffer.from(await webcrypto.subtle.sign('Ed25519', privateKey, input));
    if (!verify(null, input, publicKey, signature)) throw mismatch();
    return signature;
  };
}

/** When a checkpoint is due. */
export interface CheckpointSchedule {
  /** Checkpoint once this many events are unsigned. Default 1000. */
  readonly everyEvents?: number;
  /** Checkpoint when the last one is this old and events are unsigned. Default 60. */
  readonly everySeconds?: number;
}

/**
 * Writes a signed checkpoint of the current head when it is due: there are events since the last
 * checkpoint and either {@link CheckpointSchedule.everyEvents} of them or
 * {@link CheckpointSchedule.everySeconds} have passed (the first checkpoint is due at once).
 * Replicas may race; the store keeps one checkpoint per sequence and both would sign the same head.
 *
 * @example
 *   const checkpointer = new AuditCheckpointer(store.auditLog, auditKey, { everyEvents: 1000, everySeconds: 60 });
 *   setInterval(() => checkpointer.checkpointIfDue(clock.now()).catch(log.error), 5000);
 */
export class AuditCheckpointer {
  private readonly signBytes: (input: Buffer) => Promise<Buffer>;
  private readonly everyEvents: number;
  private readonly everyMs: number;

  /**
   * @throws Error when the key is not an Ed25519 private key matching `publicJwk` (a CryptoKey that
   *   cannot be exported is checked against it with its first signature instead).
   */
  constructor(
    private readonly reader: AuditReader,
    private readonly key: AuditSigningKey,
    schedule: CheckpointSchedule = {},
  ) {
    this.signBytes = auditKeySigner(key);
    this.everyEvents = schedule.everyEvents ?? 1000;
    this.everyMs = (schedule.everySeconds ?? 60) * 1000;
    if (!(this.everyEvents >= 1) || !(this.everyMs > 0))
      throw new Error('checkpoint schedule must be positive');
  }

  /** Writes and returns a checkpoint if one is due at `now`, else undefined. */
  async checkpointIfDue(now: number): Promise<AuditCheckpoint | undefined> {
    const [head, last] = await Promise.all([this.reader.head(), this.reader.lastCheckpoint()]);
    const unsigned = head.seq - (last?.seq ?? 0);
    if (unsigned <= 0) return undefined;
    const due = last === undefined || unsigned >= this.everyEvents || now - last.at >= this.everyMs;
    return due ? this.write(head, now) : undefined;
  }

  /** Writes a checkpoint of the current head unless it is already checkpointed (e.g. before an export). */
  async checkpointNow(now: number): Promise<AuditCheckpoint | undefined> {
    const [head, last] = await Promise.all([this.reader.head(), this.reader.lastCheckpoint()]);
    if (head.seq === 0 || (last !== undefined && last.seq >= head.seq)) return undefined;
    return this.write(head, now);
  }

  private async write(head: { seq: number; hash: string }, now: number): Promise<AuditCheckpoint> {
    const body: CheckpointBody = { seq: head.seq, at: now, headHash: head.hash, kid: this.key.kid };
    const signature = await this.signBytes(checkpointSigningInput(body));
    const checkpoint: AuditCheckpoint = { ...body, signature: signature.toString('base64url') };
    await this.reader.insertCheckpoint(checkpoint);
    return checkpoint;
  }
}
