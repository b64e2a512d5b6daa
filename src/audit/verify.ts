/**
 * Offline verification of an audit export (format in export.ts): pure, no database, no network,
 * only the lines and the audit public keys. Streams once, in constant memory.
 *
 * What is checked, and what each finding means (the FIRST finding is reported):
 * - `malformed`      a line is not JSON, not the expected kind, or the header is missing/unknown.
 * - `bad_signature`  a checkpoint's Ed25519 signature is invalid or its key is unknown.
 * - `changed`        an event's recomputed hash differs from its `hash` (or it carries fields the
 *                    hash does not cover); or a signed checkpoint's head_hash differs from the
 *                    recomputed chain, i.e. entries were rewritten with recomputed hashes: then the
 *                    finding names the first entry after the previous checkpoint and `throughSeq`.
 * - `removed`        a sequence number is skipped and never appears later.
 * - `reordered`      a sequence number is skipped but appears later in the file.
 * - `inserted`       a sequence number appears twice, or an entry with a valid hash does not link
 *                    to its predecessor's hash (forged in, or the predecessor was rehashed),
 *                    or there are more events than the header declares.
 * - `truncated`      the file ends before the last checkpoint's (or the header's) sequence.
 *
 * The header's `head_seq` and `head_hash` are checked too (truncation, extra entries, a rewrite of
 * the unsigned tail) but the header is not signed: they only catch an attacker who forgot it.
 *
 * An export of a log that retention cut (header `first_seq` above 1) must start with the signed
 * checkpoint at `first_seq - 1`, which anchors the first event's `prev_hash`, and must hold, under a
 * signed checkpoint, the `audit.pruned` event that records that cut: its `data.throughSeq`,
 * `throughHash` and `checkpointAt` are the anchor's, its `cutoff` is its own time minus
 * `retentionSeconds` (at least a day) and after the anchor, and its `signature` verifies under an
 * audit key (cut-statement.ts). Events removed without one are `removed`.
 *
 * Limits, by construction: events after the last checkpoint are covered by no signature, so an
 * attacker who rewrites them and the unsigned header consistently is not detected; `unsignedEvents`
 * says how many there are. Deleting checkpoint lines is detected only against the header's count.
 */
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { AuditCheckpoint } from '../app/ports.js';
import { checkpointSignatureValid, ed25519PublicKey } from './checkpoint.js';
import { cutSignatureValid, minimumRetentionSeconds } from './cut-statement.js';
import { auditExportFormat, hashOfEventLine, readEventLineTail } from './export-format.js';
import { eventHash, genesisHash, type HashedEventFields } from './hash.js';

export type TamperKind =
  | 'changed'
  | 'removed'
  | 'inserted'
  | 'reordered'
  | 'bad_signature'
  | 'truncated'
  | 'malformed';

/** The first thing found wrong. */
export interface VerifyProblem {
  readonly kind: TamperKind;
  /** Sequence number of the first broken entry (of the checkpoint, for `bad_signature`); null if none applies. */
  readonly seq: number | null;
  /** For a rewrite caught only by a checkpoint: the last entry of the affected range. */
  readonly throughSeq?: number;
  /** 1-based line of the export where it was detected. */
  readonly line: number;
  readonly message: string;
}

interface VerifyStatistics {
  /** The first entry the export holds: 1, or the entry after the retention cut. */
  readonly firstSeq: number;
  /** After a retention cut: the signed checkpoint the rest hangs from (the log is complete from its `at`). */
  readonly anchor?: { readonly seq: number; readonly at: number };
  /** Event lines read. */
  readonly events: number;
  /** Checkpoint lines read. */
  readonly checkpoints: number;
  /**
   * Last entry verified, and its hash. On failure, the last one before the problem that can be
   * trusted: for a rewrite caught by a checkpoint or the header, the last signed entry.
   */
  readonly headSeq: number;
  readonly headHash: string;
  /** Highest sequence covered by a verified signature (0 if none). */
  readonly signedThroughSeq: number;
  /** Verified events after `signedThroughSeq`, which no signature covers. */
  readonly unsignedEvents: number;
}

