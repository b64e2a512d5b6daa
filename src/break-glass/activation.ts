/**
 * The break-glass activation lifecycle, as pure functions of (state, input, actor, now). No I/O and
 * no crypto: the caller has already checked the custodian's credentials; storage wraps these in a
 * compare-and-swap on `version`.
 *
 *   initiated → awaiting_quorum → active → ended → reviewed
 *   initiated | awaiting_quorum → expired (window passed before quorum) | cancelled
 *
 * `initiated` is the instant of creation: {@link initiate} records it in the timeline and moves on
 * to `awaiting_quorum` at once, because the quorum is at least 2 and the initiator counts as one.
 */
import { PortcullisError } from '../core/errors.js';
import {
  breakGlassCeilingMinutes,
  type EmergencyAccount,
  type EmergencyScope,
  minQuorum,
  scopeWithin,
} from './emergency-account.js';

export const activationStates = [
  'initiated',
  'awaiting_quorum',
  'active',
  'ended',
  'reviewed',
  'expired',
  'cancelled',
] as const;
export type ActivationState = (typeof activationStates)[number];

// INVARIANT: this table is the only place that says which transition is legal.
const allowedTransitions: Readonly<Record<ActivationState, readonly ActivationState[]>> = {
  initiated: ['awaiting_quorum', 'expired', 'cancelled'],
  awaiting_quorum: ['active', 'expired', 'cancelled'],
  active: ['ended'],
  ended: ['reviewed'],
  reviewed: [],
  expired: [],
  cancelled: [],
};

export const terminalActivationStates: readonly ActivationState[] = activationStates.filter(
  (s) => allowedTransitions[s].length === 0,
);

export function canTransitionActivation(from: ActivationState, to: ActivationState): boolean {
  return allowedTransitions[from].includes(to);
}

export function assertActivationTransition(from: ActivationState, to: ActivationState): void {
  if (!canTransitionActivation(from, to)) {
    throw new PortcullisError(
      'invalid_transition',
      `A break-glass activation that is ${from} cannot become ${to}`,
      {
        state: from,
        target: to,
      },
    );
  }
}

/** Longest drill, in minutes: a drill proves the path works, it is not a working session. */
export const maxDrillMinutes = 15;

/** Why an active activation ended. */
export type EndReason = 'expired' | 'ended_by_user' | 'revoked';

/** One step of the evidence timeline (`portcullis break-glass report` prints these). */
export interface TimelineEntry {
  readonly state: ActivationState;
  readonly actorId: string | null;
  readonly at: number;
  readonly note: string | null;
}

export interface ActivationReview {
  readonly reviewerId: string;
  readonly notes: string;
  readonly at: number;
}

export interface Activation {
  readonly id: string;
  readonly accountId: string;
  readonly state: ActivationState;
  /** Drill mode: the whole real path with a short expiry; reports and metrics tell it apart. */
  readonly drill: boolean;
  readonly initiatorId: string;
  readonly reason: string;
  readonly incident: string;
  readonly scope: EmergencyScope;
  readonly durationMinutes: number;
  /**
   * Snapshot of the account's custodians and quorum at initiation, so that a configuration reload
   * in the middle of an activation cannot change who may confirm it.
   */
  readonly custodians: readonly string[];
  readonly quorum: number;
  /** Distinct custodians who confirmed, in order; never contains the initiator. */
  readonly confirmerIds: readonly string[];
  readonly initiatedAt: number;
  /** End of the confirmation window (epoch ms). */
  readonly windowEndsAt: number;
  readonly activatedAt: number | null;
  /** Hard expiry of the access (epoch ms), set on activation. */
  readonly expiresAt: number | null;
  readonly endedAt: number | null;
  readonly endReason: EndReason | null;
  readonly review: ActivationReview | null;
  /** When the emergency credentials were rotated after use; `null` while still owed. */
  readonly rotatedAt: number | null;
  readonly timeline: readonly TimelineEntry[];
  /** Optimistic-concurrency counter; every change increments it. */
  readonly version: number;
}

export interface InitiateInput {
  readonly id: string;
  readonly reason: string;
  readonly incident: string;
  readonly scope: EmergencyScope;
  readonly durationMinutes: number;
  readonly drill?: boolean;
}

const minute = 60_000;

function move(
  activation: Activation,
  to: ActivationState,
  actorId: string | null,
  now: number,
  patch: Partial<Activation> = {},
  note: string | null = null,
): Activation {
  assertActivationTransition(activation.state, to);
  return {
    ...activation,
    ...patch,
    state: to,
    timeline: [...activation.timeline, { state: to, actorId, at: now, note }],
    version: activation.version + 1,
  };
}

