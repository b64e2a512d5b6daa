/**
 * The JWS algorithms Portcullis signs tokens with, and the one shape of public key each allows.
 *
 * A key is tied to exactly one algorithm (its row's `alg`), and a JWS is accepted only when its
 * header names that algorithm: a key never verifies under an algorithm it was not made for
 * (RFC 8725 §3.1). EdDSA is Ed25519 only; ES256 is ECDSA on P-256 with SHA-256 only.
 */
import type { JWK } from 'jose';

/** Algorithms a token-signing key may have; the first is the default. */
export const tokenSigningAlgorithms = ['EdDSA', 'ES256'] as const;
export type SigningAlgorithm = (typeof tokenSigningAlgorithms)[number];

/** Audit checkpoints are raw Ed25519 signatures (checkpoint.ts): their keys have no choice. */
export const auditSigningAlgorithm: SigningAlgorithm = 'EdDSA';

/** The members of a public key that identify it (RFC 7638 §3.2), per algorithm. */
export type PublicKeyMembers =
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string }
  | { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string };

/** A public key as published in a JWKS. */
export type PublicSigningJwk = PublicKeyMembers & {
  /** RFC 7638 JWK thumbprint (SHA-256) of the key. */
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use: 'sig';
};

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return (tokenSigningAlgorithms as readonly unknown[]).includes(value);
}

/**
 * The identifying members of `jwk` when it is a public key of the one kind `alg` allows, else
 * null. Extra members (`kid`, `use`, a private `d`) are not copied.
 */
export function publicKeyMembersFor(alg: SigningAlgorithm, jwk: JWK): PublicKeyMembers | null {
  if (alg === 'EdDSA') {
    return jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && isBase64url(jwk.x)
      ? { kty: 'OKP', crv: 'Ed25519', x: jwk.x }
      : null;
  }
  return jwk.kty === 'EC' && jwk.crv === 'P-256' && isBase64url(jwk.x) && isBase64url(jwk.y)
    ? { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }
    : null;
}

/** The algorithms the keys of a purpose may have: either for tokens, Ed25519 only for audit. */
export function signingAlgorithmsFor(purpose: 'token' | 'audit'): readonly SigningAlgorithm[] {
  return purpose === 'audit' ? [auditSigningAlgorithm] : tokenSigningAlgorithms;
}

/** {@link publicKeyMembersFor} under whichever algorithm of `purpose` the key fits; null if none. */
export function publicKeyMembersForPurpose(purpose: 'token' | 'audit', jwk: JWK): PublicKeyMembers | null {
  for (const alg of signingAlgorithmsFor(purpose)) {
    const members = publicKeyMembersFor(alg, jwk);
    if (members !== null) return members;
  }
  return null;
}

/** Whether two keys are the same public key (the private half of `candidate` is ignored). */
export function samePublicKey(expected: PublicKeyMembers, candidate: JWK): boolean {
  return (
    candidate.kty === expected.kty &&
    candidate.crv === expected.crv &&
    candidate.x === expected.x &&
    (expected.kty !== 'EC' || candidate.y === expected.y)
  );
}

/** Options for jose's `generateKeyPair` that make a key of `alg`. */
export function keyGenerationOptions(alg: SigningAlgorithm): { crv?: string } {
  return alg === 'EdDSA' ? { crv: 'Ed25519' } : {};
}

function isBase64url(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && /^[A-Za-z0-9_-]+$/.test(value);
}
