/**
 * `portcullis audit export`: the whole chain as JSON Lines, UTF-8, one JSON object per line.
 *
 * Line order (format `portcullis-audit/1`):
 *   1. one header:  {"kind":"header","format":"portcullis-audit/1","exported_at":…,"first_seq":…,"head_seq":…,
 *                    "head_hash":"…","events":…,"checkpoints":…,"chain":{…},"checkpoint_signature":"…"}
 *                   (`chain` and `checkpoint_signature` describe the hash and signature for readers
 *                   who verify with their own tools; the header itself is not signed)
 *   2. every checkpoint, in seq order:
 *                   {"kind":"checkpoint","seq":…,"at":…,"head_hash":"…","kid":"…","signature":"…"}
 *   3. every event, seq first_seq to head_seq: the canonical JSON of its hashed fields (keys sorted, see
 *      hash.ts), with `hash` and `kind` appended as the last two members:
 *                   {"actor":"…","at":…,"data":{…},"grant_id":…,"id":"…","policy_ids":[…],"prev_hash":"…",
 *                    "reason":…,"request_id":…,"resource_id":…,"seq":…,"severity":"…","source_ip":…,
 *                    "type":"…","user_agent":…,"hash":"…","kind":"event"}
 *      So an event line is exactly the hashed bytes plus a fixed-length tail, and anyone can check
 *      it with shell tools: drop the last 90 characters, add "}", prepend prev_hash, SHA-256.
 *      The verifier does the same (and falls back to re-encoding if the file was reformatted).
 *
 * Checkpoints come before the events so a verifier knows, while it streams the events once with
 * constant memory, which hashes are signed and how far the chain must reach: cutting lines off the
 * end of the file is then detected as truncation instead of silently removing the checkpoints that
 * would have caught it. The export is a snapshot: the head is read first and nothing after it
 * (events or checkpoints) is written, even if the chain grows meanwhile.
 *
 * After retention removed the oldest events (docs/audit.md#retention), `first_seq` is above 1 and
 * the first checkpoint is the one at `first_seq - 1`: its signed head hash is the `prev_hash` of
 * the first event, so the rest of the chain is anchored without the events before it.
 */
import { once } from 'node:events';
import type { AuditReader, AuditRecord } from '../app/ports.js';
import { auditExportFormat, checkpointLine, eventLine } from './export-format.js';
import { genesisHash, hashedFieldNames } from './hash.js';

export interface ExportOptions {
  /** Timestamp for the header; defaults to the system clock. */
  readonly now?: number;
  /** Events read per query. Default 2000. */
  readonly pageSize?: number;
}

export interface ExportSummary {
  readonly headSeq: number;
  readonly headHash: string;
  readonly events: number;
  readonly checkpoints: number;
  /** Events after the last checkpoint, which no signature covers yet. */
  readonly unsignedEvents: number;
}

/**
 * Streams the audit chain to `writable` as JSON Lines (see the module comment for the format),
 * honouring back-pressure. Does not end `writable`.
 *
 * @example await exportAudit(store.auditLog, createWriteStream('audit.jsonl'));
 */
export async function exportAudit(
  reader: AuditReader,
  writable: NodeJS.WritableStream,
  options: ExportOptions = {},
): Promise<ExportSummary> {
  const pageSize = options.pageSize ?? 2000;
  // One read: a cut between reading the head and the floor would leave its audit.pruned out.
  const head = await reader.head();
  const prunedThrough = head.prunedThrough;
  const checkpoints = (await reader.checkpoints()).filter(
    (checkpoint) => checkpoint.seq <= head.seq && checkpoint.seq >= prunedThrough,
  );
  if (prunedThrough > 0 && checkpoints[0]?.seq !== prunedThrough) {
    throw new Error(
      `the checkpoint at ${prunedThrough}, where retention cut the log, is missing: the export could not be verified`,
    );
  }
  const header = {
    kind: 'header',
    format: auditExportFormat,
    exported_at: options.now ?? Date.now(),
    first_seq: prunedThrough + 1,
    head_seq: head.seq,
    head_hash: head.hash,
    events: head.seq - prunedThrough,
    checkpoints: checkpoints.length,
    chain: {
      hash: 'lowercase hex SHA-256 of UTF-8 (prev_hash followed by the RFC 8785 canonical JSON of the hashed fields)',
      hashed_fields: hashedFieldNames,
      genesis_prev_hash: genesisHash,
    },
    checkpoint_signature: 'base64url Ed25519 over the RFC 8785 canonical JSON of {seq, at, head_hash, kid}',
  };
  await write(writable, `${JSON.stringify(header)}\n`);
  if (checkpoints.length > 0) await write(writable, checkpoints.map(checkpointLine).join(''));

  let after = prunedThrough;
  while (after < head.seq) {
    const page = await reader.read(after, Math.min(pageSize, head.seq - after));
    if (page.length === 0) break;
    // Retention moved its floor while the export ran: what was read no longer starts at the anchor.
    if (page[0]?.seq !== after + 1) {
      throw new Error(
        `audit events after ${after} were removed by retention during the export; export again`,
      );
    }
    let chunk = '';
    for (const record of page) chunk += eventLine(record);
    await write(writable, chunk);
    after = (page[page.length - 1] as AuditRecord).seq;
  }

  const lastSigned = checkpoints.at(-1)?.seq ?? 0;
  return {
    headSeq: head.seq,
    headHash: head.hash,
    events: after - prunedThrough,
    checkpoints: checkpoints.length,
    unsignedEvents: head.seq - lastSigned,
  };
}

async function write(writable: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!writable.write(chunk)) await once(writable, 'drain');
}
