/**
 * The hash chain's definition. Event n's hash is
 *
 *   hex(SHA-256(utf8(prev_hash + canonicalJson(fields))))
 *
 * where `prev_hash` is event n-1's hash (64 zeros for event 1) and `fields` is exactly the object of
 * {@link hashedFieldNames}: every fact of the event, its position (`seq`) and the link (`prev_hash`),
 * with absent optional facts as `null`, no policy ids as `[]` and no data as `{}`. Nothing outside
 * these fields is covered, so an export line may carry nothing else (the verifier checks).
 *
 * Changing anything here breaks every existing chain: it is format `portcullis-audit/1`.
 */
import { hash } from 'node:crypto';
import type { AuditRecord } from '../app/ports.js';
import type { AuditEventType, Severity } from '../core/audit-event.js';
import { canonicalJson } from './canonical.js';

/** The "previous hash" of event 1; also the head of an empty chain. */
export const genesisHash = '0'.repeat(64);

/** Names of the hashed fields, in canonical (UTF-16 sorted) order. */
export const hashedFieldNames = [
  'actor',
  'at',
  'data',
  'grant_id',
  'id',
  'policy_ids',
  'prev_hash',
  'reason',
  'request_id',
  'resource_id',
  'seq',
  'severity',
  'source_ip',
  'type',
  'user_agent',
] as const;

/** One chained event as it is hashed and exported (snake_case, the wire names). */
export interface HashedEventFields {
  readonly seq: number;
  readonly id: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly type: string;
  readonly actor: string;
  readonly severity: string;
  readonly source_ip: string | null;
  readonly user_agent: string | null;
  readonly request_id: string | null;
  readonly grant_id: string | null;
  readonly resource_id: string | null;
  readonly reason: string | null;
  readonly policy_ids: readonly string[];
  readonly data: Readonly<Record<string, unknown>>;
  readonly prev_hash: string;
}

/**
 * The canonical JSON of an event's hashed fields: `canonicalJson` of an object holding exactly
 * {@link hashedFieldNames}, built with its keys already in canonical order so that the encoder's
 * native fast path applies (the verifier runs this a million times).
 *
 * @throws CanonicalJsonError when a field is missing or not JSON.
 */
export function canonicalEventBody(fields: HashedEventFields): string {
  return canonicalJson({
    actor: fields.actor,
    at: fields.at,
    data: fields.data,
    grant_id: fields.grant_id,
    id: fields.id,
    policy_ids: fields.policy_ids,
    prev_hash: fields.prev_hash,
    reason: fields.reason,
    request_id: fields.request_id,
    resource_id: fields.resource_id,
    seq: fields.seq,
    severity: fields.severity,
    source_ip: fields.source_ip,
    type: fields.type,
    user_agent: fields.user_agent,
  });
}

/** SHA-256 hex of `prev_hash` followed by the canonical body. */
export function eventHash(fields: HashedEventFields): string {
  return sha256Hex(fields.prev_hash + canonicalEventBody(fields));
}

/** Lowercase hex SHA-256 of the UTF-8 encoding of `text`. */
export function sha256Hex(text: string): string {
  // crypto.hash (Node ≥ 20.12) costs about 60% of createHash().update().digest(): for inputs of a
  // few hundred bytes the per-call overhead, not hashing, dominates.
  return hash('sha256', text);
}

/** The hashed fields of a stored record. */
export function hashedFieldsOf(record: AuditRecord): HashedEventFields {
  return {
    seq: record.seq,
    id: record.id,
    at: record.at,
    type: record.type,
    actor: record.actor,
    severity: record.severity ?? 'info',
    source_ip: record.sourceIp ?? null,
    user_agent: record.userAgent ?? null,
    request_id: record.requestId ?? null,
    grant_id: record.grantId ?? null,
    resource_id: record.resourceId ?? null,
    reason: record.reason ?? null,
    policy_ids: record.policyIds ?? [],
    data: record.data ?? {},
    prev_hash: record.prevHash,
  };
}

/** The record for hashed fields and their hash. */
export function recordOf(fields: HashedEventFields, hash: string): AuditRecord {
  return {
    seq: fields.seq,
    id: fields.id,
    at: fields.at,
    type: fields.type as AuditEventType,
    actor: fields.actor,
    severity: fields.severity as Severity,
    sourceIp: fields.source_ip,
    userAgent: fields.user_agent,
    requestId: fields.request_id,
    grantId: fields.grant_id,
    resourceId: fields.resource_id,
    reason: fields.reason,
    policyIds: fields.policy_ids,
    data: fields.data,
    prevHash: fields.prev_hash,
    hash,
  };
}

/** The facts of an event with its `data` and `policy_ids` already in canonical JSON. */
export type UnplacedEventFields = Omit<HashedEventFields, 'seq' | 'prev_hash' | 'data' | 'policy_ids'> & {
  readonly dataJson: string;
  readonly policyIdsJson: string;
};

/**
 * The canonical body of an event split around the parts only the chain's head decides, so that
 * a database can finish the hash while it holds the head:
 *
 *   canonicalEventBody = beforeData + dataJson + afterData + prev_hash + middle + seq + tail
 *
 * and the event's hash is SHA-256 of `prev_hash` followed by that body (see {@link eventHash}).
 * `data` is left out of the pieces so that it travels to the database once.
 */
export interface EventBodyPieces {
  readonly beforeData: string;
  readonly afterData: string;
  readonly middle: string;
  readonly tail: string;
}

/** Splits an event's canonical body; see {@link EventBodyPieces}. Keys are in canonical order. */
export function eventBodyPieces(fields: UnplacedEventFields): EventBodyPieces {
  const json = JSON.stringify;
  return {
    beforeData: `{"actor":${json(fields.actor)},"at":${json(fields.at)},"data":`,
    afterData: `,"grant_id":${json(fields.grant_id)},"id":${json(fields.id)},"policy_ids":${fields.policyIdsJson},"prev_hash":"`,
    middle: `","reason":${json(fields.reason)},"request_id":${json(fields.request_id)},"resource_id":${json(fields.resource_id)},"seq":`,
    tail: `,"severity":${json(fields.severity)},"source_ip":${json(fields.source_ip)},"type":${json(fields.type)},"user_agent":${json(fields.user_agent)}}`,
  };
}

/**
 * {@link eventHash} of an event whose body is given as {@link eventBodyPieces} and its canonical
 * `data`: the same hash, without encoding `data` a second time (a gateway batch's data can be 1 MiB).
 */
export function eventHashOfPieces(
  pieces: EventBodyPieces,
  dataJson: string,
  seq: number,
  prevHash: string,
): string {
  return sha256Hex(
    prevHash + pieces.beforeData + dataJson + pieces.afterData + prevHash + pieces.middle + seq + pieces.tail,
  );
}
