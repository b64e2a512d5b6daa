/**
 * Turns a session's Query, Parse, Bind and Execute messages into audit events. A Query is one
 * event; a Parse is one event (statement name and text); a Bind is remembered (portal → statement
 * and, when configured, its parameters) and folded into the event of the Execute that runs it, so
 * each execution is one event that names the SQL that ran — with `-M prepared` one event per
 * execution, not three.
 */
import { createHash } from 'node:crypto';
import type { AuditEventInput } from '../core/audit-event.js';
import { decodeBind, decodeExecute, decodeParse, decodeQuery, FrontendMessage } from './protocol/index.js';

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

interface Portal {
  readonly statement: string;
  readonly parameters: readonly (string | null)[] | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A parameter as audit-safe JSON: text when it is valid UTF-8 without NUL, else base64; capped. */
function recordedValue(value: Buffer | null, binary: boolean): string | null {
  if (value === null) return null;
  const cut = value.length > maxRecordedParameterBytes ? value.subarray(0, maxRecordedParameterBytes) : value;
  const suffix = cut === value ? '' : `…(${value.length} bytes)`;
  if (!binary && !cut.includes(0)) {
    try {
      return `${utf8.decode(cut)}${suffix}`;
    } catch {
      // not UTF-8 (or cut inside a character): base64 below
    }
  }
  return `base64:${cut.toString('base64')}${suffix}`;
}

function sqlFields(sql: string): Record<string, unknown> {
  if (sql.length <= maxRecordedSqlChars) return { sql };
  return {
    sql: sql.slice(0, maxRecordedSqlChars),
    sqlTruncated: true,
    sqlLength: sql.length,
    sqlSha256: createHash('sha256').update(sql).digest('hex'),
  };
}

/** Per-session statement state; `observe` returns the event a message produces, if any. */
export class StatementTracker {
  readonly #facts: SessionFacts;
  readonly #recordParameters: boolean;
  readonly #statements = new Map<string, string>();
  readonly #portals = new Map<string, Portal>();

  constructor(facts: SessionFacts, recordParameters: boolean) {
    this.#facts = facts;
    this.#recordParameters = recordParameters;
  }

  /** Throws ProtocolError on a malformed body (the caller ends the connection). */
  observe(type: number, body: Buffer): AuditEventInput | undefined {
    switch (type) {
      case FrontendMessage.Query:
        return this.#event({ kind: 'query', ...sqlFields(decodeQuery(body).sql) });
      case FrontendMessage.Parse: {
        const parse = decodeParse(body);
        if (parse.statement !== '' && !this.#statements.has(parse.statement)) {
          if (this.#statements.size >= maxNamedStatements) {
            this.#statements.delete(this.#statements.keys().next().value as string);
          }
        }
        this.#statements.set(parse.statement, parse.query);
        return this.#event({ kind: 'parse', statement: parse.statement, ...sqlFields(parse.query) });
      }
      case FrontendMessage.Bind: {
        const bind = decodeBind(body);
        let parameters: (string | null)[] | undefined;
        if (this.#recordParameters) {
          parameters = bind.parameters.map((value, i) => {
            const format =
              bind.parameterFormats.length === 1 ? bind.parameterFormats[0] : bind.parameterFormats[i];
            return recordedValue(value, format === 1);
          });
        }
        this.#portals.set(bind.portal, { statement: bind.statement, parameters });
        if (this.#portals.size > maxNamedStatements) this.#portals.clear();
        return undefined;
      }
      case FrontendMessage.Execute: {
        const execute = decodeExecute(body);
        const portal = this.#portals.get(execute.portal);
        const sql = portal ? this.#statements.get(portal.statement) : undefined;
        return this.#event({
          kind: 'execute',
          portal: execute.portal,
          ...(portal ? { statement: portal.statement } : {}),
          ...(sql === undefined ? {} : sqlFields(sql)),
          ...(portal?.parameters ? { parameters: portal.parameters } : {}),
          ...(execute.maxRows > 0 ? { maxRows: execute.maxRows } : {}),
        });
      }
      default:
        return undefined;
    }
  }

  #event(data: Record<string, unknown>): AuditEventInput {
    const facts = this.#facts;
    return {
      type: 'gateway.statement',
      actor: facts.principalId,
      requestId: facts.requestId,
      grantId: facts.grantId,
      resourceId: facts.resourceId,
      data: { session: facts.sessionId, ...data },
    };
  }
}
