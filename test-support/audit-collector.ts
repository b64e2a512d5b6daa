/**
 * A real SIEM-style collector for audit streams (node:http on 127.0.0.1), written the way
 * docs/audit.md#streaming-to-a-siem tells operators to write one: verify `Portcullis-Signature`
 * over the raw bytes, read the JSON Lines, keep each event once by its `seq`, and check that the
 * copy is one unbroken chain (each `prev_hash` is the hash of the event before it).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkSignature } from './webhook-receiver.js';

export interface CollectedEvent {
  readonly seq: number;
  readonly type: string;
  readonly hash: string;
  readonly prev_hash: string;
  readonly [key: string]: unknown;
}

export interface AuditCollector {
  readonly url: string;
  /** Every event taken, by seq (a batch sent again is taken once). */
  readonly events: Map<number, CollectedEvent>;
  /** Each request: its `Portcullis-Audit-Batch` header, status, and content type. */
  readonly requests: { batch: string; status: number; contentType: string; lines: number }[];
  /** Requests to refuse with 503 before taking any (a collector that is down). */
  failNext: number;
  /** Events in seq order; throws when the copy has a gap or a broken chain link. */
  inOrder(): CollectedEvent[];
  close(): Promise<void>;
}

export async function startAuditCollector(options: { readonly secret: string }): Promise<AuditCollector> {
  const events = new Map<number, CollectedEvent>();
  const requests: AuditCollector['requests'] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      const answer = (status: number, lines = 0) => {
        requests.push({
          batch: String(request.headers['portcullis-audit-batch']),
          status,
          contentType: String(request.headers['content-type']),
          lines,
        });
        response.writeHead(status).end();
      };
      if (collector.failNext > 0) {
        collector.failNext -= 1;
        return answer(503);
      }
      if (!checkSignature(options.secret, request, raw).valid) return answer(401);
      const lines = raw
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== '');
      for (const line of lines) {
        const event = JSON.parse(line) as CollectedEvent;
        if (!events.has(event.seq)) events.set(event.seq, event);
      }
      answer(200, lines.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const collector: AuditCollector = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/audit`,
    events,
    requests,
    failNext: 0,
    inOrder() {
      const sorted = [...events.values()].sort((a, b) => a.seq - b.seq);
      sorted.forEach((event, i) => {
        const before = sorted[i - 1];
        if (before && (event.seq !== before.seq + 1 || event.prev_hash !== before.hash)) {
          throw new Error(`the copy breaks between seq ${before.seq} and ${event.seq}`);
        }
      });
      return sorted;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return collector;
}
