/**
 * Which of the client's Parses and Binds the server accepted. Pure: the connection reports what
 * the client sent and what the server answered, in the order each side's bytes pass the gateway.
 *
 * **Batches.** The server answers the client's messages in order, one ReadyForQuery per batch: the
 * extended-protocol messages up to a Sync, or one Query or FunctionCall. A Parse or Bind is
 * *pending* until the server answers it in its batch: ParseComplete or BindComplete commits it (to
 * the statements or portals the server now has); an ErrorResponse drops it and everything after it
 * in that batch, which the server skips up to the Sync. What the client adds to a batch after the
 * gateway has seen that batch fail is skipped too, so it is never queued.
 *
 * **COPY FROM STDIN.** While the server reads copy data it ignores Sync (a client that ran COPY
 * with the extended protocol has often sent one already): the Syncs the client sent from the
 * message that started the copy until its CopyDone or CopyFail end no batch.
 *
 * **Portals in SQL.** `DECLARE` and `CLOSE` (or a FunctionCall, which can run anything) can replace
 * a named portal under the protocol's feet, and a transaction's end drops every portal the protocol
 * bound: a named portal bound before either is not trusted.
 *
 * Where the two sides can no longer be matched (a Query inside an unsynced extended batch, client
 * messages the server would read in copy mode, more pending than the caps allow), the tracker is
 * `untracked` for the rest of the session: Executes are then recorded without SQL.
 */
import { BackendMessage } from './protocol/index.js';

/**
 * The text of a statement as records carry it: cut at 64 Ki characters, with length and hash then.
 * Text that is not valid UTF-8 (a session in another `client_encoding`) also carries its bytes.
 */
export interface RecordedSql {
  readonly sql: string;
  /** The bytes as sent, base64, at most 64 KiB of them; only when they are not valid UTF-8. */
  readonly sqlBase64?: string;
  /** How many bytes were sent; with `sqlBase64`. */
  readonly sqlByteLength?: number;
  readonly sqlLength?: number;
  readonly sqlSha256?: string;
  readonly sqlTruncated?: true;
}

export interface PreparedStatement {
  readonly name: string;
  readonly text: RecordedSql;
  /** Parameter type OIDs the Parse declared (0 or missing: the server infers the type). */
  readonly parameterTypes: readonly number[];
  /** The prepared-statement epoch when the Parse was sent. */
  readonly epoch: number;
  /** Running it may create or drop prepared statements (PREPARE, DEALLOCATE, DISCARD). */
  readonly touchesPrepared: boolean;
  /** Running it may close or declare cursors (CLOSE, DECLARE). */
  readonly touchesPortals: boolean;
}

/** Why an Execute record has `sql: null`. */
export type UnknownSqlReason =
  /** No Parse of the statement was seen in this session (or it was forgotten beyond the cap). */
  | 'statement_not_seen'
  /** The Bind came while Parses of the name with different text were unanswered: which one ran is not known. */
  | 'parse_pending'
  /** The Execute came while a Bind of the portal to other SQL was unanswered in an earlier batch. */
  | 'bind_pending'
  /** SQL since the Parse (PREPARE, DEALLOCATE, DISCARD) or the Bind (DECLARE, CLOSE) could have replaced it. */
  | 'redefined_in_sql'
  /** No Bind of the portal was seen, or its transaction ended (or it was forgotten beyond the cap). */
  | 'portal_not_seen'
  /** The server's answers can no longer be matched to what the client sent (see the module comment). */
  | 'untracked';

export interface BoundPortal {
  readonly name: string;
  readonly statement: string;
  /** The statement the server bound, or why it is not known. */
  readonly resolved: PreparedStatement | UnknownSqlReason;
  readonly parameters: readonly (string | null)[] | undefined;
  /** The portal epoch when the Bind was sent. */
  readonly epoch: number;
  /** Characters it holds (its text and parameters), for the memory cap. */
  readonly size: number;
}

interface Batch {
  readonly parses: PreparedStatement[];
  readonly binds: BoundPortal[];
  /** The server reported an error in it: it skips the rest up to the Sync. */
  failed: boolean;
  /** Parse, Bind or Execute was sent in it. */
  extended: boolean;
  /** CopyDone or CopyFail sent in it while no copy was known to run. */
  copyEnds: number;
  /** How the client ended it; null while the client is still adding to it. */
  end: 'sync' | 'simple' | null;
}