export type VerifyResult =
  | (VerifyStatistics & { readonly ok: true })
  | (VerifyStatistics & { readonly ok: false; readonly problem: VerifyProblem });

const prunedType = 'audit.pruned';
const prunedTypeJson = JSON.stringify(prunedType);

/** Fields on a valid event line: `kind`, the hashed fields and `hash`. */
const eventLineFieldCount = 17;
const hexHash = /^[0-9a-f]{64}$/;

/**
 * Verifies an export line by line and names the first broken entry.
 *
 * @param lines the export's lines (with or without trailing newlines), e.g. from {@link readLines}.
 * @param publicKeys the audit public keys (Ed25519 JWKs); a key without `kid` is tried for any checkpoint.
 * @example
 *   const result = await verifyAuditExport(readLines('audit.jsonl'), await loadPublicKeys('audit.jwks'));
 *   if (!result.ok) console.error(`${result.problem.kind} at seq ${result.problem.seq}: ${result.problem.message}`);
 */
export async function verifyAuditExport(
  lines: AsyncIterable<string> | Iterable<string>,
  publicKeys: readonly JWK[],
  options: {
    /**
     * Called with each event line once it is verified in place (hash, sequence, link), in order:
     * what a consumer reads (the access report) is exactly what was verified, in the same pass.
     * Only an `ok` result makes what it was given trustworthy.
     */
    readonly onVerifiedEvent?: (line: string) => void;
  } = {},
): Promise<VerifyResult> {
  const verifier = new ExportVerifier(publicKeys, options.onVerifiedEvent);
  for await (const line of lines) {
    if (!verifier.push(line)) break;
  }
  return verifier.finish();
}

type Phase = 'header' | 'checkpoints' | 'events';

/** The verification state machine: one `push` per line, then `finish`. */
class ExportVerifier {
  private readonly keysByKid = new Map<string, KeyObject>();
  private readonly keysWithoutKid: KeyObject[] = [];

  private phase: Phase = 'header';
  private lineNumber = 0;
  private declaredHeadSeq: number | null = null;
  private declaredHeadHash: string | null = null;
  private declaredCheckpoints: number | null = null;
  /** From the header: above 1 when retention removed the entries before it. */
  private firstSeq = 1;
  /** The signed head that the first entry links to, once its checkpoint is read (retention). */
  private anchor: { seq: number; headHash: string; at: number } | undefined;
  /** The `audit.pruned` event recording the cut at `anchor`, found under a signed checkpoint. */
  private cutRecorded = false;

  /** Verified checkpoints with seq ≥ 1, in order; matched against the chain as it is recomputed. */
  private readonly signed: { seq: number; headHash: string }[] = [];
  private lastCheckpointSeq = -1;
  private nextSigned = 0;
  private signedThroughSeq = 0;
  private signedThroughHash = genesisHash;
  private checkpointLines = 0;

  private eventLines = 0;
  private headSeq = 0;
  private headHash = genesisHash;
  private headLine = 0;
  private previousHeadHash = genesisHash;

  private problem: VerifyProblem | undefined;
  /** A skipped sequence number whose fate (removed or moved later) is decided by reading on. */
  private missing: { seq: number; line: number; found: number } | undefined;
  /** Two valid entries with the same seq, in a row: the next line tells which one the chain continues from. */
  private duplicate: { seq: number; firstLine: number; secondLine: number; secondHash: string } | undefined;

  /** The line being read, handed to `onVerifiedEvent` once its entry is placed in the chain. */
  private currentLine = '';

  constructor(
    publicKeys: readonly JWK[],
    private readonly onVerifiedEvent?: (line: string) => void,
  ) {
    if (publicKeys.length === 0) throw new TypeError('At least one audit public key is needed to verify');
    for (const jwk of publicKeys) {
      const key = ed25519PublicKey(jwk);
      if (jwk.kid === undefined) this.keysWithoutKid.push(key);
      else this.keysByKid.set(jwk.kid, key);
    }
  }

