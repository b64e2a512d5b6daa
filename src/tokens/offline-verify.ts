/**
 * Offline verification of Portcullis-issued tokens (access tokens, session tokens — break-glass
 * tokens are access tokens) with published public keys alone: no server, no database, no network.
 * For custodians and auditors who must show that a token is genuine, e.g. next to an audit export.
 *
 * Two separate answers: **genuine** (the signature verifies under a key of the set, by `kid`)
 * and **valid** (genuine, a Portcullis token type, the expected issuer and audience, inside its
 * `nbf`…`exp` window at the instant asked about — now, or a past instant for forensics). Claims are
 * returned only when the token is genuine: an unverified payload is attacker-controlled text.
 *
 * The same rules as the server (token-service.ts): EdDSA or ES256, each only under a key of its own
 * kind (Ed25519, P-256), `typ` `at+jwt` with `aud` ∋ audience,
 * or `portcullis-session+jwt` with `aud` ∋ `<audience>:session`; 5 s of skew on `nbf`, none on `exp`.
 */
import { type CryptoKey, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { isSigningAlgorithm, publicKeyMembersFor, tokenSigningAlgorithms } from './signing-algorithms.js';
import { accessTokenType, clockToleranceSeconds, sessionTokenType } from './token-service.js';

export type TokenProblem =
  | 'malformed'
  | 'unsupported_algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'not_a_portcullis_token'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'not_yet_valid'
  | 'expired';

export interface OfflineVerification {
  readonly valid: boolean;
  readonly genuine: boolean;
  /** The first reason it is not valid. */
  readonly problem: TokenProblem | null;
  readonly message: string;
  readonly kind: 'access' | 'session' | null;
  readonly kid: string | null;
  /** The verified claims; null unless genuine. */
  readonly claims: Readonly<Record<string, unknown>> | null;
}

export interface OfflineVerifyOptions {
  /** Public JWKs (the token JWKS): Ed25519 for EdDSA, P-256 for ES256. */
  readonly keys: readonly JWK[];
  readonly issuer: string;
  /** Base audience (`tokens.audience`, default `portcullis`). */
  readonly audience: string;
  /** The instant to judge `nbf`/`exp` at, epoch ms. */
  readonly at: number;
}

const fail = (
  problem: TokenProblem,
  message: string,
  rest: Partial<OfflineVerification> = {},
): OfflineVerification => ({
  valid: false,
  genuine: false,
  problem,
  message,
  kind: null,
  kid: null,
  claims: null,
  ...rest,
});

export async function verifyTokenOffline(
  token: string,
  options: OfflineVerifyOptions,
): Promise<OfflineVerification> {
  const compact = token.trim();
  if (compact.length > 8192 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(compact)) {
    return fail('malformed', 'not a compact JWS (three base64url parts)');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(compact);
  } catch {
    return fail('malformed', 'the header is not valid');
  }
  const alg = header.alg;
  if (!isSigningAlgorithm(alg)) {
    return fail(
      'unsupported_algorithm',
      `alg ${String(alg)}: Portcullis tokens are ${tokenSigningAlgorithms.join(' or ')}`,
    );
  }
  const kid = typeof header.kid === 'string' ? header.kid : null;
  const jwk = kid === null ? undefined : options.keys.find((key) => key.kid === kid);
  if (!jwk || kid === null) {
    return fail(
      'unknown_key',
      `no key ${kid ?? '(no kid)'} in the key file (retired long ago, another installation, or forged)`,
      {
        kid,
      },
    );
  }
  // The key decides the algorithm: an ES256 header never verifies under an Ed25519 key, or back.
  const members = publicKeyMembersFor(alg, jwk);
  if (members === null) {
    return fail('bad_signature', `key ${kid} is not a key for ${alg}`, { kid });
  }
  let payload: Uint8Array;
  try {
    const key = (await importJWK(members, alg)) as CryptoKey;
    payload = (await compactVerify(compact, key, { algorithms: [alg] })).payload;
  } catch {
    return fail('bad_signature', `the signature does not verify under key ${kid}`, { kid });
  }
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
      throw new Error('not an object');
  } catch {
    return fail('malformed', 'the signed payload is not a JSON object', { kid });
  }
  const genuine = { genuine: true, kid, claims };
  const kind = header.typ === accessTokenType ? 'access' : header.typ === sessionTokenType ? 'session' : null;
  if (kind === null) {
    return fail(
      'not_a_portcullis_token',
      `typ ${String(header.typ)} is neither ${accessTokenType} nor ${sessionTokenType}`,
      genuine,
    );
  }
  const withKind = { ...genuine, kind } as const;
  if (claims.iss !== options.issuer) {
    return fail('wrong_issuer', `issuer ${String(claims.iss)}, expected ${options.issuer}`, withKind);
  }
  const audience = kind === 'access' ? options.audience : `${options.audience}:session`;
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.includes(audience)) {
    return fail('wrong_audience', `audience ${JSON.stringify(aud)} does not include ${audience}`, withKind);
  }
  const at = Math.floor(options.at / 1000);
  const { exp, nbf } = claims;
  if (typeof exp !== 'number') return fail('malformed', 'no exp claim', withKind);
  if (typeof nbf === 'number' && at + clockToleranceSeconds < nbf) {
    return fail('not_yet_valid', `not valid before ${new Date(nbf * 1000).toISOString()}`, withKind);
  }
  if (at >= exp) return fail('expired', `expired at ${new Date(exp * 1000).toISOString()}`, withKind);
  return { valid: true, genuine: true, problem: null, message: 'valid', kind, kid, claims };
}