/** Looks an account up by id; an unknown id is a stable, typed refusal. */
export function findAccount(accounts: readonly EmergencyAccount[], accountId: string): EmergencyAccount {
  const account = accounts.find((a) => a.id === accountId);
  if (!account) {
    throw new PortcullisError('unknown_emergency_account', `No emergency account "${accountId}"`, {
      accountId,
    });
  }
  return account;
}

function requireText(value: string, field: string): string {
  const trimmed = value.trim();
  if (trimmed === '') {
    throw new PortcullisError('validation_failed', `A break-glass activation needs a ${field}`, {
      issues: [{ path: field, message: `${field} is required` }],
    });
  }
  return trimmed;
}

/**
 * Starts an activation. The initiator must be a custodian; the scope must lie within the account's;
 * the duration is capped by the account maximum, the absolute ceiling and, for drills,
 * {@link maxDrillMinutes}; a reason and an incident reference are required.
 */
export function initiate(
  account: EmergencyAccount,
  custodianId: string,
  input: InitiateInput,
  now: number,
): Activation {
  if (!account.custodians.includes(custodianId)) {
    throw new PortcullisError('not_a_custodian', `You are not a custodian of "${account.id}"`, {
      accountId: account.id,
    });
  }
  const reason = requireText(input.reason, 'reason');
  const incident = requireText(input.incident, 'incident');
  if (!scopeWithin(input.scope, account.scope)) {
    throw new PortcullisError('scope_exceeded', `The request is outside the scope of "${account.id}"`, {
      allowed: account.scope,
    });
  }
  const drill = input.drill === true;
  const ceiling = Math.min(
    account.maxDurationMinutes,
    breakGlassCeilingMinutes,
    drill ? maxDrillMinutes : Infinity,
  );
  // Written as "not within" so that NaN or a broken account maximum refuses instead of allowing.
  if (
    !Number.isInteger(input.durationMinutes) ||
    !(input.durationMinutes >= 1 && input.durationMinutes <= ceiling)
  ) {
    throw new PortcullisError('invalid_duration', `Duration must be 1 to ${ceiling} whole minutes`, {
      maxDurationSeconds: Number.isFinite(ceiling) ? ceiling * 60 : null,
    });
  }
  // Defence in depth: a quorum below 2 never comes out of the validator, but never trust it here.
  const quorum = Math.max(minQuorum, account.quorum);
  const created: Activation = {
    id: input.id,
    accountId: account.id,
    state: 'initiated',
    drill,
    initiatorId: custodianId,
    reason,
    incident,
    scope: { resourceId: input.scope.resourceId, roles: [...new Set(input.scope.roles)] },
    durationMinutes: input.durationMinutes,
    custodians: [...new Set(account.custodians)],
    quorum,
    confirmerIds: [],
    initiatedAt: now,
    windowEndsAt: now + account.activationWindowMinutes * minute,
    activatedAt: null,
    expiresAt: null,
    endedAt: null,
    endReason: null,
    review: null,
    rotatedAt: null,
    timeline: [{ state: 'initiated', actorId: custodianId, at: now, note: null }],
    version: 1,
  };
  return move(created, 'awaiting_quorum', null, now);
}

/** The distinct people counted towards the quorum: the initiator and each confirmer, once. */
export function quorumCount(activation: Activation): number {
  return new Set([activation.initiatorId, ...activation.confirmerIds]).size;
}

/**
 * One more custodian confirms. They must be another custodian of the account (never the
 * initiator), not have confirmed already, and confirm before the window ends. Reaching the quorum
 * activates the access with its hard expiry.
 */
export function confirm(activation: Activation, custodianId: string, now: number): Activation {
  if (activation.state !== 'awaiting_quorum') {
    throw new PortcullisError(
      'invalid_transition',
      `The activation is ${activation.state}, not awaiting quorum`,
      {
        state: activation.state,
      },
    );
  }
  if (custodianId === activation.initiatorId) {
    throw new PortcullisError('self_confirmation', 'The initiator cannot confirm their own activation');
  }
  if (!activation.custodians.includes(custodianId)) {
    throw new PortcullisError('not_a_custodian', `You are not a custodian of "${activation.accountId}"`, {
      accountId: activation.accountId,
    });
  }
  if (activation.confirmerIds.includes(custodianId)) {
    throw new PortcullisError('already_confirmed', 'You have already confirmed this activation');
  }
  // The window is closed at its end instant: `now === windowEndsAt` is too late.
  if (!(now < activation.windowEndsAt)) {
    throw new PortcullisError('confirmation_window_closed', 'The confirmation window has passed', {
      windowEndedAt: new Date(activation.windowEndsAt).toISOString(),
    });
  }
  const confirmerIds = [...activation.confirmerIds, custodianId];
  const confirmed: Activation = {
    ...activation,
    confirmerIds,
    timeline: [
      ...activation.timeline,
      { state: activation.state, actorId: custodianId, at: now, note: 'confirmed' },
    ],
    version: activation.version + 1,
  };
  if (quorumCount(confirmed) < confirmed.quorum) return confirmed;
  return move(confirmed, 'active', null, now, {
    activatedAt: now,
    expiresAt: now + confirmed.durationMinutes * minute,
  });
}

