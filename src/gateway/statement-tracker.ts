/**
 * Turns a session's Query, Parse, Bind, Execute and FunctionCall messages into statement records
 * (the recorder batches them into `gateway.statements` events). A Query is one record; a
 * FunctionCall is one record (function OID and, when configured, its arguments); a Parse is one record
 * (statement name and text); a Bind is remembered (portal → statement and, when configured, its
 * parameters) and folded into the record of the Execute that runs it, so each execution is one
 * record that names the SQL that ran — with `-M prepared` one record per execution, not three.
 */
import { createHash } from 'node:crypto';
import { binaryParameterText, isTextLikeType } from './binary-parameter.js';
import {
  BackendMessage,
  decodeBind,
  decodeExecute,
  decodeFunctionCall,
  decodeParse,
  decodeQuery,
  FrontendMessage,
} from './protocol/index.js';
import type { StatementFields } from './statement-recorder.js';

/** Statement text kept in one event; longer text is cut and its SHA-256 recorded. */
export const maxRecordedSqlChars = 65_536;
/** Bytes of one parameter value kept when parameters are recorded. */
export const maxRecordedParameterBytes = 1024;
/** Named statements, and portals, remembered per session (the oldest is forgotten beyond). */
const maxNamedStatements = 10_000;

export interface SessionFacts {
  readonly sessionId: string;
  readonly principalId: string;
  readonly grantId: string;
  readonly resourceId: string;
  readonly requestId: string;
}

interface PreparedStatement {
  readonly name: string;
  readonly query: string;
  /** Parameter type OIDs the Parse declared (0 or missing: the server infers the type). */
  readonly parameterTypes: readonly number[];
  /** The SQL-level epoch when the Parse was sent (see `#epoch`). */
  readonly epoch: number;
  /** The text may itself run PREPARE, DEALLOCATE or DISCARD when executed. */
  readonly touchesPrepared: boolean;
}

/** A Parse sent upstream and not yet answered: `segment` is the number of sync points sent before it. */
interface PendingParse extends PreparedStatement {
  readonly segment: number;
}

/** Why an Execute record has `sql: null`. */
export type UnknownSqlReason =
  /** No Parse of the statement was seen in this session (or it was forgotten beyond the cap). */
  | 'statement_not_seen'
  /** The Bind came while Parses of the name with different text were unanswered: which one ran is not known. */
  | 'parse_pending'
  /** PREPARE, DEALLOCATE or DISCARD ran in SQL since the Parse, and could have replaced the statement. */
  | 'redefined_in_sql'
  /** No Bind of the portal was seen (or it was forgotten beyond the cap). */
  | 'portal_not_seen'
  /** The client broke the protocol's order (a Query inside an unsynced extended-protocol batch). */
  | 'untracked';

interface Portal {
  readonly statement: string;
  /** The statement the server bound, or why it is not known. */
  readonly resolved: PreparedStatement | UnknownSqlReason;
  readonly parameters: readonly (string | null)[] | undefined;
}

/** SQL that creates or drops prepared statements, outside the protocol's Parse/Close. */
const touchesPreparedSql = /\b(?:prepare|deallocate|discard)\b/i;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A parameter as audit-safe JSON: a binary value of a fixed-size type as its text form
 * (binary-parameter.ts); text when it is valid UTF-8 without NUL; else base64. Capped.
 */
function recordedValue(value: Buffer | null, binary: boolean, typeOid: number): string | null {
  if (value === null) return null;
  if (binary) {
    const text = binaryParameterText(typeOid, value);
    if (text !== undefined) return text;
  }
  const cut = value.length > maxRecordedParameterBytes ? value.subarray(0, maxRecordedParameterBytes) : value;
  const suffix = cut === value ? '' : `…(${value.length} bytes)`;
  if ((!binary || isTextLikeType(typeOid)) && !cut.includes(0)) {
    try {
      return `${utf8.decode(cut)}${suffix}`;
    } catch {
      // not UTF-8 (or cut inside a character): base64 below
    }
  }
  return `base64:${cut.toString('base64')}${suffix}`;
}

/** Adds `sql` (and, when cut, its length and hash) to `into`, keeping canonical key order. */
function addSql(into: Record<string, unknown>, sql: string): void {
  if (sql.length <= maxRecordedSqlChars) {
    into.sql = sql;
    return;
  }
  into.sql = sql.slice(0, maxRecordedSqlChars);
  into.sqlLength = sql.length;
  into.sqlSha256 = createHash('sha256').update(sql).digest('hex');
  into.sqlTruncated = true;
}