  /** Feeds one line; false once the outcome is decided and further lines cannot change it. */
  push(rawLine: string): boolean {
    this.lineNumber++;
    this.currentLine = rawLine;
    if (rawLine.length === 0) return true;
    if (this.missing !== undefined) return this.lookForMissing(rawLine);
    if (this.duplicate !== undefined) return this.resolveDuplicate(rawLine);
    // Entries that a signed checkpoint will cover skip JSON.parse: if one was altered, the chain
    // cannot reach the signed head, and lines that do not have the exact shape are parsed below.
    if (this.phase === 'events' && this.headSeq < this.lastCheckpointSeq) {
      const tail = readEventLineTail(rawLine);
      if (tail !== undefined && tail.recomputedHash === tail.hash) {
        this.eventLines++;
        return this.chain(tail.seq, tail.prevHash, tail.hash, tail.typeJson === prunedTypeJson);
      }
    }

    let parsed: unknown;
    try {
      // JSON.parse ignores surrounding whitespace, so "\r\n" endings need no trimming.
      parsed = JSON.parse(rawLine);
    } catch {
      if (rawLine.trim() === '') return true;
      return this.fail('malformed', this.headSeq + 1, `line ${this.lineNumber} is not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return this.fail('malformed', this.headSeq + 1, `line ${this.lineNumber} is not a JSON object`);
    }
    const entry = parsed as Record<string, unknown>;
    switch (this.phase) {
      case 'header':
        return this.header(entry);
      case 'checkpoints':
        if (entry.kind === 'checkpoint') return this.checkpoint(entry);
        if (!this.checkpointCountMatches() || !this.anchored()) return false;
        this.phase = 'events';
        return this.event(entry, rawLine);
      case 'events':
        return this.event(entry, rawLine);
    }
  }

  finish(): VerifyResult {
    if (this.problem === undefined && this.duplicate !== undefined) {
      const { seq, firstLine, secondLine } = this.duplicate;
      this.distrustHead();
      this.fail(
        'inserted',
        seq,
        `entry ${seq} appears twice (lines ${firstLine} and ${secondLine})`,
        undefined,
        secondLine,
      );
    }
    if (this.problem === undefined && this.missing !== undefined) {
      const { seq, line, found } = this.missing;
      this.problem = {
        kind: 'removed',
        seq,
        line,
        message: `entry ${seq} is missing: entry ${found} follows entry ${seq - 1}`,
      };
    }
    if (this.problem === undefined) this.checkEnd();
    if (this.problem === undefined && this.firstSeq > 1 && !this.cutRecorded) {
      this.fail(
        'removed',
        1,
        `entries 1–${this.firstSeq - 1} are absent and no audit.pruned event signed with an audit key records their removal`,
        this.firstSeq - 1,
      );
    }
    const statistics: VerifyStatistics = {
      firstSeq: this.firstSeq,
      ...(this.anchor ? { anchor: { seq: this.anchor.seq, at: this.anchor.at } } : {}),
      events: this.eventLines,
      checkpoints: this.checkpointLines,
      headSeq: this.headSeq,
      headHash: this.headHash,
      signedThroughSeq: this.signedThroughSeq,
      unsignedEvents: this.headSeq - this.signedThroughSeq,
    };
    return this.problem === undefined
      ? { ...statistics, ok: true }
      : { ...statistics, ok: false, problem: this.problem };
  }

  private header(entry: Record<string, unknown>): boolean {
    if (entry.kind !== 'header' || entry.format !== auditExportFormat) {
      return this.fail('malformed', null, `line ${this.lineNumber} is not a ${auditExportFormat} header`);
    }
    if (entry.first_seq !== undefined) {
      if (!isSequence(entry.first_seq, 1)) {
        return this.fail('malformed', null, `the header's first_seq is not a sequence number`);
      }
      this.firstSeq = entry.first_seq;
    }
    if (typeof entry.head_seq === 'number') this.declaredHeadSeq = entry.head_seq;
    if (typeof entry.head_hash === 'string') this.declaredHeadHash = entry.head_hash;
    if (typeof entry.checkpoints === 'number') this.declaredCheckpoints = entry.checkpoints;
    this.phase = 'checkpoints';
    return true;
  }

