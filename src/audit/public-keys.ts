/**
 * Loads the audit public keys for `portcullis audit verify --key FILE`: a JWK (JSON), a JWK Set
 * (`{"keys":[…]}`) or PEM (one or more SPKI `-----BEGIN PUBLIC KEY-----` blocks). Only Ed25519
 * public keys are accepted; a file holding a private key is refused so that it is not passed
 * around by mistake.
 */
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { JWK } from 'jose';

/**
 * Reads and parses the key file at `path`.
 *
 * @returns Ed25519 public JWKs; PEM keys have no `kid` and are tried for every checkpoint.
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

/** Parses key-file content (see {@link loadPublicKeys}). */
export function parsePublicKeys(text: string): JWK[] {
  const trimmed = text.trim();
  const keys = trimmed.startsWith('-----BEGIN') ? pemKeys(trimmed) : jsonKeys(trimmed);
  if (keys.length === 0) throw new Error('no keys found');
  return keys.map(checkedPublicKey);
}

function jsonKeys(text: string): JWK[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('not JSON (a JWK or JWK Set) and not PEM');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error('not a JWK or JWK Set');
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

function checkedPublicKey(jwk: JWK, index: number): JWK {
  const name = jwk.kid ?? `key ${index + 1}`;
  if (typeof jwk !== 'object' || jwk === null) throw new Error(`${name} is not a JWK`);
  if (jwk.d !== undefined) throw new Error(`${name} is a private key; pass the public key only`);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw new Error(`${name} is not an Ed25519 public key (kty OKP, crv Ed25519)`);
  }
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) };
}
