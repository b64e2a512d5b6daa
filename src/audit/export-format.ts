/**
 * The lines of an audit export (format `portcullis-audit/1`; the file layout is described in
 * export.ts). Pure: builds and recognises lines, no I/O.
 */
import type { AuditCheckpoint, AuditRecord } from '../app/ports.js';
import { canonicalJson } from './canonical.js';
import { canonicalEventBody, hashedFieldsOf, sha256Hex } from './hash.js';

/** The format name in the header line. */
export const auditExportFormat = 'portcullis-audit/1';

const eventLineEnd = '","kind":"event"}';
const hashMemberStart = ',"hash":"';
/** `,"hash":"<64 hex>","kind":"event"}`: what an event line adds to its hashed body (minus its "}"). */
const eventLineTailLength = hashMemberStart.length + 64 + eventLineEnd.length;

/** One checkpoint as an export line, newline included. */
export function checkpointLine(checkpoint: AuditCheckpoint): string {
  return (
    `{"kind":"checkpoint","seq":${checkpoint.seq},"at":${checkpoint.at}` +
    `,"head_hash":${canonicalJson(checkpoint.headHash)},"kid":${canonicalJson(checkpoint.kid)}` +
    `,"signature":${canonicalJson(checkpoint.signature)}}\n`
  );
}

/** One event as an export line, newline included: its canonical hashed body, then `hash` and `kind`. */
export function eventLine(record: AuditRecord): string {
  const body = canonicalEventBody(hashedFieldsOf(record));
  return `${body.slice(0, -1)}${hashMemberStart}${record.hash}${eventLineEnd}\n`;
}

/** The facts the verifier needs from an event line, read from its fixed-shape end without parsing it. */
export interface EventLineTail {
  /** The `type` member as it is written: a JSON string, quotes included. */
  readonly typeJson: string;
  readonly prevHash: string;
  readonly seq: number;
  readonly hash: string;
  /** The chain hash recomputed from the line's own bytes: SHA-256 of prevHash and the hashed body. */
  readonly recomputedHash: string;
}

// The members after `data` in a canonical body are scalars, so they can be matched exactly. A JSON
// string cannot contain `,"` (its quotes are escaped), so the last `,"prev_hash":"` is a real
// member, and matching from there to a single final `}` proves that it is a top-level one.
const jsonString = String.raw`"[^"\\]*(?:\\.[^"\\]*)*"`;
const jsonStringOrNull = `(?:null|${jsonString})`;
const prevHashMember = ',"prev_hash":"';
const eventTailPattern = new RegExp(
  String.raw`,"prev_hash":"([0-9a-f]{64})","reason":${jsonStringOrNull},"request_id":${jsonStringOrNull}` +
    `,"resource_id":${jsonStringOrNull},"seq":([1-9][0-9]{0,15}),"severity":${jsonString}` +
    `,"source_ip":${jsonStringOrNull},"type":(${jsonString}),"user_agent":${jsonStringOrNull}` +
    String.raw`,"hash":"([0-9a-f]{64})","kind":"event"}\r?$`,
  'y',
);

/**
 * Reads an event line written by {@link eventLine} from its end and recomputes its hash from its
 * own bytes, without JSON.parse or re-encoding: the verifier's fast path. Undefined when the line
 * does not have that exact shape (a reformatted file, or tampering); the caller then parses it.
 *
 * This reads the end of the line only. A recomputed hash that matches proves the line is the one
 * that was hashed only once the chain reaches a signed checkpoint (a SHA-256 preimage of a signed
 * chain), so the verifier uses this for entries a checkpoint will cover and parses the rest.
 */
export function readEventLineTail(line: string): EventLineTail | undefined {
  const start = line.lastIndexOf(prevHashMember);
  if (start === -1) return undefined;
  eventTailPattern.lastIndex = start;
  const match = eventTailPattern.exec(line);
  if (match === null) return undefined;
  const [, prevHash, seqText, typeJson, hash] = match as unknown as [string, string, string, string, string];
  const seq = Number(seqText);
  if (!Number.isSafeInteger(seq)) return undefined;
  const bodyEnd = line.length - (line.charCodeAt(line.length - 1) === 13 ? 1 : 0) - eventLineTailLength;
  const recomputedHash = sha256Hex(`${prevHash}${line.slice(0, bodyEnd)}}`);
  return { typeJson, prevHash, seq, hash, recomputedHash };
}

/**
 * The chain hash of an event line as this module writes it, computed from the line's own bytes:
 * SHA-256 of `prevHash` and the line without its tail. Undefined when the line does not have the
 * tail (e.g. a reformatted file); the caller then re-encodes the parsed fields instead.
 *
 * Sound because a match means the bytes are the hashed body itself (a SHA-256 preimage), which has
 * no `hash` or `kind` member of its own: the line's fields are then exactly the hashed ones.
 */
export function hashOfEventLine(line: string, prevHash: unknown): string | undefined {
  let end = line.length;
  if (line.charCodeAt(end - 1) === 13) end--; // "\r" of a CRLF file
  if (
    typeof prevHash !== 'string' ||
    end < eventLineTailLength + 2 ||
    !line.startsWith(eventLineEnd, end - eventLineEnd.length) ||
    !line.startsWith(hashMemberStart, end - eventLineTailLength)
  ) {
    return undefined;
  }
  return sha256Hex(`${prevHash}${line.slice(0, end - eventLineTailLength)}}`);
}
