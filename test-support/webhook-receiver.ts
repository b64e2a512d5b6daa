/**
 * A real HTTP receiver for signed break-glass alert webhooks (node:http on 127.0.0.1), written the
 * way docs/break-glass.md tells operators to write one: verify the `Portcullis-Signature` over the
 * raw bytes, refuse timestamps outside the replay window, drop alert ids already seen.
 *
 * `respond` decides each answer before verification (e.g. 503 for the first N requests); requests
 * it answers itself are recorded with `accepted: false`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SignatureCheck, verifyWebhookSignature } from '../src/webhooks/signed-webhook.js';

/** A received request's `Portcullis-Signature` checked over its raw body, as a receiver must. */
export function checkSignature(
  secret: string,
  request: IncomingMessage,
  raw: Buffer,
  options: { readonly nowSeconds?: number; readonly toleranceSeconds?: number } = {},
): SignatureCheck {
  const header = request.headers['portcullis-signature'];
  return verifyWebhookSignature({
    secret,
    header: typeof header === 'string' ? header : undefined,
    body: raw,
    nowSeconds: options.nowSeconds ?? Math.floor(Date.now() / 1000),
    ...(options.toleranceSeconds !== undefined ? { toleranceSeconds: options.toleranceSeconds } : {}),
  });
}

export interface ReceivedWebhook {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawBody: string;
  readonly status: number;
  /** Verified, fresh and not a duplicate. */
  readonly accepted: boolean;
  readonly refusal?: string;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedWebhook[];
  /** Only the verified, accepted alerts' parsed bodies. */
  accepted(): unknown[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(options: {
  readonly secret: string;
  readonly port?: number;
  readonly toleranceSeconds?: number;
  /** Return a status to answer without verifying (simulated outage), or undefined to verify. */
  readonly respond?: (requestNumber: number, request: IncomingMessage) => number | 'hang' | undefined;
  readonly nowSeconds?: () => number;
}): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const seenIds = new Set<string>();
  const hanging: ServerResponse[] = [];
  let count = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      count += 1;
      const raw = Buffer.concat(chunks);
      const rawBody = raw.toString('utf8');
      const record = (status: number, accepted: boolean, refusal?: string) => {
        received.push({
          path: request.url ?? '',
          headers: request.headers,
          rawBody,
          status,
          accepted,
          ...(refusal ? { refusal } : {}),
        });
        response.writeHead(status, { 'content-type': 'text/plain' }).end(refusal ?? 'ok');
      };
      const forced = options.respond?.(count, request);
      if (forced === 'hang') {
        hanging.push(response);
        return;
      }
      if (forced !== undefined) return record(forced, false, 'forced');
      const check = checkSignature(options.secret, request, raw, {
        ...(options.nowSeconds ? { nowSeconds: options.nowSeconds() } : {}),
        ...(options.toleranceSeconds !== undefined ? { toleranceSeconds: options.toleranceSeconds } : {}),
      });
      if (!check.valid) return record(401, false, check.reason);
      const id = request.headers['portcullis-alert-id'];
      if (typeof id !== 'string' || seenIds.has(id)) return record(409, false, 'duplicate');
      seenIds.add(id);
      record(200, true);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    accepted: () => received.filter((r) => r.accepted).map((r) => JSON.parse(r.rawBody) as unknown),
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
