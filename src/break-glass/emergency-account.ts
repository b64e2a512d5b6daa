/**
 * Break-glass emergency accounts as they come from configuration, and their validator. Pure: no
 * I/O. The validator reports every problem with its path (like `src/config/load.ts`) so that an
 * operator fixes a broken file in one pass.
 */

/** Absolute ceiling on any break-glass activation, in minutes. No configuration can raise it. */
export const breakGlassCeilingMinutes = 4 * 60;

/** Longest confirmation window, in minutes: a quorum that takes longer is not an emergency. */
export const maxActivationWindowMinutes = 60;

/** Fewest custodians needed to open an account: one person alone can never do it. */
export const minQuorum = 2;

/** What an emergency account may reach: one resource and some of its roles, nothing else. */
export interface EmergencyScope {
  readonly resourceId: string;
  readonly roles: readonly string[];
}

/** One emergency account, as configured. */
export interface EmergencyAccount {
  readonly id: string;
  readonly scope: EmergencyScope;
  /** Hard maximum length of one activation; at most {@link breakGlassCeilingMinutes}. */
  readonly maxDurationMinutes: number;
  /** Ids of the local (non-IdP) custodian identities that may initiate or confirm. */
  readonly custodians: readonly string[];
  /** Distinct custodians needed, the initiator included; at least {@link minQuorum}. */
  readonly quorum: number;
  /** Minutes the other custodians have to confirm after the initiation. */
  readonly activationWindowMinutes: number;
  /** Names of the alert channels (webhook, e-mail…) notified on every step. */
  readonly alertChannels: readonly string[];
}

/** One problem in the configuration, with its path (e.g. `break_glass.accounts[0].quorum`). */
export interface AccountIssue {
  readonly path: string;
  readonly message: string;
}

function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}

function duplicates(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const v of values) (seen.has(v) ? dup : seen).add(v);
  return [...dup];
}

/** Every problem of one account; an empty list means it is usable. */
export function validateEmergencyAccount(account: EmergencyAccount, path = ''): AccountIssue[] {
  const at = (field: string) => (path ? `${path}.${field}` : field);
  const issues: AccountIssue[] = [];
  if (account.id.trim() === '') issues.push({ path: at('id'), message: 'id must not be empty' });
  if (account.scope.resourceId.trim() === '')
    issues.push({ path: at('scope.resource'), message: 'scope must name a resource' });
  if (account.scope.roles.length === 0)
    issues.push({ path: at('scope.roles'), message: 'scope must list at least one role' });
  for (const role of duplicates(account.scope.roles))
    issues.push({ path: at('scope.roles'), message: `duplicate role "${role}"` });
  // Written as "not within" so that NaN refuses instead of passing.
  if (
    !isPositiveInteger(account.maxDurationMinutes) ||
    !(account.maxDurationMinutes <= breakGlassCeilingMinutes)
  ) {
    issues.push({
      path: at('max_duration_minutes'),
      message: `must be a whole number of minutes between 1 and ${breakGlassCeilingMinutes} (the absolute ceiling)`,
    });
  }
  if (
    !isPositiveInteger(account.activationWindowMinutes) ||
    !(account.activationWindowMinutes <= maxActivationWindowMinutes)
  ) {
    issues.push({
      path: at('activation_window_minutes'),
      message: `must be a whole number of minutes between 1 and ${maxActivationWindowMinutes}`,
    });
  }
  for (const c of duplicates(account.custodians))
    issues.push({ path: at('custodians'), message: `duplicate custodian "${c}"` });
  const distinctCustodians = new Set(account.custodians).size;
  if (!Number.isInteger(account.quorum) || !(account.quorum >= minQuorum)) {
    issues.push({ path: at('quorum'), message: `quorum must be a whole number of at least ${minQuorum}` });
  } else if (account.quorum > distinctCustodians) {
    issues.push({
      path: at('quorum'),
      message: `quorum ${account.quorum} is more than the ${distinctCustodians} distinct custodian(s)`,
    });
  }
  if (account.alertChannels.length === 0)
    issues.push({ path: at('alert_channels'), message: 'at least one alert channel is required' });
  return issues;
}

/** Every problem of the list of accounts, including duplicate ids. */
export function validateEmergencyAccounts(
  accounts: readonly EmergencyAccount[],
  path = 'break_glass.accounts',
): AccountIssue[] {
  const issues = accounts.flatMap((a, i) => validateEmergencyAccount(a, `${path}[${i}]`));
  for (const id of duplicates(accounts.map((a) => a.id)))
    issues.push({ path, message: `duplicate emergency account id "${id}"` });
  return issues;
}

/** Whether a requested scope lies within the account's scope (same resource, subset of roles). */
export function scopeWithin(requested: EmergencyScope, allowed: EmergencyScope): boolean {
  return (
    requested.resourceId === allowed.resourceId &&
    requested.roles.length > 0 &&
    requested.roles.every((r) => allowed.roles.includes(r))
  );
}
