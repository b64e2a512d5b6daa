/**
 * Authenticated encryption of small secrets at rest (signing keys, requester credentials) with the
 * key-encryption key (KEK). The format is a JWE in compact serialisation, `alg: dir`,
 * `enc: A256GCM`, produced and opened by `jose`: nothing here implements a cipher.
 */
import { createHmac } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, errors } from 'jose';
import type { SecretBox } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';

/** Why a sealed value could not be opened. */
export type SealedValueProblem = 'wrong_key' | 'wrong_purpose' | 'tampered' | 'malformed';

/**
 * A sealed value that does not open. `wrong_key` is a configuration fault (the KEK differs from the
 * one that sealed it); the other problems point at the stored data.
 */
export class SealedValueError extends PortcullisError {
  readonly problem: SealedValueProblem;

  constructor(problem: SealedValueProblem, message: string, options?: ErrorOptions) {
    super(problem === 'wrong_key' ? 'config_invalid' : 'internal', message, { reason: problem }, options);
    this.name = 'SealedValueError';
    this.problem = problem;
  }
}

/** Length of the KEK in bytes (A256GCM). */
export const keyEncryptionKeyLength = 32;

/** Sealed values are small; anything larger is refused before parsing. */
const maxSealedLength = 1024 * 1024;

const algorithm = 'dir';
const encryption = 'A256GCM';

/**
 * A non-secret identifier of the KEK, carried as `kid` so a value sealed under another KEK is told
 * apart from a tampered one. HMAC of a fixed label: it reveals nothing about the key.
 */
function keyEncryptionKeyId(kek: Uint8Array): string {
  return createHmac('sha256', kek)
    .update('portcullis key-encryption-key id')
    .digest()
    .subarray(0, 12)
    .toString('base64url');
}

/**
 * {@link SecretBox} over jose JWE (`dir` + `A256GCM`) with the 32-byte key-encryption key.
 *
 * A box may be bound to a purpose label (e.g. `signing-key`). The label travels in the protected
 * header, which A256GCM authenticates, and `open` refuses a value sealed for another purpose — or
 * for none — so a sealed credential cannot be swapped in where a signing key is expected.
 *
 * @example
 * const box = new JweSecretBox(decodeKeyEncryptionKey(config.tokens.keyEncryptionKey.reveal())!);
 * const keys = new SigningKeyStore(store.keys, box.withPurpose(signingKeySealPurpose), options);
 */
export class JweSecretBox implements SecretBox {
  readonly #key: Uint8Array;
  readonly #keyId: string;
  /** The purpose label bound into every value this box seals and required on open; null for none. */
  readonly purpose: string | null;

  /**
   * @param kek - the key-encryption key, exactly 32 bytes (copied).
   * @param purpose - optional label bound into sealed values; see {@link JweSecretBox.withPurpose}.
   */
  constructor(kek: Uint8Array, purpose: string | null = null) {
    if (kek.length !== keyEncryptionKeyLength) {
      throw new PortcullisError(
        'config_invalid',
        `The key-encryption key must be ${keyEncryptionKeyLength} bytes, not ${kek.length}`,
      );
    }
    if (purpose !== null && purpose.length === 0) {
      throw new TypeError('A secret box purpose must be a non-empty label or null');
    }
    this.#key = Uint8Array.from(kek);
    this.#keyId = keyEncryptionKeyId(this.#key);
    this.purpose = purpose;
  }

  /** A box with the same key, bound to another purpose label. */
  withPurpose(purpose: string): JweSecretBox {
    return new JweSecretBox(this.#key, purpose);
  }

  async seal(plaintext: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({
        alg: algorithm,
        enc: encryption,
        kid: this.#keyId,
        ...(this.purpose === null ? {} : { purpose: this.purpose }),
      })
      .encrypt(this.#key);
  }

  async open(sealed: string): Promise<string> {
    if (typeof sealed !== 'string' || sealed.length > maxSealedLength) {
      throw new SealedValueError('malformed', 'The sealed value is not a compact JWE');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(sealed);
    } catch (error) {
      throw new SealedValueError('malformed', 'The sealed value is not a compact JWE', { cause: error });
    }
    if (typeof header.kid === 'string' && header.kid !== this.#keyId) {
      throw new SealedValueError(
        'wrong_key',
        `The value was sealed with a different key-encryption key (key id ${header.kid}, configured ${this.#keyId}); check tokens.key_encryption_key`,
      );
    }

    let result: Awaited<ReturnType<typeof compactDecrypt>>;
    try {
      result = await compactDecrypt(sealed, this.#key, {
        keyManagementAlgorithms: [algorithm],
        contentEncryptionAlgorithms: [encryption],
      });
    } catch (error) {
      if (error instanceof errors.JWEDecryptionFailed) {
        throw new SealedValueError(
          'tampered',
          'The sealed value failed authentication: it was altered or sealed with another key',
          { cause: error },
        );
      }
      throw new SealedValueError('malformed', 'The sealed value is not a valid JWE for this box', {
        cause: error,
      });
    }

    // Checked after decryption: only now is the header known to be authentic.
    const sealedPurpose = result.protectedHeader.purpose ?? null;
    if (sealedPurpose !== this.purpose) {
      throw new SealedValueError(
        'wrong_purpose',
        `The value was sealed for ${describePurpose(sealedPurpose)}, not for ${describePurpose(this.purpose)}`,
      );
    }
    return new TextDecoder().decode(result.plaintext);
  }
}

function describePurpose(purpose: unknown): string {
  return purpose === null ? 'no purpose' : `purpose "${String(purpose)}"`;
}
