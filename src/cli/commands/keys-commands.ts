/**
 * `portcullis keys rotate`, `keys recovery init` and `keys emergency-rotate`: signing keys, straight
 * in the database (no server needed).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
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
  const { SigningKeyStore, signingKeyStoreOptions } = await import('../../tokens/key-store.js');
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
    const keys = new SigningKeyStore(store.keys, box, signingKeyStoreOptions(config.tokens));
    // INVARIANT: never add a key the servers could not open. Opening the current one proves that
    // this key-encryption key (and seal purpose) is the one the servers use.
    await keys.activeSigningKey(purpose);
    const now = ctx.io.now();
    const overlap = config.tokens.rotationOverlapSeconds;
    // The rotation and its audit event commit together (fail closed): no unaudited key change.
    const result = await store.transaction(async (tx) => {
      const inTx = new SigningKeyStore(tx.keys, box, signingKeyStoreOptions(config.tokens));
      const rotated = await inTx.rotate(purpose, now, overlap);
      await tx.audit.append(
        {
          type: 'keys.rotated',
          actor: `operator:${userInfo().username}`,
          severity: 'warning',
          data: {
            purpose,
            kid: rotated.kid,
            alg: rotated.alg,
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
        alg: result.alg,
        retired_kids: result.retiredKids,
        publish_until: publishUntil,
        deleted: result.deleted,
      },
      () => {
        ctx.output.line(`Rotated the ${purpose} signing key. New key: ${result.kid} (${result.alg})`);
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

export interface RecoveryInitOptions {
  readonly config: string;
  /** Where the private key goes (mode 0600, never overwritten), or `-` for stdout. */
  readonly out: string;
  /** Replace an existing recovery key (the old one stops working at once). */
  readonly replace?: boolean;
}

/**
 * `keys recovery init`: creates the offline recovery key pair. The private key is written once
 * (to `--out`, or stdout) for a safe; the database keeps the public key only. Audited.
 */
