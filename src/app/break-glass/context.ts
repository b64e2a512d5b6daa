/**
 * What every break-glass use case is given: the service's dependencies, the guessing policy, and
 * what this one instance remembers between calls. The use cases are module functions that take
 * this context first; `BreakGlassService` builds one and delegates to them.
 */
import * as bg from '../../break-glass/activation.js';
import { defaultGuessingPolicy, type GuessingPolicy } from '../../break-glass/guessing.js';
import type { AlertDispatcher } from '../../break-glass/ports.js';
import type { RefusalThrottleState } from '../../break-glass/refusal-log-throttle.js';
import type { SecurityKeyCeremonies } from '../../break-glass/webauthn.js';
import type { BreakGlassSettings, ConfiguredEmergencyAccount } from '../../config/break-glass-config.js';
import type { Clock } from '../../core/clock.js';
import { PortcullisError } from '../../core/errors.js';
import type { AccessService } from '../access-service.js';
import type { StoredActivation } from '../break-glass-ports.js';
import type { SecretBox, Store } from '../ports.js';
import { SerialLanes } from './serial-lanes.js';

export interface BreakGlassServiceDeps {
  readonly store: Store;
  readonly access: AccessService;
  readonly settings: BreakGlassSettings;
  /** Opens custodians' TOTP secrets (sealed under their own purpose label). */
  readonly totpSecrets: SecretBox;
  readonly alerts: AlertDispatcher;
  readonly clock: Clock;
  readonly newId: () => string;
  readonly adminGroups: readonly string[];
  readonly guessingPolicy?: GuessingPolicy;
  /** Security-key (WebAuthn) ceremonies; without them only TOTP is accepted. */
  readonly securityKeys?: SecurityKeyCeremonies;
  /** Called when an activation reaches quorum (re-arms the expiry loop). */
  readonly onActivated?: (expiresAt: number) => void;
}

/** What one service instance remembers between calls: per replica, never shared, lost on restart. */
export interface ReplicaMemory {
  /** Attempts from one source for one account run one at a time (per replica). */
  readonly lanes: SerialLanes;
  /** The hash an unknown custodian's passphrase is checked against; made on first need. */
  dummyHash: Promise<string> | undefined;
  /** Per source: how many refusals were written one by one in its current window (per replica). */
  refusalLog: RefusalThrottleState;
  /** When overdue drills were last looked for, and when each account was last alerted about one. */
  overdueCheckedAt: number;
  readonly overdueAlertedAt: Map<string, number>;
}

export interface BreakGlassContext {
  readonly deps: BreakGlassServiceDeps;
  readonly policy: GuessingPolicy;
  readonly memory: ReplicaMemory;
}

export function createBreakGlassContext(deps: BreakGlassServiceDeps): BreakGlassContext {
  return {
    deps,
    policy: deps.guessingPolicy ?? defaultGuessingPolicy,
    memory: {
      lanes: new SerialLanes(),
      dummyHash: undefined,
      refusalLog: new Map(),
      overdueCheckedAt: Number.NEGATIVE_INFINITY,
      overdueAlertedAt: new Map(),
    },
  };
}

/** How many times a compare-and-swap is retried before giving up with `conflict`. */
export const maxCasAttempts = 8;

/** The configured emergency account; throws `unknown_emergency_account` when there is none. */
export function configuredAccount(ctx: BreakGlassContext, accountId: string): ConfiguredEmergencyAccount {
  return bg.findAccount(ctx.deps.settings.accounts, accountId) as ConfiguredEmergencyAccount;
}

export async function loadActivation(
  ctx: BreakGlassContext,
  activationId: string,
): Promise<StoredActivation> {
  const stored = await ctx.deps.store.breakGlass.getActivation(activationId);
  if (!stored) throw new PortcullisError('not_found', `No activation ${activationId}`);
  return stored;
}
