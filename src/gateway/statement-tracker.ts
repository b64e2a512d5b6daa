/**
 * Turns a session's Query, Parse, Bind, Execute and FunctionCall messages into statement records
 * (the recorder batches them into `gateway.statements` events). A Query is one record; a
 * FunctionCall is one record (function OID and, when configured, its arguments); a Parse is one record
 * (statement name and text); a Bind is remembered (portal → statement and, when configured, its
 * parameters) and folded into the record of the Execute that runs it, so each execution is one
 * record that names the SQL that ran — with `-M prepared` one record per execution, not three.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { BatchTracker, type RecordedSql } from './batch-tracker.js';
import { binaryParameterText, isTextLikeType } from './binary-parameter.js';
import {
  decodeBind,
  decodeExecute,
  decodeFunctionCall,
  decodeParse,
  decodeQuery,
  FrontendMessage,
} from './protocol/index.js';
import type { StatementFields } from './statement-recorder.js';

export type { UnknownSqlReason } from './batch-tracker.js';

/** Statement text kept in one event; longer text is cut and its SHA-256 recorded. */
export const maxRecordedSqlChars = 65_536;
/** Bytes of one parameter value kept when parameters are recorded. */
export const maxRecordedParameterBytes = 1024;

export interface SessionFacts {
  readonly sessionId: string;
  readonly principalId: string;
  readonly grantId: string;
  readonly resourceId: string;
  readonly requestId: string;
}

/** SQL that creates or drops prepared statements, outside the protocol's Parse/Close. */
const touchesPreparedSql = /\b(?:prepare|deallocate|discard)\b/i;
/** SQL that declares or closes cursors, which share their names with the protocol's portals. */
const touchesPortalsSql = /\b(?:declare|close|discard)\b/i;

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

/**
 * `sql` as records carry it: whole, or cut at {@link maxRecordedSqlChars} with its length and hash.
 * The cut text is copied out, so a record never keeps the whole (possibly huge) text alive.
 * `bytes` is the text as the client sent it: when it is not UTF-8 (a session whose
 * `client_encoding` is LATIN1, SJIS, …) `sql` has U+FFFD where it could not be read, so the
 * bytes themselves are kept too (base64, the first {@link maxRecordedSqlChars} of them).
 */
export function recordedSql(sql: string, bytes: Buffer): RecordedSql {
  const raw = isUtf8(bytes)
    ? undefined
    : {
        sqlBase64: bytes.subarray(0, maxRecordedSqlChars).toString('base64'),
        sqlByteLength: bytes.length,
      };
  if (sql.length <= maxRecordedSqlChars) return raw ? { sql, ...raw } : { sql };
  return {
    sql: Buffer.from(sql.slice(0, maxRecordedSqlChars), 'utf16le').toString('utf16le'),
    ...raw,
    sqlLength: sql.length,
    // Over the bytes when they are not UTF-8: the reading would map different bytes to one text.
    sqlSha256: createHash('sha256')
      .update(raw ? bytes : sql)
      .digest('hex'),
    sqlTruncated: true,
  };
}

/** Adds the recorded text to `into` in canonical key order (`sql`, then `sqlBase64`, …). */
function addSql(into: Record<string, unknown>, text: RecordedSql): void {
  into.sql = text.sql;
  if (text.sqlBase64 !== undefined) {
    into.sqlBase64 = text.sqlBase64;
    into.sqlByteLength = text.sqlByteLength;
  }
  if (text.sqlTruncated) {
    into.sqlLength = text.sqlLength;
    into.sqlSha256 = text.sqlSha256;
    into.sqlTruncated = true;
  }
}

/**
 * Per-session statement state; `observe` returns the record a message produces, if any. Which
 * Parses and Binds the server accepted is the {@link BatchTracker}'s part: an Execute record names
 * only SQL the server accepted, and when that is not certain it has `sql: null` and `sqlUnknown`
 * saying why, never text that may not have run.
 */
export class StatementTracker {
  readonly #recordParameters: boolean;
  readonly #batches = new BatchTracker();

  constructor(recordParameters: boolean) {
    this.#recordParameters = recordParameters;
  }

