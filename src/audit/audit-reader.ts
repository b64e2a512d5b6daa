/**
 * Reads the audit chain and its checkpoints from the database (either dialect), and stores new
 * checkpoints. Used outside transactions: by the checkpointer, the export and the audit viewer.
 */
import type { Kysely, Selectable } from 'kysely';
import type { AuditCheckpoint, AuditReader, AuditRecord } from '../app/ports.js';
import { retentionFloor } from '../storage/audit-retention-repository.js';
import type { AuditCheckpointsTable, AuditEventsTable, Database } from '../storage/schema.js';
import { recordOf } from './hash.js';

/**
 * The {@link AuditReader} over the `audit_events`, `audit_head` and `audit_checkpoints` tables.
 * Reads return records exactly as stored; they are not re-verified here (that is `verify.ts`'s job,
 * on an export, where the reader of the evidence need not trust this process).
 */
export class KyselyAuditReader implements AuditReader {
  constructor(private readonly db: Kysely<Database>) {}

  async read(afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const rows = await this.db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', afterSeq)
      // Rows under the retention floor may still be waiting for their batch to be deleted.
      .where('seq', '>', retentionFloor)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map(recordOfRow);
  }

  async head(): Promise<{ seq: number; hash: string; prunedThrough: number }> {
    const head = await this.db
      .selectFrom('audit_head')
      .select(['seq', 'hash', 'pruned_through'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return { seq: Number(head.seq), hash: head.hash, prunedThrough: Number(head.pruned_through) };
  }

  async prunedThrough(): Promise<number> {
    const head = await this.db
      .selectFrom('audit_head')
      .select('pruned_through')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(head.pruned_through);
  }

  async lastCheckpointSignedBefore(before: number, maxSeq: number): Promise<AuditCheckpoint | undefined> {
    const row = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('at', '<', before)
      .where('seq', '<=', maxSeq)
      .where('seq', '>', 0)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : checkpointOfRow(row);
  }

  async checkpoints(): Promise<AuditCheckpoint[]> {
    const rows = await this.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
    return rows.map(checkpointOfRow);
  }

  /**
   * Stores a checkpoint. A checkpoint of the same sequence already stored (another replica got there
   * first) is kept and this one is dropped: both sign the same head.
   */
  async insertCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    await this.db
      .insertInto('audit_checkpoints')
      .values({
        seq: checkpoint.seq,
        at: checkpoint.at,
        head_hash: checkpoint.headHash,
        kid: checkpoint.kid,
        signature: checkpoint.signature,
      })
      .onConflict((conflict) => conflict.column('seq').doNothing())
      .execute();
  }

  async lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    const row = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : checkpointOfRow(row);
  }
}

// PostgreSQL returns bigint columns as strings; Number() is exact below 2^53.
function recordOfRow(row: Selectable<AuditEventsTable>): AuditRecord {
  return recordOf(
    {
      seq: Number(row.seq),
      id: row.id,
      at: Number(row.at),
      type: row.type,
      actor: row.actor,
      severity: row.severity,
      source_ip: row.source_ip,
      user_agent: row.user_agent,
      request_id: row.request_id,
      grant_id: row.grant_id,
      resource_id: row.resource_id,
      reason: row.reason,
      policy_ids: JSON.parse(row.policy_ids) as string[],
      data: JSON.parse(row.data) as Record<string, unknown>,
      prev_hash: row.prev_hash,
    },
    row.hash,
  );
}

function checkpointOfRow(row: Selectable<AuditCheckpointsTable>): AuditCheckpoint {
  return {
    seq: Number(row.seq),
    at: Number(row.at),
    headHash: row.head_hash,
    kid: row.kid,
    signature: row.signature,
  };
}