/** Ends the attempt if the window passed before the quorum; otherwise returns it unchanged. */
export function expireIfWindowPassed(activation: Activation, now: number): Activation {
  if (activation.state !== 'initiated' && activation.state !== 'awaiting_quorum') return activation;
  if (now < activation.windowEndsAt) return activation;
  return move(activation, 'expired', null, now, { endedAt: now }, 'confirmation window passed');
}

/** A custodian of the account withdraws the attempt before it is active. */
export function cancel(activation: Activation, custodianId: string, now: number): Activation {
  if (!activation.custodians.includes(custodianId)) {
    throw new PortcullisError('not_a_custodian', `You are not a custodian of "${activation.accountId}"`);
  }
  return move(activation, 'cancelled', custodianId, now, { endedAt: now });
}

/**
 * Ends active access: at its expiry (`expired`, actor `null`), by the user (`ended_by_user`) or by
 * someone revoking it (`revoked`). The hard expiry wins over a later end time.
 */
export function end(
  activation: Activation,
  actorId: string | null,
  reason: EndReason,
  now: number,
): Activation {
  const endedAt = activation.expiresAt === null ? now : Math.min(now, activation.expiresAt);
  return move(activation, 'ended', actorId, now, { endedAt, endReason: reason }, reason);
}

/** Ends the access if its hard expiry has passed; otherwise returns it unchanged. */
export function endIfExpired(activation: Activation, now: number): Activation {
  if (activation.state !== 'active' || activation.expiresAt === null || now < activation.expiresAt)
    return activation;
  return end(activation, null, 'expired', now);
}

/** Whether the emergency access is usable at `now` (state alone is not enough: expiry may lag). */
export function isActivationLive(activation: Activation, now: number): boolean {
  return activation.state === 'active' && activation.expiresAt !== null && now < activation.expiresAt;
}

/**
 * Records the after-the-fact review. Nobody who took part may review: neither the initiator (the
 * user of the access) nor a confirmer (who approved it). Why also the confirmers: the review checks
 * the decision to open the glass as much as what was done with it, and a confirmer reviewing it
 * would review their own approval. Review is not urgent, so asking a third person costs nothing
 * in the emergency; the reviewer need not be a custodian (e.g. a security officer).
 */
export function recordReview(
  activation: Activation,
  reviewerId: string,
  notes: string,
  now: number,
): Activation {
  if (activation.state !== 'ended') {
    throw new PortcullisError('invalid_transition', `The activation is ${activation.state}, not ended`, {
      state: activation.state,
    });
  }
  if (reviewerId === activation.initiatorId || activation.confirmerIds.includes(reviewerId)) {
    throw new PortcullisError('self_review', 'Nobody who initiated or confirmed an activation may review it');
  }
  const text = requireText(notes, 'notes');
  return move(activation, 'reviewed', reviewerId, now, { review: { reviewerId, notes: text, at: now } });
}

/** Whether the activation waits for a review (ended, not yet reviewed). */
export function awaitingReview(activation: Activation): boolean {
  return activation.state === 'ended';
}

/**
 * Whether the emergency credentials must be rotated: once access was granted they have been
 * exercised (shares opened, downstream passwords revealed) — drills included, because a drill
 * walks the same real path — until {@link recordRotation} says it was done.
 */
export function requiresRotation(activation: Activation): boolean {
  // A drill exposes nothing a real use would not: its TOTP codes are spent, its downstream login is
  // dropped at its end. Owing a rotation after each drill would make drills rare, which is worse.
  return !activation.drill && activation.activatedAt !== null && activation.rotatedAt === null;
}

/** Records that the credentials were rotated after use. */
export function recordRotation(activation: Activation, actorId: string, now: number): Activation {
  if (activation.activatedAt === null) {
    throw new PortcullisError(
      'invalid_transition',
      'Nothing to rotate: this activation never became active',
      {
        state: activation.state,
      },
    );
  }
  return {
    ...activation,
    rotatedAt: now,
    timeline: [
      ...activation.timeline,
      { state: activation.state, actorId, at: now, note: 'credentials rotated' },
    ],
    version: activation.version + 1,
  };
}