export async function initRecoveryKey(ctx: CliContext, options: RecoveryInitOptions): Promise<void> {
  const { openStore } = await import('../../storage/open-store.js');
  const { generateRecoveryKey, recoveryKeyRow } = await import('../../tokens/recovery-key.js');
  const config = await loadOfflineConfig(options.config, ctx.io.env);
  const store = await openStore(requireRealSecret(config.storageUrl, 'storage.url'));
  try {
    const existing = (await store.keys.list('recovery')).filter((key) => key.active);
    if (existing.length > 0 && !options.replace) {
      throw new CliError(
        'recovery_key_exists',
        `A recovery key is already registered (${existing.map((k) => k.kid).join(', ')})`,
        exitCodes.conflict,
        { hint: 'pass --replace to register a new one; the old one stops working at once' },
      );
    }
    const pair = await generateRecoveryKey();
    const now = ctx.io.now();
    const toStdout = options.out === '-';
    if (!toStdout) {
      try {
        // wx: never overwrite (an old recovery key in that file might be the only copy).
        await writeFile(options.out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw usageError(
          `Cannot write ${options.out}: ${code === 'EEXIST' ? 'the file exists (it is never overwritten)' : (code ?? String(error))}`,
        );
      }
    }
    try {
      await store.transaction(async (tx) => {
        await tx.keys.insert(recoveryKeyRow(pair, now));
        await tx.keys.retireOthers('recovery', pair.kid, now);
        const replaced = await tx.keys.deleteUnpublished('recovery', now);
        await tx.audit.append(
          {
            type: 'keys.recovery_key_set',
            actor: `operator:${userInfo().username}`,
            severity: 'high',
            data: { kid: pair.kid, replaced: existing.map((k) => k.kid), deleted: replaced },
          },
          now,
        );
      });
    } catch (error) {
      if (!toStdout) await rm(options.out, { force: true });
      throw error;
    }
    const summary = {
      kid: pair.kid,
      file: toStdout ? null : options.out,
      replaced: existing.map((k) => k.kid),
    };
    const lines = [
      `Registered the recovery key ${pair.kid} (the database keeps its public half only).`,
      ...(toStdout ? [] : [`Private key written to ${options.out} (mode 0600).`]),
      'Now: copy the private key to offline storage (a safe, two copies), write the fingerprint',
      'above next to it, and delete it from this host. It is never shown again.',
      ...(existing.length > 0
        ? [`Replaced ${existing.map((k) => k.kid).join(', ')}: it no longer works.`]
        : []),
    ];
    if (toStdout) {
      // stdout carries the key alone (for a pipe to a printer or an HSM import); the rest is a note.
      ctx.output.raw(pair.privateKeyPem);
      for (const line of ctx.output.json ? [JSON.stringify(summary)] : lines) ctx.output.note(line);
      return;
    }
    ctx.output.result(summary, () => {
      for (const line of lines) ctx.output.line(line);
    });
  } finally {
    await store.close();
  }
}

export interface EmergencyRotateOptions {
  readonly config: string;
  readonly recoveryKey: string;
  readonly reason: string;
}

/** The seal label of the existing keys (any purpose), or the default for a fresh installation. */
async function sealPurposeForNewKey(keys: KeyRepository): Promise<string | null> {
  const { signingKeySealPurpose } = await import('../../tokens/key-store.js');
  for (const purpose of ['token', 'audit'] as const) {
    const key = (await keys.list(purpose)).find((k) => k.sealedPrivateJwk !== '');
    if (key) {
      const header = decodeProtectedHeader(key.sealedPrivateJwk);
      return typeof header.purpose === 'string' ? header.purpose : null;
    }
  }
  return signingKeySealPurpose;
}

/**
 * `keys emergency-rotate --recovery-key FILE --reason TEXT`: when the token-signing key is lost or
 * compromised. Proves possession of the offline recovery key (a signed rotation statement verified
 * against the registered public key), then retires every token key at once — no overlap — and
 * installs a new one, with a high-severity audit event holding the statement. The old keys are
 * never opened, so this works when they are gone.
 */
export async function emergencyRotate(ctx: CliContext, options: EmergencyRotateOptions): Promise<void> {
  const reason = options.reason.trim();
  if (reason === '') throw usageError('--reason must say why (it is audited and signed)');
  const { decodeKeyEncryptionKey } = await import('../../config/load.js');
  const { openStore } = await import('../../storage/open-store.js');
  const { SigningKeyStore, signingKeyStoreOptions } = await import('../../tokens/key-store.js');
  const { JweSecretBox } = await import('../../crypto/secret-box.js');
  const { parseRecoveryPrivateKey, signRotationStatement, verifyRotationStatement } = await import(
    '../../tokens/recovery-key.js'
  );

  let pem: string;
  try {
    pem = await readFile(options.recoveryKey, 'utf8');
  } catch (error) {
    throw usageError(
      `Cannot read the recovery key ${options.recoveryKey}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  const recoveryKey = parseRecoveryPrivateKey(pem);
  const config = await loadOfflineConfig(options.config, ctx.io.env);
  const kek = decodeKeyEncryptionKey(
    requireRealSecret(config.tokens.keyEncryptionKey, 'tokens.key_encryption_key'),
  );
  if (!kek) throw new PortcullisError('config_invalid', 'tokens.key_encryption_key is not 32 bytes');
  const store = await openStore(requireRealSecret(config.storageUrl, 'storage.url'));
  try {
    const recoveryKeys = await store.keys.list('recovery');
    if (!recoveryKeys.some((key) => key.active)) {
      throw new CliError(
        'no_recovery_key',
        'No recovery key is registered for this installation',
        exitCodes.conflict,
        {
          hint: 'an emergency rotation needs one registered in advance (`portcullis keys recovery init`); without it, use `keys rotate`',
        },
      );
    }
    const sealPurpose = await sealPurposeForNewKey(store.keys);
    const box = sealPurpose === null ? new JweSecretBox(kek) : new JweSecretBox(kek).withPurpose(sealPurpose);
    const lifetimes = signingKeyStoreOptions(config.tokens);
    // INVARIANT: never install a key the servers could not open. The token key may be lost, so the
    // audit key (sealed with the same key-encryption key) proves that this KEK is the servers' one.
    try {
      await new SigningKeyStore(store.keys, box, lifetimes).activeSigningKey('audit');
    } catch (error) {
      throw new CliError(
        'kek_mismatch',
        'The key-encryption key of this configuration does not open the audit signing key: a token key sealed with it could not be used by the servers',
        exitCodes.usage,
        { cause: error, hint: 'check tokens.key_encryption_key (and that storage.url is this installation)' },
      );
    }
    const now = ctx.io.now();
    const operator = `operator:${userInfo().username}`;
    const result = await store.transaction(async (tx) => {
      let statement = '';
      let proof: { recoveryKid: string; jti: string } | null = null;
      const replaced = await new SigningKeyStore(tx.keys, box, lifetimes).replaceAll(
        'token',
        now,
        async (plan) => {
          const expected = { purpose: 'token' as const, ...plan, operator, reason };
          statement = await signRotationStatement(recoveryKey, expected, now);
          proof = await verifyRotationStatement(statement, recoveryKeys, expected, now);
        },
      );
      const verified = proof as { recoveryKid: string; jti: string } | null;
      if (verified === null) throw new PortcullisError('internal', 'The rotation was not authorised');
      await tx.audit.append(
        {
          type: 'keys.emergency_rotated',
          actor: operator,
          severity: 'high',
          reason,
          data: {
            purpose: 'token',
            kid: replaced.kid,
            alg: replaced.alg,
            retiredKids: replaced.retiredKids,
            deleted: replaced.deleted,
            recoveryKid: verified.recoveryKid,
            statementJti: verified.jti,
            statement,
          },
        },
        now,
      );
      return { ...replaced, recoveryKid: verified.recoveryKid, statement };
    });
    ctx.output.result(
      {
        purpose: 'token',
        kid: result.kid,
        alg: result.alg,
        retired_kids: result.retiredKids,
        recovery_kid: result.recoveryKid,
        statement: result.statement,
      },
      () => {
        ctx.output.line(`Emergency rotation authorised by recovery key ${result.recoveryKid}.`);
        ctx.output.line(`New token signing key: ${result.kid} (${result.alg})`);
        ctx.output.line(
          result.retiredKids.length > 0
            ? `Retired at once, with no overlap, and deleted: ${result.retiredKids.join(', ')}`
            : 'There was no token key left to retire.',
        );
        ctx.output.line(
          'Every access and session token signed before is refused from now on (running servers',
        );
        ctx.output.line('within 5 seconds): people sign in again, services fetch new tokens and the JWKS.');
        ctx.output.line(
          'Recorded in the audit log as keys.emergency_rotated (severity high), with the signed statement.',
        );
      },
    );
  } finally {
    await store.close();
  }
}
