/**
 * The policy engine used when the policy files failed to load and the server started in
 * break-glass-only mode: every decision is a deny that names the problem. Break-glass does not
 * consult policies, so it keeps working; nothing else is allowed.
 */
import type { PolicyEngine } from '../app/ports.js';
import type { PolicyDecision, RequestDecision } from '../core/policy-decision.js';

export class DenyAllPolicyEngine implements PolicyEngine {
  readonly #reason: string;

  constructor(problem: string) {
    this.#reason = `policies failed to load (break-glass-only mode): ${problem}`;
  }

  decideRequest(): RequestDecision {
    return { allowed: false, policyIds: [], reason: this.#reason };
  }

  decide(): PolicyDecision {
    return { allowed: false, policyIds: [], reason: this.#reason };
  }
}
