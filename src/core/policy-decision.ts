/**
 * Policy decisions as values (the Cedar style): the outcome plus the ids of the policies that made
 * it, which travel into the audit event. A failure to evaluate is a deny.
 */

/**
 * How a permitted request proceeds: read from the annotations of the permit policy that allowed it.
 * One place — the policy set — answers "who may get what, for how long, with whose consent".
 */
export interface ApprovalRoute {
  /** Approvals from distinct people needed; 0 with `autoApprove` means granted without review. */
  readonly requiredApprovals: number;
  /** Portcullis groups whose members' approvals count. Empty means any authorised approver. */
  readonly approverGroups: readonly string[];
  readonly maxDurationSeconds: number;
  readonly autoApprove: boolean;
  /** The permit policy the route came from. */
  readonly policyId: string;
}

export type PolicyDecision =
  | {
      readonly allowed: true;
      /** Ids of the policies that allowed the action. */
      readonly policyIds: readonly string[];
    }
  | {
      readonly allowed: false;
      /** Ids of the forbid policies that denied it; empty when no permit matched. */
      readonly policyIds: readonly string[];
      /** Human explanation: which forbid matched, or that nothing permits it, or the evaluation error. */
      readonly reason: string;
    };

/** A decision on a `request` action, with the route to follow when it is allowed. */
export type RequestDecision =
  | (Extract<PolicyDecision, { allowed: true }> & { readonly route: ApprovalRoute })
  | Extract<PolicyDecision, { allowed: false }>;

export const policyActions = ['request', 'approve', 'revoke', 'view_audit'] as const;
export type PolicyAction = (typeof policyActions)[number];

/** Everything a policy may look at when deciding. Time fields are in the configured time zone. */
export interface PolicyContext {
  readonly durationMinutes: number;
  /** 0–23 */
  readonly hour: number;
  /** `mon` … `sun` */
  readonly weekday: string;
  readonly reason: string;
  readonly ticket: string;
  readonly sensitivity: string;
  /** `api`, `cli`, … — where the request came from. */
  readonly source: string;
  /** For approve/revoke: the requester of the request under review. */
  readonly requesterId: string;
}