  /** True while the connection must report the server's answers ({@link serverSaid}). */
  get awaitingAnswers(): boolean {
    return this.#batches.awaitingAnswers;
  }

  /** The client sent Sync. */
  sync(): void {
    this.#batches.syncSent();
  }

  /** The client sent CopyDone or CopyFail. */
  copyEnded(): void {
    this.#batches.copyEndSent();
  }

  /**
   * The server sent ParseComplete, BindComplete, ErrorResponse, CopyInResponse, CopyBothResponse
   * or ReadyForQuery (`type`, a BackendMessage; for ReadyForQuery its transaction status byte).
   */
  serverSaid(type: number, transactionStatus?: number): void {
    this.#batches.serverSaid(type, transactionStatus);
  }

  /**
   * The record of one message at time `at`, if it makes one: its keys in canonical (sorted) order.
   * Throws ProtocolError on a malformed body (the caller ends the connection).
   */
  observe(type: number, body: Buffer, at: number): StatementFields | undefined {
    switch (type) {
      case FrontendMessage.Query: {
        const { sql, sqlBytes } = decodeQuery(body);
        this.#batches.simpleSent({
          touchesPrepared: touchesPreparedSql.test(sql),
          touchesPortals: touchesPortalsSql.test(sql),
        });
        const fields: Record<string, unknown> = { at, kind: 'query' };
        addSql(fields, recordedSql(sql, sqlBytes));
        return fields as StatementFields;
      }
      case FrontendMessage.Parse: {
        const parse = decodeParse(body);
        const text = recordedSql(parse.query, parse.queryBytes);
        const skipped = this.#batches.skipping;
        this.#batches.parseSent({
          name: parse.statement,
          text,
          parameterTypes: parse.parameterTypes,
          touchesPrepared: touchesPreparedSql.test(parse.query),
          touchesPortals: touchesPortalsSql.test(parse.query),
        });
        const fields: Record<string, unknown> = { at, kind: 'parse' };
        if (skipped) fields.skipped = true;
        addSql(fields, text);
        fields.statement = parse.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.Bind: {
        const bind = decodeBind(body);
        const resolved = this.#batches.resolveStatement(bind.statement);
        let parameters: (string | null)[] | undefined;
        let size = 64 + bind.portal.length;
        if (this.#recordParameters) {
          const types = typeof resolved === 'string' ? [] : resolved.parameterTypes;
          parameters = bind.parameters.map((value, i) => {
            const format =
              bind.parameterFormats.length === 1 ? bind.parameterFormats[0] : bind.parameterFormats[i];
            const recorded = recordedValue(value, format === 1, types[i] ?? 0);
            size += (recorded?.length ?? 0) + 8;
            return recorded;
          });
        }
        this.#batches.bindSent({
          name: bind.portal,
          statement: bind.statement,
          resolved,
          parameters,
          size,
        });
        return undefined;
      }
      case FrontendMessage.Execute: {
        const execute = decodeExecute(body);
        const skipped = this.#batches.skipping;
        const portal = this.#batches.resolvePortal(execute.portal);
        const ran = typeof portal === 'string' ? portal : portal.resolved;
        this.#batches.executeSent(ran);
        const fields: Record<string, unknown> = { at, kind: 'execute' };
        if (execute.maxRows > 0) fields.maxRows = execute.maxRows;
        if (typeof portal !== 'string' && portal.parameters) fields.parameters = portal.parameters;
        fields.portal = execute.portal;
        if (skipped) fields.skipped = true;
        if (typeof ran === 'string') {
          fields.sql = null;
          fields.sqlUnknown = ran;
        } else {
          addSql(fields, ran.text);
        }
        if (typeof portal !== 'string') fields.statement = portal.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.FunctionCall: {
        // A function called by OID, outside SQL: it can run anything (query_to_xml runs a query,
        // set_config changes settings), so it is a record of its own, with its arguments as a
        // Bind's parameters. The OID is not resolved to a name here: nothing is asked upstream.
        // What it runs may also replace prepared statements and cursors.
        const call = decodeFunctionCall(body);
        this.#batches.simpleSent({ touchesPrepared: true, touchesPortals: true });
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
