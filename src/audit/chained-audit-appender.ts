/**
 * Appends audit events to the hash chain inside the caller's database transaction, so an event and
 * the state change it describes commit or roll back together. Fail closed: every failure, including
 * an event that cannot be encoded, throws `audit_unavailable` and the transaction must roll back.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditAppender, AuditRecord } from '../app/ports.js';
import { type AuditEventInput, auditEventTypes, type Severity } from '../core/audit-event.js';
import { isPortcullisError, PortcullisError } from '../core/errors.js';
import type { Database } from '../storage/schema.js';
import { CanonicalJsonError, canonicalJson } from './canonical.js';
import {
  type EventBodyPieces,
  eventBodyPieces,
  eventHashOfPieces,
  type HashedEventFields,
  recordOf,
} from './hash.js';
import { appendOnPostgres } from './postgres-chain-append.js';

const severities: readonly Severity[] = ['info', 'warning', 'high'];
const knownTypes: ReadonlySet<string> = new Set(auditEventTypes);

/**
 * The {@link AuditAppender} of the storage layer: one instance per transaction.
 *
 * `append` locks the single `audit_head` row, takes `seq = head.seq + 1` and `prev_hash = head.hash`,
 * inserts the event and moves the head. Concurrent transactions therefore queue on the head row and
 * the chain stays contiguous.
 * - PostgreSQL: one statement does all of it and the database finishes the hashes, which are checked
 *   here (postgres-chain-append.ts), so the lock is held for that statement and the COMMIT only.
 * - SQLite: its one writer already serialises; the head is read, the events inserted and the head
 *   moved with a guard on the sequence it read, so a storage layer that forgot to serialise gets an
 *   error instead of a fork.
 *
 * The head row stays locked until the transaction ends, so every transaction that appends waits
 * for the previous appender to commit: append as late in the transaction as the state change
 * allows, and keep work after it short (one global chain means one writer at a time).
 *
 * Nothing is redacted: `data` is stored and hashed as given, and refused (with `audit_unavailable`)
 * when it is not plain JSON. Strings may not contain NUL (PostgreSQL text cannot hold it) or lone
 * surrogates (no canonical UTF-8 form).
 *
 * @example
 *   await store.transaction(async (tx) => { …; await tx.audit.append({ type: 'grant.revoked', actor }, now); });
 */
/** 16 columns a row: 100 rows stay far below both databases' limits on bound parameters. */
const rowsPerInsert = 100;

export class ChainedAuditAppender implements AuditAppender {
  /**
   * @param db a Kysely transaction handed in by the storage layer.
   * @param dialect decides how events are placed (one database call on PostgreSQL).
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: 'sqlite' | 'postgres',
  ) {}

  async append(event: AuditEventInput, at: number): Promise<AuditRecord> {
    const [record] = await this.appendAll([{ event, at }]);
    return record as AuditRecord;
  }

  /**
   * Appends several events in order under one lock of the head: one head read, multi-row inserts
   * and one head move, instead of three round trips per event. Same chain as appending one by one.
   */
  async appendAll(
    events: readonly { readonly event: AuditEventInput; readonly at: number }[],
  ): Promise<AuditRecord[]> {
    if (events.length === 0) return [];
    try {
      // Validated before the head is locked, so refused input never holds the lock.
      const drafts = events.map(({ event, at }) => eventDraft(event, at));
      if (this.dialect === 'postgres') {
        const placed = await appendOnPostgres(this.db, drafts);
        return placed.map(({ fields, hash }) => recordOf(fields, hash));
      }
      const head = await this.readHead();
      let seq = head.seq;
      let prevHash = head.hash;
      const records: AuditRecord[] = [];
      const rows = drafts.map((draft) => {
        const fields: HashedEventFields = { ...draft, seq: seq + 1, prev_hash: prevHash };
        const hash = eventHashOfPieces(draft.pieces, draft.dataJson, fields.seq, prevHash);
        records.push(recordOf(fields, hash));
        seq = fields.seq;
        prevHash = hash;
        return {
          seq: fields.seq,
          id: fields.id,
          at: fields.at,
          type: fields.type,
          actor: fields.actor,
          severity: fields.severity,
          source_ip: fields.source_ip,
          user_agent: fields.user_agent,
          request_id: fields.request_id,
          grant_id: fields.grant_id,
          resource_id: fields.resource_id,
          reason: fields.reason,
          policy_ids: draft.policyIdsJson,
          data: draft.dataJson,
          prev_hash: fields.prev_hash,
          hash,
        };
      });
      for (let i = 0; i < rows.length; i += rowsPerInsert) {
        await this.db
          .insertInto('audit_events')
          .values(rows.slice(i, i + rowsPerInsert))
          .execute();
      }
      const moved = await this.db
        .updateTable('audit_head')
        .set({ seq, hash: prevHash })
        .where('id', '=', 1)
        .where('seq', '=', head.seq)
        .executeTakeFirst();
      if (moved.numUpdatedRows !== 1n) {
        throw new Error(`the audit head moved past ${head.seq} during the append`);
      }
      return records;
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'audit_unavailable') throw error;
      // The cause (a database error) is for the logs; callers see only the stable code and title.
      throw new PortcullisError('audit_unavailable', undefined, {}, { cause: error });
    }
  }

  /** SQLite's head: its single writer is the lock (PostgreSQL locks inside portcullis_audit_append). */
  private async readHead(): Promise<{ seq: number; hash: string }> {
    const head = await this.db
      .selectFrom('audit_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirst();
    if (head === undefined) throw new Error('the audit_head row is missing (migrations not run?)');
    const seq = Number(head.seq);
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new Error(`the audit head sequence ${head.seq} is invalid`);
    return { seq, hash: head.hash };
  }
}

