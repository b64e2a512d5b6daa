/**
 * An audit stream to a SIEM collector over signed webhooks (docs/audit.md#streaming-to-a-siem):
 * each request is JSON Lines (`application/x-ndjson`), one line per event exactly as
 * `portcullis audit export` writes it — its chain fields and hash included, so the collector can
 * check that the copy is unbroken and untouched — and `Portcullis-Audit-Batch: <first>-<last>`
 * naming the sequence numbers it holds.
 */
import { type AuditStreamSink, LeaseLost } from '../app/audit-stream-relay.js';
import type { AuditRecord } from '../app/ports.js';
import { postSignedJson, type WebhookTarget } from '../webhooks/signed-webhook.js';
import { eventLine } from './export-format.js';

export const auditBatchHeader = 'portcullis-audit-batch';

/** A batch is split into requests of at most this many bytes (one event larger goes alone). */
export const maxStreamRequestBytes = 4 * 1024 * 1024;

export class WebhookAuditStreamSink implements AuditStreamSink {
  readonly name: string;
  readonly #target: WebhookTarget;

  constructor(name: string, target: WebhookTarget) {
    this.name = name;
    this.#target = target;
  }

  async send(records: readonly AuditRecord[], keepLease: () => Promise<boolean>): Promise<void> {
    for (const part of split(records)) {
      if (!(await keepLease())) throw new LeaseLost();
      await postSignedJson(
        this.#target,
        {
          label: `audit stream ${this.name}`,
          userAgent: 'Portcullis-Audit-Stream/1',
          headers: { [auditBatchHeader]: `${part.first}-${part.last}` },
          contentType: 'application/x-ndjson',
        },
        part.body,
      );
    }
  }
}

/** The batch as request bodies of at most {@link maxStreamRequestBytes}, each with its first and last seq. */
function split(records: readonly AuditRecord[]): { first: number; last: number; body: string }[] {
  const parts: { first: number; last: number; body: string }[] = [];
  let lines: string[] = [];
  let bytes = 0;
  let first = 0;
  let last = 0;
  for (const record of records) {
    const line = eventLine(record);
    const size = Buffer.byteLength(line);
    if (lines.length > 0 && bytes + size > maxStreamRequestBytes) {
      parts.push({ first, last, body: lines.join('') });
      lines = [];
      bytes = 0;
    }
    if (lines.length === 0) first = record.seq;
    lines.push(line);
    bytes += size;
    last = record.seq;
  }
  if (lines.length > 0) parts.push({ first, last, body: lines.join('') });
  return parts;
}