/**
 * Per-session statement state; `observe` returns the record a message produces, if any.
 *
 * **Only what the server accepted.** A Parse is *pending* until the server answers it: its
 * ParseComplete commits it to the statement map; an ErrorResponse drops it (and every Parse after
 * it up to the next Sync, which the server skips). The connection reports the server's
 * ParseComplete, ErrorResponse and ReadyForQuery ({@link serverSaid}) and the client's Sync
 * ({@link sync}). A Bind resolves its statement when it is sent, as the server does: from a
 * pending Parse of the same batch (if that Parse fails, the Bind is skipped too), else from the
 * committed one; when both are possible and differ, or when SQL may have replaced it (PREPARE,
 * DEALLOCATE or DISCARD seen in the session since), the Execute is recorded with `sql: null` and
 * `sqlUnknown` saying why, never with text that may not have run.
 */
export class StatementTracker {
  readonly #recordParameters: boolean;
  readonly #statements = new Map<string, PreparedStatement>();
  readonly #portals = new Map<string, Portal>();
  /** Parses sent and not yet answered, oldest first. */
  #pending: PendingParse[] = [];
  /** Sync points sent (Sync, Query, FunctionCall: each answered by one ReadyForQuery). */
  #syncPointsSent = 0;
  /** ReadyForQuery received. */
  #syncPointsAnswered = 0;
  /** Bumped when SQL text that may create or drop prepared statements goes upstream. */
  #epoch = 0;
  /** A Parse, Bind or Execute went upstream since the last Sync. */
  #unsynced = false;
  /** The client broke the protocol's order: the server's answers can no longer be matched. */
  #untracked = false;

  constructor(recordParameters: boolean) {
    this.#recordParameters = recordParameters;
  }

  /** True while a Parse waits for its answer: the connection then reports ParseComplete and ErrorResponse. */
  get awaitingParse(): boolean {
    return this.#pending.length > 0;
  }

  /** The client sent Sync. */
  sync(): void {
    this.#syncPointsSent++;
    this.#unsynced = false;
  }

  /** The server sent a ParseComplete, ErrorResponse or ReadyForQuery (`type`, a BackendMessage). */
  serverSaid(type: number): void {
    if (type === BackendMessage.ReadyForQuery) {
      this.#syncPointsAnswered++;
      return;
    }
    const pending = this.#pending;
    if (pending.length === 0) return;
    if (type === BackendMessage.ParseComplete) {
      const parse = pending.shift() as PendingParse;
      this.#commit(parse);
    } else if (type === BackendMessage.ErrorResponse) {
      // The server skips to the next Sync: the Parses of the batch it is in never complete.
      const segment = this.#syncPointsAnswered;
      while (pending.length > 0 && (pending[0] as PendingParse).segment === segment) pending.shift();
    }
  }

