/**
 * Sealed mode: a random secret split k-of-n with Shamir's scheme (`shamir-secret-sharing`), each
 * share printed once for offline storage. The server keeps only a {@link Seal} — a verifier, never
 * the secret — and {@link openSeal} reconstructs the secret from k distinct shares and checks it.
 *
 * A printed share reads `bg1:<account>:<seal>:<index>:<BASE32 SHARE>:<CHECK>`. The check (SHA-256
 * over everything before it) tells a mistyped share apart from one of another account or of an
 * older seal (rotation makes a new seal id), each with its own error code.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ScureBase32Plugin } from 'otplib';
import { combine, split } from 'shamir-secret-sharing';
import { PortcullisError } from '../core/errors.js';

/** What the server stores for a sealed account. Holds no share and no secret. */
export interface Seal {
  readonly accountId: string;
  /** Random id of this sealing; rotation makes a new one so old shares are refused clearly. */
  readonly sealId: string;
  readonly threshold: number;
  readonly shareCount: number;
  /** base64url HMAC-SHA-256 of a fixed label under the secret (the secret is 256 random bits). */
  readonly verifier: string;
  readonly createdAt: number;
}

/** A parsed share. */
export interface Share {
  readonly accountId: string;
  readonly sealId: string;
  readonly index: number;
  readonly bytes: Uint8Array;
}

const version = 'bg1';
const secretLength = 32;
const checkLength = 8;
const base32 = new ScureBase32Plugin();

function check(body: string): string {
  return base32.encode(createHash('sha256').update(body).digest()).slice(0, checkLength);
}

function verifierOf(secret: Uint8Array, accountId: string, sealId: string): Buffer {
  return createHmac('sha256', secret)
    .update(`portcullis break-glass seal verifier\0${accountId}\0${sealId}`)
    .digest();
}

/** Prints a share for offline storage; groups of 4 keep the payload easy to type back. */
export function formatShare(share: Share): string {
  const payload =
    base32
      .encode(share.bytes, { padding: false })
      .match(/.{1,4}/g)
      ?.join('-') ?? '';
  const body = `${version}:${share.accountId}:${share.sealId}:${share.index}:${payload}`;
  return `${body}:${check(body)}`;
}

/** Reads a typed-back share; any typo anywhere is `share_invalid`. */
export function parseShare(text: string): Share {
  const invalid = () => new PortcullisError('share_invalid', 'This recovery share is mistyped or malformed');
  const normalised = text.trim().replace(/\s+/g, '');
  const fields = normalised.split(':');
  if (fields.length !== 6 || fields[0] !== version) throw invalid();
  // The account id is case-sensitive; the base32 parts are not, so a share typed in lower case reads.
  const [, accountId = '', sealText = '', indexText = '', payloadText = '', given = ''] = fields;
  const sealId = sealText.toUpperCase();
  const payload = payloadText.toUpperCase();
  const body = [version, accountId, sealId, indexText, payload].join(':');
  const expected = check(body);
  if (
    given.length !== expected.length ||
    !timingSafeEqual(Buffer.from(given.toUpperCase()), Buffer.from(expected))
  )
    throw invalid();
  const index = Number(indexText);
  let bytes: Uint8Array;
  try {
    bytes = base32.decode(payload.replace(/-/g, ''));
  } catch {
    throw invalid();
  }
  if (!Number.isInteger(index) || index < 1 || bytes.length !== secretLength + 1) throw invalid();
  return { accountId, sealId, index, bytes };
}

/**
 * Seals an account: a fresh random secret split into `shareCount` shares, `threshold` of which
 * open it. Returns the seal to store and the printed shares to hand out once; the secret itself
 * is returned only for the caller to use immediately and must not be stored.
 */
export async function createSeal(
  accountId: string,
  threshold: number,
  shareCount: number,
  now: number,
): Promise<{ seal: Seal; shares: string[]; secret: Uint8Array }> {
  if (
    !Number.isInteger(threshold) ||
    !Number.isInteger(shareCount) ||
    threshold < 2 ||
    shareCount < threshold ||
    shareCount > 255
  ) {
    throw new PortcullisError('validation_failed', 'A seal needs 2 ≤ k ≤ n ≤ 255 shares', {
      issues: [{ path: 'shares', message: `k=${threshold}, n=${shareCount}` }],
    });
  }
  if (accountId.includes(':') || /\s/.test(accountId)) {
    throw new PortcullisError('validation_failed', 'An account id in a share may not contain ":" or spaces');
  }
  const secret = new Uint8Array(randomBytes(secretLength));
  const sealId = base32.encode(randomBytes(5), { padding: false });
  const raw = await split(secret, shareCount, threshold);
  const shares = raw.map((bytes, i) => formatShare({ accountId, sealId, index: i + 1, bytes }));
  const verifier = verifierOf(secret, accountId, sealId).toString('base64url');
  return { seal: { accountId, sealId, threshold, shareCount, verifier, createdAt: now }, shares, secret };
}

/**
 * Opens a seal with printed shares, refusing — each with its own code — a mistyped share
 * (`share_invalid`), one of another account or seal (`share_wrong_account`), the same share twice
 * (`shares_duplicated`), fewer than k (`shares_insufficient`) and a combination that does not
 * reconstruct the sealed secret (`shares_mismatch`). Returns the secret.
 */
export async function openSeal(seal: Seal, texts: readonly string[]): Promise<Uint8Array> {
  const shares = texts.map(parseShare);
  for (const s of shares) {
    if (s.accountId !== seal.accountId || s.sealId !== seal.sealId) {
      throw new PortcullisError(
        'share_wrong_account',
        'A recovery share belongs to another account or seal',
        {
          reason: s.accountId !== seal.accountId ? 'another_account' : 'another_seal',
        },
      );
    }
  }
  const indexes = shares.map((s) => s.index);
  if (new Set(indexes).size !== indexes.length) {
    throw new PortcullisError('shares_duplicated', 'The same recovery share was given more than once');
  }
  if (shares.length < seal.threshold) {
    throw new PortcullisError('shares_insufficient', `${seal.threshold} distinct shares are needed`, {
      needed: seal.threshold,
      given: shares.length,
    });
  }
  let secret: Uint8Array;
  try {
    secret = await combine(shares.map((s) => s.bytes));
  } catch {
    throw new PortcullisError('shares_mismatch', 'The recovery shares do not open this seal');
  }
  const expected = Buffer.from(seal.verifier, 'base64url');
  const actual = verifierOf(secret, seal.accountId, seal.sealId);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new PortcullisError('shares_mismatch', 'The recovery shares do not open this seal');
  }
  return secret;
}
