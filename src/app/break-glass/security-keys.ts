/**
 * Security-key (WebAuthn) ceremonies of a custodian: the options to sign in with a key, and
 * enrolling a new key after proving themselves with the factors they already have. Every
 * enrolment is audited and alerted: a key enrolled by someone who learnt a custodian's passphrase
 * and one TOTP code would otherwise be a silent, lasting second factor. Administrators list and
 * revoke keys (also audited and alerted).
 */
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { type SecurityKeyCeremonies, SecurityKeyRefused } from '../../break-glass/webauthn.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import type { EnrolledSecurityKey } from '../break-glass-ports.js';
import { alert } from './audit-and-alerts.js';
import { type BreakGlassContext, configuredAccount } from './context.js';
import { authenticate } from './custodian-auth.js';
import { custodianActor, webauthnUser } from './identities.js';
import { accountOrRefuse, refuse } from './refusals.js';
import type { CustodianProof } from './types.js';

/** Options for `navigator.credentials.get()`, for a custodian who signs in with a security key. */
export async function securityKeyOptions(
  ctx: BreakGlassContext,
  accountId: string,
  custodianId: string,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const ceremonies = requireSecurityKeys(ctx);
  const account = configuredAccount(ctx, accountId);
  const keys = account.custodians.includes(custodianId)
    ? await ctx.deps.store.breakGlass.listSecurityKeys(account.id, custodianId)
    : [];
  // No key enrolled: the same generic refusal as a wrong factor.
  if (keys.length === 0)
    throw new PortcullisError('break_glass_auth_failed', 'The emergency credentials were not accepted');
  return ceremonies.authenticationOptions({ custodianId: webauthnUser(account.id, custodianId), keys });
}

/**
 * Starts enrolling a security key: the custodian proves themselves with their passphrase and
 * TOTP (or an existing key) first. Returns the options for `navigator.credentials.create()`.
 */
export async function securityKeyRegistrationOptions(
  ctx: BreakGlassContext,
  accountId: string,
  proof: CustodianProof,
  from: RequestOrigin,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const ceremonies = requireSecurityKeys(ctx);
  const account = await accountOrRefuse(ctx, accountId, proof.custodianId, 'security_key', from);
  await authenticate(ctx, account, proof, 'security_key', from);
  const existing = await ctx.deps.store.breakGlass.listSecurityKeys(account.id, proof.custodianId);
  return ceremonies.registrationOptions({
    custodianId: webauthnUser(account.id, proof.custodianId),
    displayName: `${proof.custodianId} (${account.id})`,
    existing,
  });
}

/** Finishes the enrolment: verifies the new credential (challenge bound to the custodian), stores it, audits it. */
export async function enrolSecurityKey(
  ctx: BreakGlassContext,
  accountId: string,
  custodianId: string,
  response: RegistrationResponseJSON,
  from: RequestOrigin,
): Promise<{ credentialId: string }> {
  const ceremonies = requireSecurityKeys(ctx);
  const account = await accountOrRefuse(ctx, accountId, custodianId, 'security_key', from);
  const existing = await ctx.deps.store.breakGlass.listSecurityKeys(account.id, custodianId);
  let key: Awaited<ReturnType<SecurityKeyCeremonies['verifyRegistration']>>;
  try {
    key = await ceremonies.verifyRegistration({
      custodianId: webauthnUser(account.id, custodianId),
      response,
      existing,
    });
  } catch (error) {
    if (error instanceof SecurityKeyRefused)
      return refuse(
        ctx,
        new PortcullisError('break_glass_auth_failed', 'The security key was not accepted', {}),
        account.id,
        custodianId,
        `security_key (${error.reason})`,
        from,
        null,
        'guess',
      );
    throw error;
  }
  const now = ctx.deps.clock.now();
  await ctx.deps.store.transaction(async (tx) => {
    await tx.breakGlass.insertSecurityKey(account.id, custodianId, key, now);
    await tx.audit.append(
      {
        type: 'break_glass.enrolled',
        actor: custodianActor(custodianId),
        severity: 'high',
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        data: {
          accountId: account.id,
          custodianId,
          securityKey: key.credentialId,
          aaguid: key.aaguid,
          backedUp: key.backedUp,
        },
      },
      now,
    );
  });
  alert(
    ctx,
    'security_key_enrolled',
    account.id,
    null,
    now,
    `Break-glass: a security key was ENROLLED for ${custodianId} on ${account.id}; if ${custodianId} did not do this, revoke it (portcullis break-glass keys revoke) and rotate`,
    [custodianId],
  );
  return { credentialId: key.credentialId };
}

/** Whether `principal` is an administrator (`admins` groups); only they list and revoke keys. */
function requireAdmin(ctx: BreakGlassContext, principal: Principal, what: string): void {
  if (!principal.groups.some((g) => ctx.deps.adminGroups.includes(g)))
    throw new PortcullisError('forbidden', `Only administrators may ${what}`);
}

/** The security keys enrolled for an account, for an administrator. */
export async function listSecurityKeys(
  ctx: BreakGlassContext,
  principal: Principal,
  accountId: string,
): Promise<EnrolledSecurityKey[]> {
  requireAdmin(ctx, principal, 'list security keys');
  const account = configuredAccount(ctx, accountId);
  return ctx.deps.store.breakGlass.listAccountSecurityKeys(account.id);
}

/**
 * Revokes one security key of an account (an administrator): deleted, audited
 * (`break_glass.security_key_revoked`) and alerted. `not_found` when the account has no such key.
 */
export async function revokeSecurityKey(
  ctx: BreakGlassContext,
  principal: Principal,
  accountId: string,
  credentialId: string,
  from: RequestOrigin,
): Promise<EnrolledSecurityKey> {
  requireAdmin(ctx, principal, 'revoke security keys');
  const account = configuredAccount(ctx, accountId);
  const now = ctx.deps.clock.now();
  const revoked = await ctx.deps.store.transaction(async (tx) => {
    const [key] = await tx.breakGlass.deleteSecurityKeys(account.id, { credentialId });
    if (!key) throw new PortcullisError('not_found', `No security key ${credentialId} on ${account.id}`);
    await tx.audit.append(
      {
        type: 'break_glass.security_key_revoked',
        actor: principal.id,
        severity: 'high',
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        data: { accountId: account.id, custodianId: key.custodianId, securityKey: key.credentialId },
      },
      now,
    );
    return key;
  });
  alert(
    ctx,
    'security_key_revoked',
    account.id,
    null,
    now,
    `Break-glass: security key of ${revoked.custodianId} on ${account.id} REVOKED by ${principal.id}`,
    [revoked.custodianId],
  );
  return revoked;
}

function requireSecurityKeys(ctx: BreakGlassContext): SecurityKeyCeremonies {
  if (!ctx.deps.securityKeys)
    throw new PortcullisError('break_glass_unavailable', 'Security keys are not configured on this server');
  return ctx.deps.securityKeys;
}
