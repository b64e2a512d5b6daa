/**
 * The PostgreSQL form of an audit append: ONE call of `portcullis_audit_append` (migration 0005)
 * locks the chain's head, links and hashes the events, inserts them and moves the head. The head
 * row stays locked until the caller's transaction ends, so how long it is held is what limits every
 * writer of the log: with three statements (lock, insert, move) it was held for four round trips
 * including COMMIT, with this one for two.
 *
 * The database finishes each hash because only it knows the head when the lock is granted: Node
 * sends every event's canonical body split around `prev_hash` and `seq` (`eventBodyPieces` in hash.ts),
 * PostgreSQL computes `sha256(prev_hash || body)` with its built-in `sha256()` (PostgreSQL ≥ 11)
 * over the UTF-8 bytes, exactly as `eventHash` in hash.ts defines it. Node then recomputes every hash
 * from the returned links and refuses the append (the transaction rolls back) unless each one
 * matches and the sequence is contiguous, so the chain's definition still lives in hash.ts and a
 * disagreement fails closed.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '../storage/schema.js';
import {
  type EventBodyPieces,
  eventHashOfPieces,
  type HashedEventFields,
  type UnplacedEventFields,
} from './hash.js';

/** An event ready to be placed: its facts, `data` and `policy_ids` also as canonical JSON, its body pieces. */
export type PlaceableEvent = UnplacedEventFields &
  Pick<HashedEventFields, 'data' | 'policy_ids'> & { readonly pieces: EventBodyPieces };

/** Events per call at most, and their characters (a gateway batch's data can be 1 MiB). */
const eventsPerStatement = 100;
const charsPerStatement = 8 * 1024 * 1024;

interface PlacedRow {
  readonly seq: string | number;
  readonly prev_hash: string;
  readonly hash: string;
}

/**
 * Appends `events` in order at the head of the chain inside the caller's transaction `db` and
 * returns their hashed fields and hashes. Throws when the head is missing, moved under the
 * statement, or a hash computed by the database differs from the one computed here.
 */
export async function appendOnPostgres(
  db: Kysely<Database>,
  events: readonly PlaceableEvent[],
): Promise<{ fields: HashedEventFields; hash: string }[]> {
  const placed: { fields: HashedEventFields; hash: string }[] = [];
  for (const chunk of chunks(events)) {
    const rows = await placeChunk(db, chunk);
    if (rows.length !== chunk.length) {
      throw new Error(`the database placed ${rows.length} of ${chunk.length} audit events`);
    }
    chunk.forEach((event, index) => {
      const row = rows[index] as PlacedRow;
      const fields: HashedEventFields = { ...event, seq: Number(row.seq), prev_hash: row.prev_hash };
      const previous = placed.at(-1);
      if (previous && (fields.seq !== previous.fields.seq + 1 || fields.prev_hash !== previous.hash)) {
        throw new Error(`the audit chain broke at ${fields.seq}: the head moved during the append`);
      }
      const hash = eventHashOfPieces(event.pieces, event.dataJson, fields.seq, fields.prev_hash);
      if (hash !== row.hash) {
        throw new Error(
          `the database hashed audit event ${fields.seq} differently (${row.hash}, expected ${hash})`,
        );
      }
      placed.push({ fields, hash });
    });
  }
  return placed;
}

function* chunks(events: readonly PlaceableEvent[]): Generator<PlaceableEvent[]> {
  let chunk: PlaceableEvent[] = [];
  let chars = 0;
  for (const event of events) {
    const size = event.dataJson.length + (event.reason?.length ?? 0) + 512;
    if (chunk.length > 0 && (chunk.length >= eventsPerStatement || chars + size > charsPerStatement)) {
      yield chunk;
      chunk = [];
      chars = 0;
    }
    chunk.push(event);
    chars += size;
  }
  if (chunk.length > 0) yield chunk;
}

async function placeChunk(db: Kysely<Database>, events: readonly PlaceableEvent[]): Promise<PlacedRow[]> {
  const column = <T>(pick: (event: PlaceableEvent) => T): T[] => events.map(pick);
  const pieces = events.map((e) => e.pieces);
  const result = await sql<PlacedRow>`
    select seq, prev_hash, hash from portcullis_audit_append(
      ${column((e) => e.id)}::text[], ${column((e) => e.at)}::bigint[], ${column((e) => e.type)}::text[],
      ${column((e) => e.actor)}::text[], ${column((e) => e.severity)}::text[],
      ${column((e) => e.source_ip)}::text[], ${column((e) => e.user_agent)}::text[],
      ${column((e) => e.request_id)}::text[], ${column((e) => e.grant_id)}::text[],
      ${column((e) => e.resource_id)}::text[], ${column((e) => e.reason)}::text[],
      ${column((e) => e.policyIdsJson)}::text[], ${column((e) => e.dataJson)}::text[],
      ${pieces.map((p) => p.beforeData)}::text[], ${pieces.map((p) => p.afterData)}::text[],
      ${pieces.map((p) => p.middle)}::text[], ${pieces.map((p) => p.tail)}::text[])
  `.execute(db);
  return result.rows;
}
