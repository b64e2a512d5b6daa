/**
 * Custodian authentication: passphrase plus a single-use TOTP code or a security-key assertion,
 * and the account's shares when sealed. Guessing is limited per account and across accounts; an
 * unknown custodian costs the same work and gets the same answer as a wrong factor.
 */
import { randomBytes } from 'node:crypto';
import type { Activation } from '../../break-glass/activation.js';
import {
  type CustodianCredentials,
  hashPassphrase,
  type PresentedCredentials,
  passphraseMatches,
  verifyCustodian,
} from '../../break-glass/credentials.js';
import { type Attempt, checkAttempt, recordFailure, recordSuccess } from '../../break-glass/guessing.js';
import { openSeal } from '../../break-glass/sealed-shares.js';
import { guessingSource } from '../../break-glass/source-address.js';
import type { UsedCodes } from '../../break-glass/used-codes.js';
import { SecurityKeyRefused } from '../../break-glass/webauthn.js';
import type { ConfiguredEmergencyAccount } from '../../config/break-glass-config.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import { alert, audit } from './audit-and-alerts.js';
import type { BreakGlassContext } from './context.js';
import { readGuessing, updateGuessing } from './guessing-counters.js';
import { custodianActor, webauthnUser } from './identities.js';
import { refusalEvidence, refuse } from './refusals.js';
import type { CustodianProof } from './types.js';

const guessingKeyGlobal = 'global';

/** Never claims a code: used when the custodian is unknown, so the answer and the cost match. */
const refuseEveryCode: UsedCodes = { claim: async () => false };

/**
 * Checks the guessing limits, verifies both factors (and claims the TOTP step), records the
 * outcome, and audits a failure. One generic refusal for any wrong factor or unknown custodian.
 */
export async function authenticate(
  ctx: BreakGlassContext,
  account: ConfiguredEmergencyAccount,
  proof: CustodianProof,
  step: string,
  from: RequestOrigin,
  activation: Activation | null = null,
): Promise<void> {
  const attempt: Attempt = { custodianId: proof.custodianId, source: guessingSource(from.sourceIp) };
  const accountKey = `account:${account.id}`;
  // The global key counts a source across accounts, so spraying several accounts does not help.
  const globalAttempt: Attempt = {
    custodianId: `${account.id}/${proof.custodianId}`,
    source: attempt.source,
  };
  await ctx.memory.lanes.run(`${account.id}\0${attempt.source}`, async () => {
    const now = ctx.deps.clock.now();
    const accountState = await readGuessing(ctx, ctx.deps.store, accountKey, now);
    const globalState = await readGuessing(ctx, ctx.deps.store, guessingKeyGlobal, now);
    const verdicts = [
      checkAttempt(accountState.state, attempt, ctx.policy, now),
      checkAttempt(globalState.state, globalAttempt, ctx.policy, now),
    ];
    const refused = verdicts.find((v) => !v.allowed);
    if (refused && !refused.allowed) {
      const retryAfterSeconds = Math.ceil(refused.retryAfterMs / 1000);
      const evidence = refusalEvidence(ctx, from, now, account.id, 'guess');
      if (evidence !== null) {
        await audit(
          ctx,
          {
            type: 'break_glass.locked_out',
            actor: custodianActor(proof.custodianId),
            reason: `too many failed attempts (${refused.limit} limit)`,
            data: {
              accountId: account.id,
              activationId: activation?.id ?? null,
              step,
              limit: refused.limit,
              retryAfterSeconds,
              ...evidence,
            },
          },
          from,
          now,
        );
        alert(
          ctx,
          'locked_out',
          account.id,
          activation,
          now,
          `Break-glass attempts on ${account.id} delayed (${refused.limit} limit) for ${retryAfterSeconds}s`,
        );
      }
      throw new PortcullisError('break_glass_locked', 'Too many failed attempts; try again later', {
        retryAfterSeconds,
      });
    }
    const ok = await verifyFactors(ctx, account, proof, now);
    await updateGuessing(
      ctx,
      accountKey,
      (s) => (ok ? recordSuccess(s, attempt, now) : recordFailure(s, attempt, ctx.policy, now)),
      now,
    );
    await updateGuessing(
      ctx,
      guessingKeyGlobal,
      (s) => (ok ? recordSuccess(s, globalAttempt, now) : recordFailure(s, globalAttempt, ctx.policy, now)),
      now,
    );
    if (!ok) {
      await refuse(
        ctx,
        new PortcullisError('break_glass_auth_failed', 'The emergency credentials were not accepted'),
        account.id,
        proof.custodianId,
        step,
        from,
        activation,
        'guess',
      );
    }
  });
}

