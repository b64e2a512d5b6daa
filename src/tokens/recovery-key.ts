/**
 * The offline recovery key: the way back when the token-signing key is lost or compromised.
 *
 * At setup an operator creates an Ed25519 key pair (`portcullis keys recovery init`). The private
 * half is written once, for a safe, and never stored by Portcullis; the database keeps only the
 * public half (a `signing_keys` row with purpose `recovery`, no private material, never published).
 *
 * An emergency rotation (`portcullis keys emergency-rotate --recovery-key FILE`) is authorised by
 * a **rotation statement**: a compact JWS (EdDSA, `typ: portcullis-emergency-rotation+jwt`) signed
 * with the recovery private key, naming the keys it retires and the key it installs, with a fresh
 * `jti` and the time. The statement is verified against the stored recovery public key before
 * anything changes, and kept in the audit event, so an auditor can check offline — with the
 * recovery public key alone — that whoever replaced the signing keys held the recovery key.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { type CryptoKey, calculateJwkThumbprint, compactVerify, importJWK, type JWK, SignJWT } from 'jose';
import type { StoredKey } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';

export const rotationStatementType = 'portcullis-emergency-rotation+jwt';

/** How long a signed statement is accepted: it is made and used in the same command. */
const statementLifetimeSeconds = 300;

/** What a rotation statement says. */
export interface RotationStatement {
  /** Always `token` for now: audit keys are never unpublished (old checkpoints must verify). */
  readonly purpose: 'token';
  /** The keys retired at once, with no overlap. */
  readonly retire: readonly string[];
  /** The key that signs from now on. */
  readonly install: string;
  /** Who ran it (operator account on the host) and why. */
  readonly operator: string;
  readonly reason: string;
}

export interface RecoveryKeyPair {
  /** PKCS#8 PEM of the private key: for the safe, never stored by Portcullis. */
  readonly privateKeyPem: string;
  readonly publicJwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };
  /** RFC 7638 thumbprint of the public key: the fingerprint to write down next to the safe. */
  readonly kid: string;
}

/** A new recovery key pair. */
export async function generateRecoveryKey(): Promise<RecoveryKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string')
    throw new PortcullisError('internal', 'Ed25519 key generation gave no public key');
  const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x } as const;
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk,
    kid: await calculateJwkThumbprint(publicJwk),
  };
}

/** The row that stores a recovery public key: no private half, active, never published. */
export function recoveryKeyRow(pair: Pick<RecoveryKeyPair, 'publicJwk' | 'kid'>, now: number): StoredKey {
  return {
    kid: pair.kid,
    purpose: 'recovery',
    alg: 'EdDSA',
    publicJwk: JSON.stringify({ ...pair.publicJwk, kid: pair.kid, alg: 'EdDSA', use: 'sig' }),
    sealedPrivateJwk: '',
    createdAt: now,
    active: true,
    publishUntil: null,
  };
}

/**
 * Reads a recovery private key (PKCS#8 PEM, as written by `keys recovery init`).
 *
 * @throws PortcullisError `validation_failed` when it is not an Ed25519 private key.
 */
export function parseRecoveryPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new PortcullisError('validation_failed', 'The recovery key file is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new PortcullisError('validation_failed', 'The recovery key is not an Ed25519 key');
  }
  return key;
}

/** The thumbprint (kid) of the public half of a recovery private key. */
export async function recoveryKeyId(privateKey: KeyObject): Promise<string> {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: String(jwk.x) });
}

/** Signs a rotation statement with the recovery private key. */
export async function signRotationStatement(
  privateKey: KeyObject,
  statement: RotationStatement,
  now: number,
): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({
    purpose: statement.purpose,
    retire: [...statement.retire],
    install: statement.install,
    operator: statement.operator,
    reason: statement.reason,
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: rotationStatementType, kid: await recoveryKeyId(privateKey) })
    .setIssuedAt(iat)
    .setExpirationTime(iat + statementLifetimeSeconds)
    .setJti(randomBytes(16).toString('base64url'))
    .sign(privateKey);
}

/**
 * Verifies a rotation statement against the stored recovery public keys and checks that it says
 * exactly what is about to happen (`expected`). Any mismatch — another key, a tampered or stale
 * statement, other keys to retire or install — is refused with `recovery_key_refused`.
 *
 * @returns the kid of the recovery key that signed it.
 */
export async function verifyRotationStatement(
  jws: string,
  recoveryKeys: readonly StoredKey[],
  expected: RotationStatement,
  now: number,
): Promise<{ readonly recoveryKid: string; readonly jti: string }> {
  const refuse = (why: string) =>
    new PortcullisError('recovery_key_refused', `The recovery key was not accepted: ${why}`);
  const active = recoveryKeys.filter((key) => key.purpose === 'recovery' && key.active);
  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    verified = await compactVerify(
      jws,
      async (header) => {
        const stored = active.find((key) => key.kid === header.kid);
        if (!stored) throw refuse('it is not the recovery key registered for this installation');
        const jwk = JSON.parse(stored.publicJwk) as JWK;
        // INVARIANT: the stored kid is the thumbprint of the stored key.
        if ((await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: String(jwk.x) })) !== stored.kid) {
          throw new PortcullisError('internal', `Recovery key ${stored.kid} does not match its public key`);
        }
        return (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA')) as CryptoKey;
      },
      { algorithms: ['EdDSA'] },
    );
  } catch (error) {
    if (error instanceof PortcullisError) throw error;
    throw refuse('the rotation statement signature does not verify');
  }
  if (verified.protectedHeader.typ !== rotationStatementType) throw refuse('not a rotation statement');
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch {
    throw refuse('the rotation statement is not JSON');
  }
  const seconds = Math.floor(now / 1000);
  const { iat, exp, jti } = claims;
  if (typeof iat !== 'number' || typeof exp !== 'number' || typeof jti !== 'string') {
    throw refuse('the rotation statement lacks iat, exp or jti');
  }
  if (iat > seconds + 5 || exp <= seconds) throw refuse('the rotation statement is not current');
  const retire = Array.isArray(claims.retire) ? [...(claims.retire as unknown[])].map(String).sort() : null;
  if (
    claims.purpose !== expected.purpose ||
    claims.install !== expected.install ||
    retire === null ||
    JSON.stringify(retire) !== JSON.stringify([...expected.retire].sort()) ||
    claims.operator !== expected.operator ||
    claims.reason !== expected.reason
  ) {
    throw refuse('the rotation statement does not describe this rotation');
  }
  return { recoveryKid: String(verified.protectedHeader.kid), jti };
}
