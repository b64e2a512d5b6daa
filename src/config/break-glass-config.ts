/**
 * The `break_glass` section resolved into emergency accounts, and its cross-checks against the
 * resources (scope must name a real resource and real roles). Every problem carries its path.
 */
import { maxDrillMinutes } from '../break-glass/activation.js';
import {
  alertChannelsSchema,
  createAlertChannels,
  type ResolveSecret,
} from '../break-glass/alerts/alert-config.js';
import { type EmergencyAccount, validateEmergencyAccounts } from '../break-glass/emergency-account.js';
import type { AlertChannel } from '../break-glass/ports.js';
import { type WebAuthnConfig, webauthnConfigSchema } from '../break-glass/webauthn.js';
import type { ResourceDefinition } from '../core/resource.js';
import type { ParsedConfig } from './schema.js';
import { zodIssues } from './zod-issues.js';

/** One emergency account as the service uses it. */
export interface ConfiguredEmergencyAccount extends EmergencyAccount {
  /** k-of-n Shamir sealing, or null when the account is not sealed. */
  readonly sealed: { readonly threshold: number; readonly shares: number } | null;
  /** A last drill older than this flags the account as overdue. */
  readonly drillIntervalSeconds: number;
  /** Custodian id → their SSO principal id, where configured (to keep them from reviewing). */
  readonly custodianPrincipals: Readonly<Record<string, string>>;
}

export interface BreakGlassSettings {
  readonly accounts: readonly ConfiguredEmergencyAccount[];
  readonly drillIntervalSeconds: number;
  /** Lifetime of a drill's grants, in seconds (at most {@link maxDrillMinutes} minutes). */
  readonly drillAccessSeconds: number;
  readonly reviewerGroups: readonly string[];
  /** The configured alert channels (secrets resolved); accounts name the ones they use. */
  readonly alertChannels: readonly AlertChannel[];
  /** Security-key settings (`break_glass.webauthn`); RP id and origin default to `server.public_url`. */
  readonly webauthn: WebAuthnConfig;
}

export const noBreakGlass: BreakGlassSettings = {
  accounts: [],
  drillIntervalSeconds: 90 * 86_400,
  drillAccessSeconds: 30,
  reviewerGroups: [],
  alertChannels: [],
  webauthn: { rp_name: 'Portcullis break-glass', allow_synced_passkeys: false },
};

/** Resolves the section; returns the settings and every problem found. */
export function resolveBreakGlass(
  section: ParsedConfig['break_glass'],
  resources: ReadonlyMap<string, ResourceDefinition>,
  resolveSecret: ResolveSecret,
): { settings: BreakGlassSettings; issues: { path: string; message: string }[] } {
  if (!section) return { settings: noBreakGlass, issues: [] };
  const accounts = section.accounts.map((a): ConfiguredEmergencyAccount => {
    const custodians = a.custodians.map((c) => (typeof c === 'string' ? c : c.id));
    const custodianPrincipals: Record<string, string> = {};
    for (const c of a.custodians)
      if (typeof c !== 'string' && c.principal) custodianPrincipals[c.id] = c.principal;
    return {
      id: a.id,
      scope: { resourceId: a.scope.resource, roles: a.scope.roles },
      maxDurationMinutes: a.max_duration_minutes,
      custodians,
      quorum: a.quorum,
      activationWindowMinutes: a.activation_window_minutes,
      alertChannels: a.alert_channels,
      sealed: a.sealed ?? null,
      drillIntervalSeconds: a.drill_interval ?? section.drill_interval,
      custodianPrincipals,
    };
  });
  const issues = validateEmergencyAccounts(accounts, 'break_glass.accounts');
  accounts.forEach((account, i) => {
    const at = `break_glass.accounts[${i}]`;
    const resource = resources.get(account.scope.resourceId);
    if (!resource) {
      issues.push({
        path: `${at}.scope.resource`,
        message: `unknown resource "${account.scope.resourceId}"`,
      });
    } else {
      for (const role of account.scope.roles)
        if (!resource.roles.has(role))
          issues.push({
            path: `${at}.scope.roles`,
            message: `resource "${resource.id}" has no role "${role}"`,
          });
    }
    if (account.sealed && account.sealed.threshold > account.sealed.shares)
      issues.push({ path: `${at}.sealed`, message: 'threshold must not exceed shares' });
  });
  const channels = alertChannelsSchema.safeParse(section.alert_channels);
  let alertChannels: AlertChannel[] = [];
  if (!channels.success) {
    for (const issue of zodIssues(channels.error))
      issues.push({
        path: `break_glass.alert_channels${issue.path.startsWith('[') ? '' : '.'}${issue.path}`,
        message: issue.message,
      });
  } else {
    try {
      alertChannels = createAlertChannels(channels.data, resolveSecret);
    } catch (error) {
      const found = (error as { details?: { issues?: { path: string; message: string }[] } }).details?.issues;
      if (!found) throw error;
      issues.push(...found);
    }
    const names = new Set(channels.data.map((c) => c.name));
    accounts.forEach((account, i) => {
      for (const name of account.alertChannels)
        if (!names.has(name))
          issues.push({
            path: `break_glass.accounts[${i}].alert_channels`,
            message: `no alert channel "${name}" in break_glass.alert_channels`,
          });
    });
  }
  const webauthn = webauthnConfigSchema.safeParse(section.webauthn ?? {});
  if (!webauthn.success)
    for (const issue of zodIssues(webauthn.error))
      issues.push({ path: `break_glass.webauthn.${issue.path}`, message: issue.message });
  if (section.drill_access > maxDrillMinutes * 60)
    issues.push({ path: 'break_glass.drill_access', message: `must be at most ${maxDrillMinutes}m` });
  return {
    settings: {
      accounts,
      drillIntervalSeconds: section.drill_interval,
      drillAccessSeconds: section.drill_access,
      reviewerGroups: section.reviewer_groups,
      alertChannels,
      webauthn: webauthn.success ? webauthn.data : noBreakGlass.webauthn,
    },
    issues: issues.map((i) => ({ path: i.path, message: i.message })),
  };
}