/** Whether both factors are right for an enrolled custodian of the account (the TOTP step is claimed). */
async function verifyFactors(
  ctx: BreakGlassContext,
  account: ConfiguredEmergencyAccount,
  proof: CustodianProof,
  now: number,
): Promise<boolean> {
  const stored = account.custodians.includes(proof.custodianId)
    ? await ctx.deps.store.breakGlass.getCustodian(account.id, proof.custodianId)
    : undefined;
  let credentials: CustodianCredentials;
  let usedCodes: UsedCodes = refuseEveryCode;
  if (stored) {
    credentials = {
      custodianId: proof.custodianId,
      passphraseHash: stored.passphraseHash,
      totpSecret: await ctx.deps.totpSecrets.open(stored.sealedTotpSecret),
    };
    usedCodes = {
      claim: (_id, step) => ctx.deps.store.breakGlass.claimTimeStep(account.id, proof.custodianId, step),
    };
  } else {
    // An unknown or unenrolled custodian costs the same argon2 work and gets the same answer.
    ctx.memory.dummyHash ??= hashPassphrase(randomBytes(24).toString('base64url'));
    credentials = {
      custodianId: proof.custodianId,
      passphraseHash: await ctx.memory.dummyHash,
      totpSecret: 'A'.repeat(32),
    };
  }
  if (proof.securityKey !== undefined)
    return verifyWithSecurityKey(ctx, account, proof, credentials, stored !== undefined);
  const presented: PresentedCredentials = { passphrase: proof.passphrase, totp: proof.totp ?? '' };
  try {
    await verifyCustodian(credentials, presented, usedCodes, now);
    return stored !== undefined;
  } catch (error) {
    if (error instanceof PortcullisError && error.code === 'break_glass_auth_failed') return false;
    throw error;
  }
}

/**
 * Passphrase plus a security-key assertion, both always evaluated. The assertion's challenge was
 * bound to this custodian of this account and is used up either way; the new signature counter
 * is stored with a compare-and-swap, so two racing assertions cannot both pass.
 */
async function verifyWithSecurityKey(
  ctx: BreakGlassContext,
  account: ConfiguredEmergencyAccount,
  proof: CustodianProof,
  credentials: CustodianCredentials,
  enrolled: boolean,
): Promise<boolean> {
  const ceremonies = ctx.deps.securityKeys;
  const keys = enrolled
    ? await ctx.deps.store.breakGlass.listSecurityKeys(account.id, proof.custodianId)
    : [];
  const [passphraseOk, assertion] = await Promise.all([
    passphraseMatches(credentials.passphraseHash, proof.passphrase),
    ceremonies && proof.securityKey
      ? ceremonies
          .verifyAuthentication({
            custodianId: webauthnUser(account.id, proof.custodianId),
            response: proof.securityKey,
            keys,
          })
          .catch((error: unknown) => {
            if (error instanceof SecurityKeyRefused) return null;
            throw error;
          })
      : Promise.resolve(null),
  ]);
  if (!(passphraseOk && enrolled && assertion)) return false;
  const key = keys.find((k) => k.credentialId === assertion.credentialId);
  return (
    key !== undefined &&
    (await ctx.deps.store.breakGlass.updateSecurityKeyCounter(
      key.credentialId,
      key.counter,
      assertion.newCounter,
    ))
  );
}

/** Opens the account's seal with the shares; a wrong combination counts as a failed guess. */
export async function checkShares(
  ctx: BreakGlassContext,
  account: ConfiguredEmergencyAccount,
  proof: CustodianProof,
  shares: readonly string[],
  from: RequestOrigin,
): Promise<void> {
  const seal = await ctx.deps.store.breakGlass.getSeal(account.id);
  if (!seal) {
    return refuse(
      ctx,
      new PortcullisError('break_glass_not_enrolled', `"${account.id}" is sealed but no seal was made yet`),
      account.id,
      proof.custodianId,
      'initiate',
      from,
    );
  }
  try {
    await openSeal(seal, shares);
  } catch (error) {
    if (!(error instanceof PortcullisError)) throw error;
    if (error.code === 'shares_mismatch') {
      const now = ctx.deps.clock.now();
      const attempt: Attempt = { custodianId: proof.custodianId, source: guessingSource(from.sourceIp) };
      await updateGuessing(
        ctx,
        `account:${account.id}`,
        (s) => recordFailure(s, attempt, ctx.policy, now),
        now,
      );
    }
    await refuse(
      ctx,
      error,
      account.id,
      proof.custodianId,
      'initiate',
      from,
      null,
      error.code === 'shares_mismatch' ? 'guess' : 'other',
    );
  }
}
