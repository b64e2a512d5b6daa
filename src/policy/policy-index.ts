/**
 * Splits the validated policy set by action and by the resource a policy's scope pins it to, and
 * preparses each slice once in cedar-wasm. A decision then evaluates only the policies that could
 * possibly match it: cedar-wasm charges for every policy in the set it is given, so a hundred
 * policies spread over many resources cost what a dozen do.
 *
 * INVARIANT: a slice leaves out only policies that cannot be satisfied by the requests routed to it.
 * A policy whose scope admits other actions only, or that is pinned to another resource
 * (`resource in Portcullis::Resource::"x"`, `resource == Portcullis::Role::"x/r"`), can never match,
 * because every Role entity Portcullis builds is `resource-id/role-name` with its Resource as parent.
 * Dropping it therefore changes no decision, not even an evaluation error (scope is checked before
 * conditions). The engine tests compare every sliced decision with the whole set.
 */

import { randomUUID } from 'node:crypto';
import { preparsePolicySet } from '@cedar-policy/cedar-wasm/nodejs';
import { type PolicyAction, policyActions } from '../core/policy-decision.js';
import type { LoadedPolicy } from './policy-loader.js';

export class PolicySetIndex {
  /** Per action: the preparsed set for resources no policy is pinned to, and one per pinned resource. */
  private readonly slices = new Map<PolicyAction, { anyResource?: string; pinned: Map<string, string> }>();
  /** How many slices were preparsed (for start-up logs and the bench). */
  readonly sliceCount: number;
  /** Largest number of policies any one decision evaluates. */
  readonly largestSlice: number;

  constructor(policies: readonly LoadedPolicy[]) {
    // cedar-wasm keeps preparsed sets in one process-wide cache: a fresh prefix keeps engines apart.
    const prefix = `portcullis-${randomUUID()}`;
    let count = 0;
    let largest = 0;
    for (const action of policyActions) {
      const forAction = policies.filter((p) => p.actions.has(action));
      const anyResource = forAction.filter((p) => p.resourceId === null);
      const pinnedTo = new Set(forAction.flatMap((p) => (p.resourceId === null ? [] : [p.resourceId])));
      let sliceNumber = 0;
      const slice = (members: readonly LoadedPolicy[]): string | undefined => {
        if (members.length === 0) return undefined;
        sliceNumber += 1;
        const id = `${prefix}/${action}/${sliceNumber}`;
        const answer = preparsePolicySet(id, {
          staticPolicies: Object.fromEntries(members.map((p) => [p.id, p.text])),
        });
        if (answer.type === 'failure') {
          // The same texts passed validation moments ago: this is a fault, not a configuration error.
          throw new Error(
            `cedar-wasm refused a validated policy set: ${answer.errors.map((e) => e.message).join('; ')}`,
          );
        }
        count += 1;
        largest = Math.max(largest, members.length);
        return id;
      };
      const pinned = new Map<string, string>();
      for (const resourceId of pinnedTo) {
        const id = slice([...anyResource, ...forAction.filter((p) => p.resourceId === resourceId)]);
        if (id !== undefined) pinned.set(resourceId, id);
      }
      const anySlice = slice(anyResource);
      this.slices.set(action, anySlice === undefined ? { pinned } : { anyResource: anySlice, pinned });
    }
    this.sliceCount = count;
    this.largestSlice = largest;
  }

  /**
   * The preparsed set to evaluate `action` on `resourceId` (null for `view_audit`), or undefined
   * when no policy at all could match — then nothing permits it.
   */
  sliceFor(action: PolicyAction, resourceId: string | null): string | undefined {
    const forAction = this.slices.get(action);
    if (!forAction) return undefined;
    return (resourceId === null ? undefined : forAction.pinned.get(resourceId)) ?? forAction.anyResource;
  }
}
