/**
 * Break-glass alerts as signed webhooks: one JSON `POST` per alert, authenticated with an
 * HMAC-SHA256 signature over the timestamp and the raw body (the scheme Stripe and GitHub use).
 *
 * Headers sent:
 * - `Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 * - `Portcullis-Alert-Id: <alert id>` — the same on every retry of one alert: drop duplicates by it.
 *
 * A receiver verifies (see docs/break-glass.md, "Receiving alerts"): parse `t` and every `v1`;
 * refuse if `|now − t|` is over 300 s (replay window); compute the HMAC over the exact bytes
 * received; compare in constant time; then ignore an alert id already seen. {@link verifyWebhookSignature}
 * implements this for Node receivers.
 *
 * The body is Slack-compatible (`text` is the one-line summary) and carries no secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlertChannel, BreakGlassAlert } from '../ports.js';

/** Shortest signing secret accepted (32 characters, e.g. `openssl rand -base64 32`). */
export const minWebhookSecretLength = 32;

/** How far a receiver should accept a signature timestamp from its own clock. */
export const defaultSignatureToleranceSeconds = 300;

export const signatureHeader = 'portcullis-signature';
export const alertIdHeader = 'portcullis-alert-id';

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

/** The JSON body of one alert. */
export function webhookBody(alert: BreakGlassAlert): string {
  return JSON.stringify({
    id: alert.id,
    event: `break_glass.${alert.kind}`,
    text: alert.drill ? `[DRILL] ${alert.summary}` : alert.summary,
    alert: {
      id: alert.id,
      kind: alert.kind,
      account_id: alert.accountId,
      activation_id: alert.activationId,
      drill: alert.drill,
      custodians: alert.custodians,
      reason: alert.reason,
      incident: alert.incident,
      at: new Date(alert.at).toISOString(),
      summary: alert.summary,
    },
  });
}

export interface WebhookAlertChannelOptions extends WebhookTarget {
  readonly name: string;
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
}

/**
 * Sends `body` once, signed (`Portcullis-Signature`); a non-2xx answer (redirects included) or no
 * answer within the timeout is a thrown error that never repeats the URL.
 */
export async function postSignedJson(target: WebhookTarget, post: SignedPost, body: string): Promise<void> {
  const timestamp = Math.floor((target.now ?? Date.now)() / 1000);
  let response: Response;
  try {
    response = await fetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': post.userAgent,
        ...post.headers,
        [signatureHeader]: signWebhookPayload(target.secret, timestamp, body),
      },
      body,
      // A redirect could carry the signed payload to a host nobody configured.
      redirect: 'manual',
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (error) {
    throw new Error(`${post.label}: ${describeFailure(error, target.timeoutMs)}`);
  }
  // The receiver's answer is not needed; do not keep the socket busy reading it.
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) {
    throw new Error(`${post.label}: HTTP ${response.status}`);
  }
}

/** Delivers each alert as one signed `POST`. */
export class WebhookAlertChannel implements AlertChannel {
  readonly kind = 'webhook';
  readonly name: string;
  readonly #options: WebhookAlertChannelOptions;

  constructor(options: WebhookAlertChannelOptions) {
    this.name = options.name;
    this.#options = options;
  }

  async send(alert: BreakGlassAlert): Promise<void> {
    await postSignedJson(
      this.#options,
      {
        label: `webhook ${this.name}`,
        userAgent: 'Portcullis-Alerts/1',
        headers: { [alertIdHeader]: alert.id },
      },
      webhookBody(alert),
    );
  }
}