/** Statements and portals remembered per session, and unanswered messages (beyond: see below). */
const maxEntries = 10_000;
/** Characters of statement text and parameters remembered per session, per kind. */
const maxChars = 16 * 1024 * 1024;

function newBatch(): Batch {
  return { parses: [], binds: [], failed: false, extended: false, copyEnds: 0, end: null };
}

function sizeOf(text: RecordedSql): number {
  return text.sql.length + (text.sqlBase64?.length ?? 0) + 64;
}

/** Same text: equal recorded text and bytes, or for text cut short, equal hashes. */
export function sameText(a: RecordedSql, b: RecordedSql): boolean {
  return a.sql === b.sql && a.sqlSha256 === b.sqlSha256 && a.sqlBase64 === b.sqlBase64;
}

/** A map that forgets its oldest entries beyond `maxEntries` or `maxChars`. */
class Remembered<T extends { readonly name: string }> {
  readonly #entries = new Map<string, { value: T; size: number }>();
  #chars = 0;

  get(name: string): T | undefined {
    return this.#entries.get(name)?.value;
  }

  set(value: T, size: number): void {
    this.delete(value.name);
    this.#entries.set(value.name, { value, size });
    this.#chars += size;
    while (this.#entries.size > maxEntries || this.#chars > maxChars) {
      this.delete(this.#entries.keys().next().value as string);
    }
  }

  delete(name: string): void {
    const found = this.#entries.get(name);
    if (!found) return;
    this.#entries.delete(name);
    this.#chars -= found.size;
  }

  clear(): void {
    this.#entries.clear();
    this.#chars = 0;
  }
}

export class BatchTracker {
  readonly #statements = new Remembered<PreparedStatement>();
  readonly #portals = new Remembered<BoundPortal>();
  /** Unanswered batches, oldest first; the last is the one the client is adding to. */
  #batches: Batch[] = [newBatch()];
  #pendingEntries = 0;
  #pendingChars = 0;
  /** The server reads copy data (CopyInResponse seen, the client's CopyDone or CopyFail not yet). */
  #copyIn = false;
  /** Syncs the client sent during the copy, which the server ignores. */
  #syncsInCopy = 0;
  #untracked = false;
  /** Bumped when SQL that may create or drop prepared statements goes upstream. */
  #statementEpoch = 0;
  /** Bumped when SQL that may declare or close cursors goes upstream. */
  #portalEpoch = 0;

  get untracked(): boolean {
    return this.#untracked;
  }

  /** The batch the client is adding to failed: the server skips what is added to it up to the Sync. */
  get skipping(): boolean {
    return !this.#untracked && this.#open().failed;
  }

  /** True while a Parse or Bind waits for its answer, or a copy runs: the connection then reports ParseComplete, BindComplete, ErrorResponse and CopyInResponse. */
  get awaitingAnswers(): boolean {
    return this.#pendingEntries > 0 || this.#copyIn;
  }

  #open(): Batch {
    return this.#batches[this.#batches.length - 1] as Batch;
  }

  // ------------------------------------------------------------------ what the client sent

