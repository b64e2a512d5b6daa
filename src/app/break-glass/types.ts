/** What callers hand to and get back from the break-glass service. */
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';

/** What a custodian presents: their id and both factors. */
export interface CustodianProof {
  readonly custodianId: string;
  readonly passphrase: string;
  /** The TOTP code; or, instead, a security-key assertion. */
  readonly totp?: string;
  /** `navigator.credentials.get()`'s answer to {@link BreakGlassService.securityKeyOptions}. */
  readonly securityKey?: AuthenticationResponseJSON;
}

export interface InitiateRequest {
  readonly accountId: string;
  readonly proof: CustodianProof;
  /** Printed shares, for a sealed account. */
  readonly shares?: readonly string[];
  readonly reason: string;
  readonly incident: string;
  /** Roles wanted (default: every role of the account's scope); the resource is the account's. */
  readonly resourceId?: string;
  readonly roles?: readonly string[];
  readonly durationMinutes: number;
  readonly drill?: boolean;
}

/** One grant of an activation, with what the initiator needs to use it. */
export interface EmergencyGrantAccess {
  readonly grantId: string;
  readonly role: string;
  readonly expiresAt: number;
  readonly credentials?: Readonly<Record<string, string>>;
  readonly token?: string;
  /** Drills only: what the resource's roles outside the scope would grant, for the client to probe. */
  readonly outOfScope?: readonly string[];
}

/** One check of a drill and its outcome. */
export interface DrillCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}
