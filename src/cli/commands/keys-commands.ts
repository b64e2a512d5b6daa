/** `portcullis keys rotate`: a new signing key, straight in the database (no server needed). */
import { userInfo } from 'node:os';
import { decodeProtectedHeader } from 'jose';
import type { KeyRepository } from '../../app/ports.js';
import { PortcullisError } from '../../core/errors.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { loadOfflineConfig, requireRealSecret } from '../offline-config.js';
import { formatSeconds, relativeTime } from '../output.js';

export interface RotateOptions {
  readonly config: string;
  readonly purpose: string;
}

/**
 * The purpose label the existing keys were sealed under, read from the JWE header, so the new key
 * is sealed exactly as the running servers open keys (see docs/cli.md, "keys rotate").
 */
async function sealPurposeOfExistingKeys(
  keys: KeyRepository,
  purpose: 'token' | 'audit',
): Promise<string | null> {
  const active = (await keys.list(purpose)).find((key) => key.active);
  if (!active) {
    throw new CliError('no_active_key', `There is no active ${purpose} signing key yet`, exitCodes.conflict, {
      hint: 'start the server once (`portcullis serve`): it creates the first keys; rotate after that',
    });
  }
  const header = decodeProtectedHeader(active.sealedPrivateJwk);
  return typeof header.purpose === 'string' ? header.purpose : null;
}

/**
 * Rotates the `token` or `audit` signing key: the new key signs from now on; the old one stays
 * published for `tokens.rotation_overlap` (token keys) or for good (audit keys), so what it signed
 * keeps verifying. Running servers pick the new key up within seconds.
 */
export async function rotateKeys(ctx: CliContext, options: RotateOptions): Promise<void> {
  if (options.purpose !== 'token' && options.purpose !== 'audit') {
    throw usageError(`--purpose must be token or audit, not ${JSON.stringify(options.purpose)}`);
  }
  const purpose = options.purpose;
  const { decodeKeyEncryptionKey } = await import('../../config/load.js');
  const { openStore } = await import('../../storage/open-store.js');
  const { SigningKeyStore } = await import('../../tokens/key-store.js');
  const { JweSecretBox } = await import('../../crypto/secret-box.js');

  const config = await loadOfflineConfig(options.config, ctx.io.env);
  const kek = decodeKeyEncryptionKey(
    requireRealSecret(config.tokens.keyEncryptionKey, 'tokens.key_encryption_key'),
  );
  if (!kek) throw new PortcullisError('config_invalid', 'tokens.key_encryption_key is not 32 bytes');
  const store = await openStore(requireRealSecret(config.storageUrl, 'storage.url'));
  try {
    const sealPurpose = await sealPurposeOfExistingKeys(store.keys, purpose);
    const box = sealPurpose === null ? new JweSecretBox(kek) : new JweSecretBox(kek).withPurpose(sealPurpose);
    const keys = new SigningKeyStore(store.keys, box, {
      longestTokenLifetimeSeconds: Math.max(
        config.tokens.accessTokenTtlSeconds,
        config.tokens.sessionTtlSeconds,
      ),
    });
    // INVARIANT: never add a key the servers could not open. Opening the current one proves that
    // this key-encryption key (and seal purpose) is the one the servers use.
    await keys.activeSigningKey(purpose);
    const now = ctx.io.now();
    const overlap = config.tokens.rotationOverlapSeconds;
    // The rotation and its audit event commit together (fail closed): no unaudited key change.
    const result = await store.transaction(async (tx) => {
      const inTx = new SigningKeyStore(tx.keys, box, {
        longestTokenLifetimeSeconds: Math.max(
          config.tokens.accessTokenTtlSeconds,
          config.tokens.sessionTtlSeconds,
        ),
      });
      const rotated = await inTx.rotate(purpose, now, overlap);
      await tx.audit.append(
        {
          type: 'keys.rotated',
          actor: `operator:${userInfo().username}`,
          severity: 'warning',
          data: {
            purpose,
            kid: rotated.kid,
            retiredKids: rotated.retiredKids,
            publishUntil: purpose === 'audit' ? null : rotated.publishUntil,
            deleted: rotated.deleted,
          },
        },
        now,
      );
      return rotated;
    });
    const forever = purpose === 'audit';
    const publishUntil = forever ? null : new Date(result.publishUntil).toISOString();
    ctx.output.result(
      {
        purpose,
        kid: result.kid,
        retired_kids: result.retiredKids,
        publish_until: publishUntil,
        deleted: result.deleted,
      },
      () => {
        ctx.output.line(`Rotated the ${purpose} signing key. New key: ${result.kid}`);
        if (result.retiredKids.length > 0) {
          ctx.output.line(
            forever
              ? `Retired ${result.retiredKids.join(', ')}: no longer signs, stays published for good (old checkpoints must keep verifying).`
              : `Retired ${result.retiredKids.join(', ')}: no longer signs, stays published until ${publishUntil} (${relativeTime(publishUntil, now)}, the ${formatSeconds(overlap)} rotation overlap).`,
          );
        }
        if (result.deleted > 0)
          ctx.output.line(`Deleted ${result.deleted} key(s) whose publication had ended.`);
        ctx.output.line('Running servers switch to the new key within a few seconds.');
      },
    );
  } finally {
    await store.close();
  }
}