  private checkpoint(entry: Record<string, unknown>): boolean {
    this.checkpointLines++;
    const { seq, at, head_hash: headHash, kid, signature } = entry;
    if (
      !isSequence(seq, 0) ||
      !Number.isSafeInteger(at) ||
      typeof headHash !== 'string' ||
      !hexHash.test(headHash) ||
      typeof kid !== 'string' ||
      typeof signature !== 'string'
    ) {
      return this.fail('malformed', isSequence(seq, 0) ? seq : null, `checkpoint line is incomplete`);
    }
    const previous = this.lastCheckpointSeq;
    if (seq === previous) return this.fail('inserted', seq, `checkpoint ${seq} appears twice`);
    if (seq < this.firstSeq - 1) {
      return this.fail(
        'malformed',
        seq,
        `checkpoint ${seq} comes before the export's first entry ${this.firstSeq} and its anchor`,
      );
    }
    if (seq < previous)
      return this.fail('reordered', seq, `checkpoint ${seq} comes after checkpoint ${previous}`);
    const checkpoint: AuditCheckpoint = { seq, at: at as number, headHash, kid, signature };
    const byKid = this.keysByKid.get(kid);
    const candidates = byKid === undefined ? this.keysWithoutKid : [byKid];
    if (candidates.length === 0) {
      return this.fail('bad_signature', seq, `checkpoint ${seq} is signed with unknown key ${kid}`);
    }
    if (!candidates.some((key) => checkpointSignatureValid(checkpoint, key))) {
      return this.fail('bad_signature', seq, `checkpoint ${seq}'s signature (key ${kid}) is not valid`);
    }
    this.lastCheckpointSeq = seq;
    if (seq > 0 && seq === this.firstSeq - 1) this.anchorAt(seq, headHash, at as number);
    else if (seq > 0) this.signed.push({ seq, headHash });
    else if (headHash !== genesisHash)
      return this.fail('malformed', 0, 'checkpoint 0 does not sign the genesis hash');
    return true;
  }

  /** The chain resumes after the retention cut from the anchor's signed hash. */
  private anchorAt(seq: number, headHash: string, at: number): void {
    this.anchor = { seq, headHash, at };
    this.headSeq = seq;
    this.headHash = headHash;
    this.previousHeadHash = headHash;
    this.signedThroughSeq = seq;
    this.signedThroughHash = headHash;
  }

  /** An export that starts after a retention cut needs the checkpoint at the cut. */
  private anchored(): boolean {
    if (this.firstSeq === 1 || this.anchor !== undefined) return true;
    return this.fail(
      'removed',
      1,
      `the export starts at entry ${this.firstSeq} but has no signed checkpoint at ${this.firstSeq - 1} ` +
        `to anchor it: entries 1–${this.firstSeq - 1} are missing`,
      this.firstSeq - 1,
    );
  }

  private checkpointCountMatches(): boolean {
    if (this.declaredCheckpoints === null || this.declaredCheckpoints === this.checkpointLines) return true;
    const kind = this.checkpointLines < this.declaredCheckpoints ? 'removed' : 'inserted';
    return this.fail(
      kind,
      null,
      `the header declares ${this.declaredCheckpoints} checkpoints but ${this.checkpointLines} are present`,
    );
  }

  private event(entry: Record<string, unknown>, line: string): boolean {
    this.eventLines++;
    const expected = this.headSeq + 1;
    if (entry.kind !== 'event') {
      return this.fail(
        'malformed',
        expected,
        `line ${this.lineNumber} is a ${String(entry.kind)}, not an event`,
      );
    }
    const claimed = isSequence(entry.seq, 1) ? entry.seq : null;
    const label =
      claimed === expected || claimed === null ? `entry ${expected}` : `entry ${expected} (seq ${claimed})`;

    let fieldCount = 0;
    for (const _ in entry) fieldCount++;
    if (fieldCount !== eventLineFieldCount) {
      return this.fail('changed', expected, `${label} has fields added or removed`);
    }
    // Hashing the line's own bytes skips re-encoding; a reformatted line takes the exact path.
    let recomputed = hashOfEventLine(line, entry.prev_hash);
    if (recomputed !== entry.hash) {
      try {
        recomputed = eventHash(entry as unknown as HashedEventFields);
      } catch {
        return this.fail('changed', expected, `${label} holds a value that is not canonical JSON`);
      }
    }
    if (recomputed === undefined || recomputed !== entry.hash) {
      return this.fail('changed', expected, `${label} does not match its hash: its content was changed`);
    }
    if (claimed === null || typeof entry.prev_hash !== 'string') {
      return this.fail('malformed', expected, `${label} has no valid seq or prev_hash`);
    }
    return this.chain(claimed, entry.prev_hash, recomputed, entry.type === prunedType);
  }

