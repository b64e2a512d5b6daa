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
/** Named statements remembered per session (the oldest is forgotten beyond). */
const maxNamedStatements = 10_000;

export interface SessionFacts {
  readonly sessionId: string;
  readonly principalId: string;
  readonly grantId: string;
  readonly resourceId: string;
  readonly requestId: string;
}

interface PreparedStatement {
  readonly query: string;
  /** Parameter type OIDs the Parse declared (0 or missing: the server infers the type). */
  readonly parameterTypes: readonly number[];
}

interface Portal {
  readonly statement: string;
  readonly parameters: readonly (string | null)[] | undefined;
}

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

/** Per-session statement state; `observe` returns the record a message produces, if any. */
export class StatementTracker {
  readonly #recordParameters: boolean;
  readonly #statements = new Map<string, PreparedStatement>();
  readonly #portals = new Map<string, Portal>();

  constructor(recordParameters: boolean) {
    this.#recordParameters = recordParameters;
  }

  /**
   * The record of one message at time `at`, if it makes one: its keys in canonical (sorted) order.
   * Throws ProtocolError on a malformed body (the caller ends the connection).
   */
  observe(type: number, body: Buffer, at: number): StatementFields | undefined {
    switch (type) {
      case FrontendMessage.Query: {
        const fields: Record<string, unknown> = { at, kind: 'query' };
        addSql(fields, decodeQuery(body).sql);
        return fields as StatementFields;
      }
      case FrontendMessage.Parse: {
        const parse = decodeParse(body);
        if (parse.statement !== '' && !this.#statements.has(parse.statement)) {
          if (this.#statements.size >= maxNamedStatements) {
            this.#statements.delete(this.#statements.keys().next().value as string);
          }
        }
        this.#statements.set(parse.statement, { query: parse.query, parameterTypes: parse.parameterTypes });
        const fields: Record<string, unknown> = { at, kind: 'parse' };
        addSql(fields, parse.query);
        fields.statement = parse.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.Bind: {
        const bind = decodeBind(body);
        let parameters: (string | null)[] | undefined;
        if (this.#recordParameters) {
          const types = this.#statements.get(bind.statement)?.parameterTypes ?? [];
          parameters = bind.parameters.map((value, i) => {
            const format =
              bind.parameterFormats.length === 1 ? bind.parameterFormats[0] : bind.parameterFormats[i];
            return recordedValue(value, format === 1, types[i] ?? 0);
          });
        }
        this.#portals.set(bind.portal, { statement: bind.statement, parameters });
        if (this.#portals.size > maxNamedStatements) this.#portals.clear();
        return undefined;
      }
      case FrontendMessage.Execute: {
        const execute = decodeExecute(body);
        const portal = this.#portals.get(execute.portal);
        const sql = portal ? this.#statements.get(portal.statement)?.query : undefined;
        const fields: Record<string, unknown> = { at, kind: 'execute' };
        if (execute.maxRows > 0) fields.maxRows = execute.maxRows;
        if (portal?.parameters) fields.parameters = portal.parameters;
        fields.portal = execute.portal;
        if (sql !== undefined) addSql(fields, sql);
        if (portal) fields.statement = portal.statement;
        return fields as StatementFields;
      }
      case FrontendMessage.FunctionCall: {
        // A function called by OID, outside SQL: it can run anything (query_to_xml runs a query,
        // set_config changes settings), so it is a record of its own, with its arguments as a
        // Bind's parameters. The OID is not resolved to a name here: nothing is asked upstream.
        const call = decodeFunctionCall(body);
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
