/**
 * Custodian credentials that never touch the identity provider: an argon2id passphrase and a
 * TOTP second factor (RFC 6238). The only break-glass file with credential crypto, and all of it
 * through libraries (`argon2`, `otplib`): nothing here hashes or compares by hand.
 *
 * Verification answers one generic failure, always evaluates both factors (in parallel, so the
 * time does not say which failed), and makes each TOTP code single-use through {@link UsedCodes}.
 */
import argon2 from 'argon2';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import { PortcullisError } from '../core/errors.js';
import type { UsedCodes } from './used-codes.js';

/** Parameters of argon2id for passphrases. */
export interface PassphraseHashParameters {
  /** Memory in KiB. */
  readonly memoryCost: number;
  /** Passes over memory. */
  readonly timeCost: number;
  readonly parallelism: number;
}

/**
 * Production parameters: m = 64 MiB, t = 3, p = 1 — above the OWASP minimum for argon2id
 * (19 MiB, t = 2) and about a quarter of a second on a server core. Custodians sign in rarely,
 * so the cost buys guessing resistance at no usability price. Tests pass lighter ones.
 */
export const productionPassphraseParameters: PassphraseHashParameters = {
  memoryCost: 64 * 1024,
  timeCost: 3,
  parallelism: 1,
};

/** Shortest passphrase accepted at enrolment. */
export const minPassphraseLength = 12;

/** TOTP: 30-second steps, 6 digits, SHA-1 (what authenticator apps support); ±1 step of drift. */
const totpPeriodSeconds = 30;
const totpToleranceSeconds = 30;

/** Hashes a passphrase at enrolment; the encoded hash carries its own salt and parameters. */
export async function hashPassphrase(
  passphrase: string,
  parameters: PassphraseHashParameters = productionPassphraseParameters,
): Promise<string> {
  if ([...passphrase].length < minPassphraseLength) {
    throw new PortcullisError(
      'validation_failed',
      `A passphrase needs at least ${minPassphraseLength} characters`,
      {
        issues: [{ path: 'passphrase', message: `at least ${minPassphraseLength} characters` }],
      },
    );
  }
  return argon2.hash(passphrase, { type: argon2.argon2id, ...parameters });
}

/** A new TOTP enrolment: the secret (store it sealed) and the otpauth:// URI for the app. */
export function enrolTotp(
  custodianId: string,
  issuer = 'Portcullis break-glass',
): { secret: string; uri: string } {
  const secret = generateSecret({ length: 20 });
  return { secret, uri: generateURI({ issuer, label: custodianId, secret, period: totpPeriodSeconds }) };
}

/** What storage holds for one custodian (the TOTP secret unsealed by the caller just for this). */
export interface CustodianCredentials {
  readonly custodianId: string;
  readonly passphraseHash: string;
  readonly totpSecret: string;
}

export interface PresentedCredentials {
  readonly passphrase: string;
  readonly totp: string;
}

/** Whether `passphrase` matches the stored argon2id hash; a corrupt hash is a refusal. */
export async function passphraseMatches(hash: string, passphrase: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, passphrase);
  } catch {
    return false; // a corrupt stored hash refuses, it never lets in
  }
}

async function totpTimeStep(secret: string, token: string, now: number): Promise<number | null> {
  try {
    const result = await verifyTotp({
      secret,
      token: token.trim(),
      epoch: Math.floor(now / 1000),
      period: totpPeriodSeconds,
      epochTolerance: totpToleranceSeconds,
    });
    return result.valid && 'timeStep' in result ? result.timeStep : null;
  } catch {
    return null; // malformed code (letters, wrong length): the same answer as a wrong one
  }
}

/**
 * Checks both factors and consumes the TOTP code. Throws `break_glass_auth_failed`, the same for
 * any wrong factor or a replayed code. The code is claimed as soon as it is right, even if the
 * passphrase is wrong: a code seen over a shoulder is then worth one passphrase guess, not thirty
 * seconds of them. (The claim is a small store call next to argon2's cost; it is the one timing
 * difference, and it only tells someone who already holds a valid code that it was valid.)
 */
export async function verifyCustodian(
  stored: CustodianCredentials,
  presented: PresentedCredentials,
  usedCodes: UsedCodes,
  now: number,
): Promise<void> {
  const [passphraseOk, timeStep] = await Promise.all([
    passphraseMatches(stored.passphraseHash, presented.passphrase),
    totpTimeStep(stored.totpSecret, presented.totp, now),
  ]);
  const fresh = timeStep !== null && (await usedCodes.claim(stored.custodianId, timeStep));
  if (!(passphraseOk && fresh)) {
    throw new PortcullisError('break_glass_auth_failed', 'The emergency credentials were not accepted');
  }
}