  /** A Parse: it is stamped with the prepared-statement epoch as of itself (its own SQL counted). */
  parseSent(parse: Omit<PreparedStatement, 'epoch'>): void {
    if (parse.touchesPrepared) this.#statementEpoch++;
    if (parse.touchesPortals) this.#portalEpoch++;
    const statement: PreparedStatement = { ...parse, epoch: this.#statementEpoch };
    const open = this.#extendedSent();
    if (open && this.#reserve(sizeOf(statement.text))) open.parses.push(statement);
  }

  /** A Bind: it is stamped with the portal epoch as of now. */
  bindSent(bind: Omit<BoundPortal, 'epoch'>): void {
    const open = this.#extendedSent();
    if (open && this.#reserve(bind.size)) open.binds.push({ ...bind, epoch: this.#portalEpoch });
  }

  executeSent(ran: PreparedStatement | UnknownSqlReason): void {
    this.#extendedSent();
    if (typeof ran === 'string') return;
    // Running it may create or drop prepared statements or cursors: later ones are no longer certain.
    if (ran.touchesPrepared) this.#statementEpoch++;
    if (ran.touchesPortals) this.#portalEpoch++;
  }

  /** A Query or FunctionCall: a batch of its own. */
  simpleSent(effects: { readonly touchesPrepared: boolean; readonly touchesPortals: boolean }): void {
    if (effects.touchesPrepared) this.#statementEpoch++;
    if (effects.touchesPortals) this.#portalEpoch++;
    if (this.#untracked) return;
    const open = this.#open();
    // Inside an unsynced batch it is skipped if the batch failed and answered if not, and during a
    // copy it ends the copy with an error: the answers can no longer be matched either way.
    if (open.extended || this.#copyIn) return this.#loseTrack();
    open.end = 'simple';
    this.#batches.push(newBatch());
  }

  syncSent(): void {
    if (this.#untracked) return;
    if (this.#copyIn) {
      this.#syncsInCopy++;
      return;
    }
    this.#open().end = 'sync';
    this.#batches.push(newBatch());
  }

  /** CopyDone or CopyFail. */
  copyEndSent(): void {
    if (this.#copyIn) {
      this.#copyIn = false;
      this.#syncsInCopy = 0;
    } else if (!this.#untracked) {
      this.#open().copyEnds++;
    }
  }

  /** The open batch, unless the server skips what is added to it (it failed) or tracking is lost. */
  #extendedSent(): Batch | undefined {
    if (this.#untracked) return undefined;
    const open = this.#open();
    open.extended = true;
    return open.failed ? undefined : open;
  }

  #reserve(chars: number): boolean {
    if (this.#pendingEntries + 1 > maxEntries || this.#pendingChars + chars > maxChars) {
      this.#loseTrack();
      return false;
    }
    this.#pendingEntries++;
    this.#pendingChars += chars;
    return true;
  }

  #loseTrack(): void {
    this.#untracked = true;
    this.#batches = [newBatch()];
    this.#pendingEntries = 0;
    this.#pendingChars = 0;
    this.#statements.clear();
    this.#portals.clear();
  }

  // ------------------------------------------------------------------ what the server answered

  /** A ParseComplete, BindComplete, ErrorResponse, CopyInResponse, CopyBothResponse or ReadyForQuery. */
  serverSaid(type: number, transactionStatus?: number): void {
    if (this.#untracked) return;
    const front = this.#batches[0] as Batch;
    switch (type) {
      case BackendMessage.ParseComplete: {
        const parse = front.parses.shift();
        if (!parse) return this.#loseTrack();
        this.#release(sizeOf(parse.text));
        this.#statements.set(parse, sizeOf(parse.text));
        return;
      }
      case BackendMessage.BindComplete: {
        const bind = front.binds.shift();
        if (!bind) return this.#loseTrack();
        this.#release(bind.size);
        this.#portals.set(bind, bind.size);
        return;
      }
      case BackendMessage.ErrorResponse:
        this.#failed(front);
        return;
      case BackendMessage.CopyInResponse:
      case BackendMessage.CopyBothResponse:
        this.#copyStarted(front);
        return;
      case BackendMessage.ReadyForQuery:
        this.#batchDone(front, transactionStatus);
        return;
    }
  }

  #release(chars: number): void {
    this.#pendingEntries--;
    this.#pendingChars -= chars;
  }

  #failed(front: Batch): void {
    front.failed = true;
    for (const parse of front.parses.splice(0)) this.#release(sizeOf(parse.text));
    for (const bind of front.binds.splice(0)) this.#release(bind.size);
    if (this.#copyIn) {
      // The copy ended with the error. A Sync the client sent during it was ignored by the gateway
      // but may now be read by the server as one.
      this.#copyIn = false;
      if (this.#syncsInCopy > 0) this.#loseTrack();
      this.#syncsInCopy = 0;
    }
  }

  #copyStarted(front: Batch): void {
    const later = this.#batches.slice(1);
    if (this.#batches.some((b) => b.copyEnds > 0)) return this.#loseTrack();
    if (front.end === 'simple') {
      // A Query started it: anything the client sent behind it is read as part of the copy.
      if (later.some((b) => b.extended || b.end !== null)) return this.#loseTrack();
    } else {
      // An Execute started it: the Syncs sent since are ignored, so its batch goes on.
      if (later.some((b) => b.extended)) return this.#loseTrack();
      this.#syncsInCopy = later.filter((b) => b.end === 'sync').length + (front.end === 'sync' ? 1 : 0);
      front.end = null;
      this.#batches = [front];
    }
    this.#copyIn = true;
  }

  #batchDone(front: Batch, transactionStatus: number | undefined): void {
    if (front.end === null) {
      // Nothing the client sent is answered by this (the login's own ReadyForQuery): only an
      // unexpected one when something is pending.
      if (this.#batches.length > 1 || front.extended) this.#loseTrack();
    } else {
      // What is still pending in it was never answered: the server skipped it.
      for (const parse of front.parses) this.#release(sizeOf(parse.text));
      for (const bind of front.binds) this.#release(bind.size);
      this.#batches.shift();
    }
    // Idle: the transaction ended, and with it every portal the protocol bound.
    if (transactionStatus === 0x49 /* 'I' */) this.#portals.clear();
  }

  // ------------------------------------------------------------------ what ran

  /** The statement a Bind of `name` sent now will use, or why that is not known. */
  resolveStatement(name: string): PreparedStatement | UnknownSqlReason {
    if (this.#untracked) return 'untracked';
    const found = this.#pendingFor(
      name,
      (b) => b.parses,
      (a, b) => sameText(a.text, b.text),
    );
    const committed = this.#statements.get(name);
    const current = (s: PreparedStatement) =>
      s.name === '' || s.epoch === this.#statementEpoch ? s : ('redefined_in_sql' as const);
    // In the Bind's own batch: if it fails, the Bind is skipped with it.
    if (found.inOpenBatch) return current(found.inOpenBatch);
    const candidate = found.earlier;
    if (candidate === undefined) return committed === undefined ? 'statement_not_seen' : current(committed);
    // An earlier batch's Parse may still fail, leaving the committed statement in place.
    if (found.ambiguous || (committed !== undefined && !sameText(committed.text, candidate.text)))
      return 'parse_pending';
    if (committed !== undefined && current(committed) !== committed) return 'redefined_in_sql';
    return current(candidate);
  }

  /** The portal an Execute of `name` sent now runs, or why that is not known. */
  resolvePortal(name: string): BoundPortal | UnknownSqlReason {
    if (this.#untracked) return 'untracked';
    const found = this.#pendingFor(
      name,
      (b) => b.binds,
      (a, b) => a.resolved === b.resolved,
    );
    const committed = this.#portals.get(name);
    // The unnamed portal cannot be declared or closed in SQL.
    const current = (p: BoundPortal) =>
      p.name === '' || p.epoch === this.#portalEpoch ? p : ('redefined_in_sql' as const);
    if (found.inOpenBatch) return current(found.inOpenBatch);
    const candidate = found.earlier;
    if (candidate === undefined) return committed === undefined ? 'portal_not_seen' : current(committed);
    if (found.ambiguous || (committed !== undefined && committed.resolved !== candidate.resolved))
      return 'bind_pending';
    return current(candidate);
  }

  /** The newest pending entry named `name` in the open batch, else in earlier ones (and whether those differ). */
  #pendingFor<T extends { readonly name: string }>(
    name: string,
    of: (batch: Batch) => readonly T[],
    same: (a: T, b: T) => boolean,
  ): { inOpenBatch?: T; earlier?: T; ambiguous: boolean } {
    const batches = this.#batches;
    const own = of(batches[batches.length - 1] as Batch).findLast((entry) => entry.name === name);
    if (own) return { inOpenBatch: own, ambiguous: false };
    let earlier: T | undefined;
    let ambiguous = false;
    for (let i = batches.length - 2; i >= 0; i--) {
      const entries = of(batches[i] as Batch);
      for (let j = entries.length - 1; j >= 0; j--) {
        const entry = entries[j] as T;
        if (entry.name !== name) continue;
        if (earlier === undefined) earlier = entry;
        else if (!same(earlier, entry)) ambiguous = true;
      }
    }
    return { earlier, ambiguous };
  }
}
