/**
 * Signed JSON webhooks, shared by every Portcullis webhook sender (break-glass alerts, access
 * notifications, the webhook provisioner): an HMAC-SHA256 signature over the timestamp and the raw
 * body (the scheme Stripe and GitHub use), sent as
 * `Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 *
 * A receiver verifies: parse `t` and every `v1`; refuse if `|now − t|` is over 300 s (replay
 * window); compute the HMAC over the exact bytes received; compare in constant time; then drop an
 * id already seen (each sender names its own id header). {@link verifyWebhookSignature}
 * implements this for Node receivers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isLoopbackUrl } from '../text/loopback-address.js';

/** Shortest signing secret accepted (32 characters, e.g. `openssl rand -base64 32`). */
export const minWebhookSecretLength = 32;

/** How far a receiver should accept a signature timestamp from its own clock. */
export const defaultSignatureToleranceSeconds = 300;

export const signatureHeader = 'portcullis-signature';

/** The `Portcullis-Signature` header value for `body` sent at `timestampSeconds`. */
export function signWebhookPayload(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`, 'utf8').digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export type SignatureCheck =
  | { readonly valid: true; readonly timestamp: number }
  | { readonly valid: false; readonly reason: 'malformed' | 'stale' | 'mismatch' };

/**
 * Verifies a `Portcullis-Signature` header against the raw body as received. Constant-time
 * comparison; any `v1` entry may match (several are allowed so that a sender can sign with an old
 * and a new secret during rotation).
 */
export function verifyWebhookSignature(input: {
  readonly secret: string;
  readonly header: string | undefined;
  readonly body: string | Uint8Array;
  readonly nowSeconds: number;
  readonly toleranceSeconds?: number;
}): SignatureCheck {
  if (!input.header) return { valid: false, reason: 'malformed' };
  let timestamp: number | null = null;
  const candidates: Buffer[] = [];
  for (const part of input.header.split(',')) {
    const [key, value] = part.trim().split('=', 2);
    if (key === 't' && value && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && value && /^[0-9a-f]{64}$/.test(value))
      candidates.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === null || candidates.length === 0) return { valid: false, reason: 'malformed' };
  const tolerance = input.toleranceSeconds ?? defaultSignatureToleranceSeconds;
  if (Math.abs(input.nowSeconds - timestamp) > tolerance) return { valid: false, reason: 'stale' };
  const expected = createHmac('sha256', input.secret)
    .update(`${timestamp}.`, 'utf8')
    .update(input.body)
    .digest();
  // Every candidate is compared (no early exit) so the time does not depend on which one matched.
  let matched = false;
  for (const candidate of candidates) matched = timingSafeEqual(candidate, expected) || matched;
  return matched ? { valid: true, timestamp } : { valid: false, reason: 'mismatch' };
}

/**
 * Checks a webhook URL: https, or http to a loopback address (a local relay). No credentials in
 * the userinfo part. Returns the problem, or null.
 */
export function webhookUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.username !== '' || url.password !== '') return 'must not carry credentials before the host';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && isLoopbackUrl(url)) return null;
  return 'must be https:// (plain http:// only to a loopback address)';
}

/** Describes a fetch failure without repeating the URL (which may embed a token). */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `timed out after ${timeoutMs} ms`;
  }
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return `connection failed: ${cause.code}`;
  return 'connection failed';
}

/** Where a Portcullis webhook posts, and how it signs. */
export interface WebhookTarget {
  readonly url: string;
  readonly secret: string;
  /** Per attempt: connecting, sending and receiving the response headers. */
  readonly timeoutMs: number;
  /** Epoch ms, for the signature timestamp. */
  readonly now?: () => number;
}

/** What differs between the kinds of webhook a Portcullis process sends. */
export interface SignedPost {
  /** Used in error messages instead of the URL, which may embed a token: "webhook soc-hook". */
  readonly label: string;
  readonly userAgent: string;
  /** Extra headers, such as the id receivers drop duplicates by. */
  readonly headers: Readonly<Record<string, string>>;
  /** Of the body; default `application/json`. */
  readonly contentType?: string;
}

/** Sends `body` once, signed; a failure to get an answer is thrown without the URL. */
async function sendSigned(target: WebhookTarget, post: SignedPost, body: string): Promise<Response> {
  const timestamp = Math.floor((target.now ?? Date.now)() / 1000);
  try {
    return await fetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': post.contentType ?? 'application/json',
        'user-agent': post.userAgent,
        ...post.headers,
        [signatureHeader]: signWebhookPayload(target.secret, timestamp, body),
      },
      body,
      // A redirect could carry the signed payload to a host nobody configured.
      redirect: 'manual',
      // Covers the whole exchange, reading an answer's body included.
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (error) {
    throw new Error(`${post.label}: ${describeFailure(error, target.timeoutMs)}`);
  }
}

/**
 * Sends `body` once, signed (`Portcullis-Signature`); a non-2xx answer (redirects included) or no
 * answer within the timeout is a thrown error that never repeats the URL.
 */
export async function postSignedJson(target: WebhookTarget, post: SignedPost, body: string): Promise<void> {
  const response = await sendSigned(target, post, body);
  // The receiver's answer is not needed; do not keep the socket busy reading it.
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) {
    throw new Error(`${post.label}: HTTP ${response.status}`);
  }
}

/** What a receiver answered to a signed exchange. */
export interface SignedAnswer {
  readonly status: number;
  /** The media type, lower case, without parameters ('' when none was sent). */
  readonly mediaType: string;
  readonly body: string;
}

/**
 * Sends `body` once, signed, and reads the answer whatever its status, for a caller that needs it
 * (the webhook provisioner). An answer body over `maxResponseBytes` is refused (read no further),
 * as is no complete answer within the timeout; errors never repeat the URL.
 */
export async function exchangeSignedJson(
  target: WebhookTarget,
  post: SignedPost,
  body: string,
  maxResponseBytes: number,
): Promise<SignedAnswer> {
  const response = await sendSigned(target, post, body);
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const tooLarge = () => new Error(`${post.label}: the answer is larger than ${maxResponseBytes} bytes`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxResponseBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
      size += read.value.byteLength;
      if (size > maxResponseBytes) break;
      chunks.push(read.value);
    }
  } catch (error) {
    throw new Error(`${post.label}: ${describeFailure(error, target.timeoutMs)}`);
  }
  if (size > maxResponseBytes) {
    await reader?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  return { status: response.status, mediaType, body: Buffer.concat(chunks).toString('utf8') };
}