  /** Places an entry whose hash is right: in sequence, linked to its predecessor, at a checkpoint. */
  private chain(claimed: number, prevHash: string, recomputed: string, recordsCut: boolean): boolean {
    const expected = this.headSeq + 1;
    if (claimed === this.headSeq) {
      this.duplicate = {
        seq: claimed,
        firstLine: this.headLine,
        secondLine: this.lineNumber,
        secondHash: recomputed,
      };
      return true;
    }
    if (claimed < expected) {
      return this.fail('inserted', claimed, `entry ${claimed} appears again after entry ${this.headSeq}`);
    }
    if (claimed > expected) {
      this.missing = { seq: expected, line: this.lineNumber, found: claimed };
      return true;
    }
    if (prevHash !== this.headHash) {
      return this.fail(
        'inserted',
        claimed,
        `entry ${claimed} has a valid hash but does not link to entry ${this.headSeq}: it was inserted ` +
          `or forged, or entry ${this.headSeq} was rewritten with a recomputed hash`,
      );
    }
    this.previousHeadHash = this.headHash;
    this.headSeq = claimed;
    this.headHash = recomputed;
    this.headLine = this.lineNumber;
    if (recordsCut) this.noteCut(claimed);
    this.onVerifiedEvent?.(this.currentLine);
    return this.matchCheckpoint();
  }

  /**
   * An `audit.pruned` event counts for the cut only under a signed checkpoint and when its own
   * signature, by an audit key, covers exactly this cut: the server signs every head it finds, so
   * an event a database writer appended would otherwise soon be covered too.
   */
  private noteCut(seq: number): void {
    const anchor = this.anchor;
    if (anchor === undefined || this.cutRecorded || seq > this.lastCheckpointSeq) return;
    let entry: { at?: unknown; data?: Record<string, unknown> };
    try {
      entry = JSON.parse(this.currentLine) as typeof entry;
    } catch {
      return;
    }
    const data = entry.data ?? {};
    const { throughSeq, throughHash, checkpointAt, cutoff, retentionSeconds, kid, signature } = data;
    if (
      throughSeq !== anchor.seq ||
      throughHash !== anchor.headHash ||
      checkpointAt !== anchor.at ||
      typeof entry.at !== 'number' ||
      typeof retentionSeconds !== 'number' ||
      retentionSeconds < minimumRetentionSeconds ||
      cutoff !== entry.at - retentionSeconds * 1000 ||
      anchor.at >= cutoff ||
      typeof kid !== 'string' ||
      typeof signature !== 'string'
    ) {
      return;
    }
    const statement = { throughSeq, throughHash, checkpointAt, cutoff, retentionSeconds };
    const byKid = this.keysByKid.get(kid);
    const candidates = byKid === undefined ? this.keysWithoutKid : [byKid];
    this.cutRecorded = candidates.some((key) => cutSignatureValid(statement, kid, signature, key));
  }

  /** At a signed sequence, the recomputed head must be the signed one. */
  private matchCheckpoint(): boolean {
    const next = this.signed[this.nextSigned];
    if (next === undefined || next.seq !== this.headSeq) return true;
    this.nextSigned++;
    if (next.headHash !== this.headHash) {
      const from = this.signedThroughSeq + 1;
      this.distrustUnsigned();
      return this.fail(
        'changed',
        from,
        `entries ${from}–${next.seq} were rewritten with recomputed hashes: ` +
          `the chain no longer reaches signed checkpoint ${next.seq}`,
        next.seq,
      );
    }
    this.signedThroughSeq = next.seq;
    this.signedThroughHash = next.headHash;
    return true;
  }

