import { type Kysely, PostgresAdapter, sql } from 'kysely';

/**
 * PostgreSQL only: `portcullis_audit_append`, which appends audit events at the chain's head in one
 * call (src/audit/postgres-chain-append.ts says why). It takes one array per column plus each
 * event's canonical body split around `prev_hash` and `seq` (src/audit/hash.ts, `eventBodyPieces`),
 * locks the head, hashes `prev_hash || body` as that file defines it, inserts, moves the head and
 * returns every event's `seq`, `prev_hash` and `hash` for the caller to check. A PL/pgSQL function
 * rather than one big statement because its plans are prepared once per session: the equivalent
 * recursive WITH query cost about three times as much to plan and run on every append.
 *
 * SQLite needs nothing: its appends run in process under its single writer.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`
    create function portcullis_audit_append(
      ids text[], ats bigint[], types text[], actors text[], severities text[], source_ips text[],
      user_agents text[], request_ids text[], grant_ids text[], resource_ids text[], reasons text[],
      policy_ids_json text[], data_json text[], before_data text[], after_data text[], middles text[],
      tails text[]
    ) returns table (seq bigint, prev_hash text, hash text)
    language plpgsql
    as $body$
    #variable_conflict use_column
    declare
      head_seq bigint;
      head_hash text;
    begin
      select h.seq, h.hash into head_seq, head_hash from audit_head h where h.id = 1 for update;
      if not found then
        raise exception 'the audit_head row is missing';
      end if;
      for i in 1 .. coalesce(array_length(ids, 1), 0) loop
        prev_hash := head_hash;
        seq := head_seq + 1;
        hash := encode(sha256(convert_to(
          prev_hash || before_data[i] || data_json[i] || after_data[i] || prev_hash || middles[i]
            || seq::text || tails[i],
          'UTF8')), 'hex');
        insert into audit_events (seq, id, at, type, actor, severity, source_ip, user_agent,
          request_id, grant_id, resource_id, reason, policy_ids, data, prev_hash, hash)
        values (seq, ids[i], ats[i], types[i], actors[i], severities[i], source_ips[i],
          user_agents[i], request_ids[i], grant_ids[i], resource_ids[i], reasons[i],
          policy_ids_json[i], data_json[i], prev_hash, hash);
        head_seq := seq;
        head_hash := hash;
        return next;
      end loop;
      update audit_head h set seq = head_seq, hash = head_hash where h.id = 1;
    end
    $body$
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`drop function portcullis_audit_append`.execute(db);
}