  #commit(parse: PreparedStatement): void {
    const statements = this.#statements;
    if (parse.name !== '' && !statements.has(parse.name) && statements.size >= maxNamedStatements) {
      statements.delete(statements.keys().next().value as string);
    }
    statements.set(parse.name, parse);
  }

  #syncPoint(): void {
    // A Query or FunctionCall inside an unsynced batch is skipped (no ReadyForQuery) if the batch
    // failed, answered if not: the answers can no longer be matched to Parses.
    if (this.#unsynced) this.#untracked = true;
    this.#syncPointsSent++;
  }

  /** The statement a Bind of `name` sent now will use, or why that is not known. */
  #resolve(name: string): PreparedStatement | UnknownSqlReason {
    if (this.#untracked) return 'untracked';
    let candidate: PreparedStatement | undefined;
    let ambiguous = false;
    const pending = this.#pending;
    for (let i = pending.length - 1; i >= 0; i--) {
      const parse = pending[i] as PendingParse;
      if (parse.name !== name) continue;
      // In the Bind's own batch: if it fails, the Bind is skipped with it.
      if (parse.segment === this.#syncPointsSent && candidate === undefined) return this.#current(parse);
      if (candidate === undefined) candidate = parse;
      else if (candidate.query !== parse.query) ambiguous = true;
    }
    const committed = this.#statements.get(name);
    if (candidate === undefined)
      return committed === undefined ? 'statement_not_seen' : this.#current(committed);
    // An earlier batch's Parse may still fail, leaving the committed statement in place.
    if (ambiguous || (committed !== undefined && committed.query !== candidate.query)) return 'parse_pending';
    if (committed !== undefined && this.#current(committed) !== committed) return 'redefined_in_sql';
    return this.#current(candidate);
  }

  /** `statement`, unless SQL may have replaced it since (the unnamed statement it cannot). */
  #current(statement: PreparedStatement): PreparedStatement | UnknownSqlReason {
    return statement.name === '' || statement.epoch === this.#epoch ? statement : 'redefined_in_sql';
  }

  /**
   * The record of one message at time `at`, if it makes one: its keys in canonical (sorted) order.
   * Throws ProtocolError on a malformed body (the caller ends the connection).
   */
  observe(type: number, body: Buffer, at: number): StatementFields | undefined {
    switch (type) {
      case FrontendMessage.Query: {
        const sql = decodeQuery(body).sql;
        this.#syncPoint();
        if (touchesPreparedSql.test(sql)) this.#epoch++;
        const fields: Record<string, unknown> = { at, kind: 'query' };
        addSql(fields, sql);
        return fields as StatementFields;
      }
      case FrontendMessage.Parse: {
        const parse = decodeParse(body);
        this.#unsynced = true;
        const touchesPrepared = touchesPreparedSql.test(parse.query);
        if (touchesPrepared) this.#epoch++;
        this.#pending.push({
          name: parse.statement,
          query: parse.query,
          parameterTypes: parse.parameterTypes,
          epoch: this.#epoch,
          touchesPrepared,
          segment: this.#syncPointsSent,
        });
        const fields: Record<string, unknown> = { at, kind: 'parse' };
        addSql(fields, parse.query);
        fields.statement = parse.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.Bind: {
        const bind = decodeBind(body);
        this.#unsynced = true;
        const resolved = this.#resolve(bind.statement);
        let parameters: (string | null)[] | undefined;
        if (this.#recordParameters) {
          const types = typeof resolved === 'string' ? [] : resolved.parameterTypes;
          parameters = bind.parameters.map((value, i) => {
            const format =
              bind.parameterFormats.length === 1 ? bind.parameterFormats[0] : bind.parameterFormats[i];
            return recordedValue(value, format === 1, types[i] ?? 0);
          });
        }
        const portals = this.#portals;
        // Re-inserted, so the map's order is the order of use and the cap forgets the oldest.
        portals.delete(bind.portal);
        if (portals.size >= maxNamedStatements) portals.delete(portals.keys().next().value as string);
        portals.set(bind.portal, { statement: bind.statement, resolved, parameters });
        return undefined;
      }
      case FrontendMessage.Execute: {
        const execute = decodeExecute(body);
        this.#unsynced = true;
        const portal = this.#portals.get(execute.portal);
        const resolved = portal ? portal.resolved : 'portal_not_seen';
        const fields: Record<string, unknown> = { at, kind: 'execute' };
        if (execute.maxRows > 0) fields.maxRows = execute.maxRows;
        if (portal?.parameters) fields.parameters = portal.parameters;
        fields.portal = execute.portal;
        if (typeof resolved === 'string') {
          fields.sql = null;
          fields.sqlUnknown = resolved;
        } else {
          addSql(fields, resolved.query);
          // Running it may create or drop prepared statements: later ones are no longer certain.
          if (resolved.touchesPrepared) this.#epoch++;
        }
        if (portal) fields.statement = portal.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.FunctionCall: {
        // A function called by OID, outside SQL: it can run anything (query_to_xml runs a query,
        // set_config changes settings), so it is a record of its own, with its arguments as a
        // Bind's parameters. The OID is not resolved to a name here: nothing is asked upstream.
        // What it runs may also replace prepared statements (the epoch).
        const call = decodeFunctionCall(body);
        this.#syncPoint();
        this.#epoch++;
        const fields: Record<string, unknown> = { at, functionOid: call.functionOid, kind: 'function_call' };
        if (this.#recordParameters) {
          const formats = call.argumentFormats;
          fields.parameters = call.arguments.map((value, i) =>
            recordedValue(value, (formats.length === 1 ? formats[0] : formats[i]) === 1, 0),
          );
        }
        return fields as StatementFields;
      }
      default:
        return undefined;
    }
  }
}