type EventDraft = Omit<HashedEventFields, 'seq' | 'prev_hash'> & {
  readonly dataJson: string;
  readonly policyIdsJson: string;
  /** The canonical body around data, prev_hash and seq: data is encoded once, here. */
  readonly pieces: EventBodyPieces;
};

/** Validates the caller's event and fixes everything but its position in the chain. */
function eventDraft(event: AuditEventInput, at: number): EventDraft {
  if (!Number.isSafeInteger(at) || at < 0) refuse(`at must be epoch milliseconds, got ${at}`);
  if (typeof event.type !== 'string' || !knownTypes.has(event.type)) {
    refuse(`unknown event type ${String(event.type)}`);
  }
  if (typeof event.actor !== 'string' || event.actor.length === 0) refuse('actor must be a non-empty string');
  const severity = event.severity ?? 'info';
  if (!severities.includes(severity)) refuse(`unknown severity ${String(severity)}`);
  const policyIds = event.policyIds ?? [];
  if (!Array.isArray(policyIds) || policyIds.some((id) => typeof id !== 'string')) {
    refuse('policyIds must be an array of strings');
  }
  const data = event.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) refuse('data must be a JSON object');
  const dataJson = encode(data, 'data');
  const policyIdsJson = encode(policyIds, 'policyIds');
  const unplaced = {
    id: randomUUID(),
    at,
    type: event.type,
    actor: text(event.actor, 'actor') as string,
    severity,
    source_ip: text(event.sourceIp, 'sourceIp'),
    user_agent: text(event.userAgent, 'userAgent'),
    request_id: text(event.requestId, 'requestId'),
    grant_id: text(event.grantId, 'grantId'),
    resource_id: text(event.resourceId, 'resourceId'),
    reason: text(event.reason, 'reason'),
    // Re-read from the canonical text: the record returned is exactly what was hashed (-0 is 0, …).
    policy_ids: JSON.parse(policyIdsJson) as string[],
    data: JSON.parse(dataJson) as Record<string, unknown>,
    dataJson,
    policyIdsJson,
  };
  return { ...unplaced, pieces: eventBodyPieces(unplaced) };
}

function text(value: string | null | undefined, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') refuse(`${field} must be a string`);
  if (value.includes('\u0000')) refuse(`${field} contains a NUL character`);
  encode(value, field);
  return value;
}

function encode(value: unknown, field: string): string {
  try {
    return canonicalJson(value);
  } catch (error) {
    if (error instanceof CanonicalJsonError) {
      refuse(`${error.path.replace(/^\$/, field)} is not JSON-serialisable: ${error.problem}`);
    }
    throw error;
  }
}

function refuse(problem: string): never {
  throw new PortcullisError(
    'audit_unavailable',
    `The audit event was refused, so the action was too: ${problem}`,
  );
}
