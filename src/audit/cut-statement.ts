/**
 * The statement retention signs when it cuts the audit log (docs/audit.md#retention): "events up to
 * `throughSeq`, whose signed head was `throughHash` at `checkpointAt`, were removed because they
 * were older than `retentionSeconds` at `cutoff`". Signed with the audit key, like checkpoints, so
 * that someone who can write the database but does not hold the key cannot pass off deleted
 * history as retention: the chain alone cannot tell a forged `audit.pruned` event from a real one,
 * since the server signs every head it finds.
 */
import { type KeyObject, verify } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { type AuditSigningKey, auditKeySigner } from './checkpoint.js';

export interface CutStatement {
  readonly throughSeq: number;
  readonly throughHash: string;
  /** The anchor checkpoint's own (signed) time. */
  readonly checkpointAt: number;
  /** Epoch ms: the cut's time minus the retention. */
  readonly cutoff: number;
  readonly retentionSeconds: number;
}

/** `audit.retention` cannot be shorter: a cut that claims less is not one Portcullis makes. */
export const minimumRetentionSeconds = 86_400;

/** The exact bytes the signature covers; `statement` keeps it apart from a checkpoint's. */
export function cutSigningInput(statement: CutStatement, kid: string): Buffer {
  return Buffer.from(
    canonicalJson({
      statement: 'portcullis-audit-cut/1',
      through_seq: statement.throughSeq,
      through_hash: statement.throughHash,
      checkpoint_at: statement.checkpointAt,
      cutoff: statement.cutoff,
      retention_seconds: statement.retentionSeconds,
      kid,
    }),
    'utf8',
  );
}

/** Signs a cut with the audit key: base64url Ed25519, and the key's id. */
export async function signCut(
  statement: CutStatement,
  key: AuditSigningKey,
): Promise<{ readonly kid: string; readonly signature: string }> {
  const signature = await auditKeySigner(key)(cutSigningInput(statement, key.kid));
  return { kid: key.kid, signature: signature.toString('base64url') };
}

export function cutSignatureValid(
  statement: CutStatement,
  kid: string,
  signature: string,
  publicKey: KeyObject,
): boolean {
  const bytes = Buffer.from(signature, 'base64url');
  return bytes.length === 64 && verify(null, cutSigningInput(statement, kid), publicKey, bytes);
}
