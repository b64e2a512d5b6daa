/**
 * Helpers for the audit tests and the verify benchmark. Test-only: nothing in production imports this.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import type { AuditReader, Store } from '../app/ports.js';
import type { AuditEventInput } from '../core/audit-event.js';
import type { AuditSigningKey } from './checkpoint.js';
import { type ExportOptions, exportAudit } from './export.js';
import type { HashedEventFields } from './hash.js';

/** 2026-01-01T00:00:00Z. */
export const auditTestEpoch = Date.UTC(2026, 0, 1);

/** A fresh Ed25519 audit key. */
export function testAuditKey(kid = 'audit-test-1'): AuditSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid, privateKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid } };
}

/** The n-th event of a varied test stream: every optional field is exercised somewhere. */
export function testEvent(n: number): AuditEventInput {
  return {
    type: n % 3 === 0 ? 'request.created' : n % 3 === 1 ? 'request.approved' : 'grant.activated',
    actor: `okta:user-${n % 17}`,
    severity: n % 50 === 0 ? 'high' : 'info',
    sourceIp: n % 4 === 0 ? null : `10.0.${n % 256}.${(n * 7) % 256}`,
    userAgent: n % 5 === 0 ? undefined : 'portcullis-cli/0.1',
    requestId: `req-${n}`,
    grantId: n % 3 === 2 ? `grant-${n}` : null,
    resourceId: 'prod-db',
    reason: n % 2 === 0 ? `Migration ticket OPS-${n} — «quoted» "text"` : null,
    policyIds: n % 3 === 0 ? ['prod-db-needs-sre', 'deny-weekends'] : [],
    data: { role: 'readonly', durationSeconds: 1800 + n, nested: { ok: n % 2 === 0, list: [n, 'x'] } },
  };
}

/** Appends events `from`…`to` (inclusive), one transaction each, at epoch + n seconds. */
export async function appendTestEvents(store: Store, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) {
    await store.transaction((tx) => tx.audit.append(testEvent(n), auditTestEpoch + n * 1000));
  }
}

/** Runs the export into memory and returns its lines (without the trailing empty one). */
export async function exportToLines(reader: AuditReader, options: ExportOptions = {}): Promise<string[]> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  await exportAudit(reader, sink, { now: auditTestEpoch, ...options });
  const text = chunks.join('');
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
}

/**
 * Hashed event fields as the access report reads them, numbered from 1 by the builder it returns
 * (the report does not check hashes: the verifier does, before it). Resource `db` unless told.
 */
export function hashedEventBuilder(): (
  type: string,
  at: number,
  fields?: Partial<Omit<HashedEventFields, 'type' | 'at' | 'seq'>>,
) => HashedEventFields {
  let seq = 0;
  return (type, at, fields = {}) => {
    seq += 1;
    return {
      seq,
      id: `e${seq}`,
      at,
      type,
      actor: 'system',
      severity: 'info',
      source_ip: null,
      user_agent: null,
      request_id: null,
      grant_id: null,
      resource_id: 'db',
      reason: null,
      policy_ids: [],
      data: {},
      prev_hash: '0'.repeat(64),
      ...fields,
    };
  };
}
