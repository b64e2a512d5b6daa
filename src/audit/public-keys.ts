/**
 * Loads the audit public keys for `portcullis audit verify --key FILE`: a JWK (JSON), a JWK Set
 * (`{"keys":[…]}`) or PEM (one or more SPKI `-----BEGIN PUBLIC KEY-----` blocks). Only public keys
 * of the kinds Portcullis signs with are accepted (audit: Ed25519; token: Ed25519 or P-256); a file
 * holding a private key is refused so that it is not passed around by mistake.
 *
 * Also reads the public-key bundle of `portcullis keys export` ({@link PublicKeyBundle}), which
 * holds the token and the audit keys apart: each verifier takes only its own purpose's keys, so a
 * token key can never vouch for an audit checkpoint, nor an audit key for a token.
 */
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { publicKeyMembersForPurpose } from '../tokens/signing-algorithms.js';

/** The format tag of `portcullis keys export` files. */
export const publicKeyBundleFormat = 'portcullis-public-keys/1';

/** What `portcullis keys export` writes. */
export interface PublicKeyBundle {
  readonly format: typeof publicKeyBundleFormat;
  /** The server the keys were fetched from. */
  readonly server: string;
  /** `iss` of the server's tokens. */
  readonly issuer: string;
  readonly exported_at: string;
  readonly token_keys: { readonly keys: readonly JWK[] };
  readonly audit_keys: { readonly keys: readonly JWK[] };
}

export type KeyFilePurpose = 'audit' | 'token';

export function isPublicKeyBundle(value: unknown): value is PublicKeyBundle {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { format?: unknown }).format === publicKeyBundleFormat
  );
}

/** Reads a key file for `purpose`; also returns the bundle when the file is one (for its issuer). */
export async function loadKeyFile(
  path: string,
  purpose: KeyFilePurpose,
): Promise<{ readonly keys: JWK[]; readonly bundle: PublicKeyBundle | null }> {
  const text = await readFile(path, 'utf8');
  try {
    const trimmed = text.trim();
    let bundle: PublicKeyBundle | null = null;
    if (trimmed.startsWith('{')) {
      const parsed = JSON.parse(trimmed) as unknown;
      if (isPublicKeyBundle(parsed)) bundle = parsed;
    }
    return { keys: parsePublicKeys(trimmed, purpose), bundle };
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/**
 * Reads and parses the key file at `path`.
 *
 * @returns Ed25519 public JWKs (audit keys); PEM keys have no `kid` and are tried for every checkpoint.
 * @throws Error naming the file and what is wrong with it.
 */
export async function loadPublicKeys(path: string): Promise<JWK[]> {
  const text = await readFile(path, 'utf8');
  try {
    return parsePublicKeys(text);
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Parses key-file content (see {@link loadPublicKeys}); from a bundle, the keys of `purpose`. */
export function parsePublicKeys(text: string, purpose: KeyFilePurpose = 'audit'): JWK[] {
  const trimmed = text.trim();
  const keys = trimmed.startsWith('-----BEGIN') ? pemKeys(trimmed) : jsonKeys(trimmed, purpose);
  if (keys.length === 0) throw new Error('no keys found');
  return keys.map((jwk, index) => checkedPublicKey(jwk, index, purpose));
}

function jsonKeys(text: string, purpose: KeyFilePurpose): JWK[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('not JSON (a JWK or JWK Set) and not PEM');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error('not a JWK or JWK Set');
  if (isPublicKeyBundle(parsed)) {
    const set = purpose === 'token' ? parsed.token_keys : parsed.audit_keys;
    if (!Array.isArray(set?.keys)) throw new Error(`the bundle has no ${purpose}_keys`);
    return [...set.keys];
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (keys === undefined) return [parsed as JWK];
  if (!Array.isArray(keys)) throw new Error('"keys" is not an array');
  return keys as JWK[];
}

function pemKeys(text: string): JWK[] {
  const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  return blocks.map((block) => {
    if (!block.startsWith('-----BEGIN PUBLIC KEY-----')) {
      throw new Error(`expected PUBLIC KEY PEM blocks, found ${block.slice(11, block.indexOf('-----', 11))}`);
    }
    return createPublicKey(block).export({ format: 'jwk' }) as JWK;
  });
}

function checkedPublicKey(jwk: JWK, index: number, purpose: KeyFilePurpose): JWK {
  if (typeof jwk !== 'object' || jwk === null) throw new Error(`key ${index + 1} is not a JWK`);
  const name = jwk.kid ?? `key ${index + 1}`;
  if (jwk.d !== undefined) throw new Error(`${name} is a private key; pass the public key only`);
  const members = publicKeyMembersForPurpose(purpose, jwk);
  if (members === null) {
    throw new Error(
      purpose === 'audit'
        ? `${name} is not an Ed25519 public key (kty OKP, crv Ed25519)`
        : `${name} is not an Ed25519 (kty OKP) or P-256 (kty EC) public key`,
    );
  }
  return { ...members, ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) };
}