  /** The copy that the following entry links to is the original; the other one was inserted. */
  private resolveDuplicate(line: string): boolean {
    const { seq, firstLine, secondLine, secondHash } = this.duplicate as NonNullable<typeof this.duplicate>;
    this.duplicate = undefined;
    let followerLinksToSecond = false;
    try {
      followerLinksToSecond = (JSON.parse(line) as { prev_hash?: unknown }).prev_hash === secondHash;
    } catch {
      // Undecidable; report the second copy.
    }
    const [inserted, original] = followerLinksToSecond ? [firstLine, secondLine] : [secondLine, firstLine];
    this.distrustHead();
    return this.fail(
      'inserted',
      seq,
      `entry ${seq} appears twice: line ${inserted} was inserted, the chain continues from line ${original}`,
      undefined,
      inserted,
    );
  }

  /** After a gap: the skipped entry showing up later means reordering, never showing up means removal. */
  private lookForMissing(line: string): boolean {
    const missing = this.missing as { seq: number; line: number; found: number };
    let seq: unknown;
    try {
      seq = (JSON.parse(line) as { seq?: unknown }).seq;
    } catch {
      return true;
    }
    if (seq !== missing.seq) return true;
    this.missing = undefined;
    return this.fail(
      'reordered',
      missing.seq,
      `entry ${missing.seq} is out of place: entry ${missing.found} came first (line ${missing.line}), ` +
        `entry ${missing.seq} only at line ${this.lineNumber}`,
      undefined,
      missing.line,
    );
  }

  private checkEnd(): void {
    if (this.phase !== 'events') {
      if (this.phase === 'header') {
        this.fail('malformed', null, 'the export is empty: no header');
        return;
      }
      if (!this.checkpointCountMatches()) return;
    }
    if (!this.anchored()) return;
    const lastSigned = Math.max(this.lastCheckpointSeq, 0);
    if (this.headSeq < lastSigned) {
      this.fail(
        'truncated',
        this.headSeq + 1,
        `the export ends at entry ${this.headSeq} but checkpoint ${lastSigned} is signed: entries ` +
          `${this.headSeq + 1}–${lastSigned} are missing`,
      );
      return;
    }
    const declared = this.declaredHeadSeq;
    if (declared !== null && this.headSeq < declared) {
      this.fail(
        'truncated',
        this.headSeq + 1,
        `the export ends at entry ${this.headSeq} but its header declares ${declared} entries`,
      );
    } else if (declared !== null && this.headSeq > declared) {
      this.fail('inserted', declared + 1, `entries after ${declared}, the header's last entry, were added`);
    } else if (this.declaredHeadHash !== null && this.headHash !== this.declaredHeadHash) {
      const from = this.signedThroughSeq + 1;
      this.distrustUnsigned();
      this.fail(
        'changed',
        from,
        `entries ${from}–${this.headSeq} were rewritten with recomputed hashes: the chain does not end ` +
          `at the header's head_hash (the header is not signed; no checkpoint covers these entries)`,
        this.headSeq,
      );
    }
  }

  /** Entries after the last signed one were rewritten somewhere: only the signed ones still count. */
  private distrustUnsigned(): void {
    this.headSeq = this.signedThroughSeq;
    this.headHash = this.signedThroughHash;
  }

  /** Either copy of a duplicated head entry may be the forged one. */
  private distrustHead(): void {
    this.headSeq--;
    this.headHash = this.previousHeadHash;
  }

  private fail(
    kind: TamperKind,
    seq: number | null,
    message: string,
    throughSeq?: number,
    line?: number,
  ): false {
    this.problem = {
      kind,
      seq,
      ...(throughSeq === undefined ? {} : { throughSeq }),
      line: line ?? this.lineNumber,
      message,
    };
    return false;
  }
}

function isSequence(value: unknown, minimum: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum;
}
