import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  type EntityJson,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
} from '@cedar-policy/cedar-wasm/nodejs';
import { generateBenchPolicySet } from '../../bench/policy-bench.js';
import { type PolicyAction, policyActions } from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition } from '../core/resource.js';
import {
  actionUid,
  auditLogUid,
  groupUid,
  resourceUid,
  roleEntity,
  roleUid,
  userEntity,
  userUid,
} from './cedar-entities.js';
import { toCedarContext, weekdays } from './policy-context.js';
import { PolicySetIndex } from './policy-index.js';
import { type LoadedPolicy, loadPolicySet } from './policy-loader.js';
import { portcullisSchemaText } from './policy-schema.js';
import { demoPrincipals, demoResources, testContext } from './policy-test-fixtures.js';

preparseSchema('policy-index-test-schema', portcullisSchemaText);

interface Sample {
  readonly principal: Principal;
  readonly action: PolicyAction;
  readonly resource: ResourceDefinition;
  readonly roleName: string;
  readonly context: ReturnType<typeof toCedarContext>;
}

/**
 * Decides `sample` twice: on the slice the index picks, with the entities and no schema, as the engine
 * does; and on the whole set, with Group entities too and the schema validating request, entities
 * and context. Both must agree (and what the engine builds must conform to the schema).
 */
function compare(policies: readonly LoadedPolicy[], samples: readonly Sample[], name: string): number {
  const index = new PolicySetIndex(policies);
  const wholeSet = `policy-index-test-${name}`;
  preparsePolicySet(wholeSet, { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) });
  let allowed = 0;
  for (const s of samples) {
    const onRole = s.action !== 'view_audit';
    const role = s.resource.roles.get(s.roleName) ?? assert.fail('fixture');
    // What the engine passes: the User, and the Role (no Group or Resource entities).
    const entities: EntityJson[] = [
      userEntity(s.principal),
      ...(onRole ? [roleEntity(s.resource, role)] : []),
    ];
    // The reference gets those too, to show that leaving them out changes nothing.
    const withGroups: EntityJson[] = [
      ...entities,
      ...s.principal.groups.map((g) => ({ uid: groupUid(g), attrs: {}, parents: [] })),
      ...(onRole ? [{ uid: resourceUid(s.resource.id), attrs: {}, parents: [] }] : []),
    ];
    const call = {
      principal: userUid(s.principal.id),
      action: actionUid(s.action),
      resource: onRole ? roleUid(s.resource.id, s.roleName) : auditLogUid,
      context: s.context,
      entities,
    };
    const whole = statefulIsAuthorized({
      ...call,
      entities: withGroups,
      preparsedPolicySetId: wholeSet,
      preparsedSchemaName: 'policy-index-test-schema',
      validateRequest: true,
    });
    assert.equal(whole.type, 'success', JSON.stringify(whole));
    if (whole.type !== 'success') return allowed;
    const slice = index.sliceFor(s.action, onRole ? s.resource.id : null);
    const label = `${s.principal.id} ${s.action} ${s.resource.id}/${s.roleName}`;
    if (slice === undefined) {
      assert.equal(whole.response.decision, 'deny', `${label}: no slice, but the whole set allows`);
      assert.deepEqual(whole.response.diagnostics.reason, [], label);
      continue;
    }
    const sliced = statefulIsAuthorized({ ...call, preparsedPolicySetId: slice });
    assert.equal(sliced.type, 'success', JSON.stringify(sliced));
    if (sliced.type !== 'success') return allowed;
    assert.equal(sliced.response.decision, whole.response.decision, label);
    assert.deepEqual(
      [...sliced.response.diagnostics.reason].sort(),
      [...whole.response.diagnostics.reason].sort(),
      label,
    );
    assert.deepEqual(sliced.response.diagnostics.errors, whole.response.diagnostics.errors, label);
    if (whole.response.decision === 'allow') allowed += 1;
  }
  return allowed;
}

describe('PolicySetIndex', () => {
  it('demo policies: every principal × action × role decides the same on its slice as on the whole set', () => {
    const text = readFileSync(new URL('../../examples/demo/policies/access.cedar', import.meta.url), 'utf8');
    const { policies } = loadPolicySet([{ name: 'access.cedar', text }]);
    const samples: Sample[] = [];
    for (const principal of Object.values(demoPrincipals)) {
      for (const resource of demoResources.values()) {
        for (const roleName of resource.roles.keys()) {
          for (const action of policyActions) {
            for (const reason of ['', 'because']) {
              const context = toCedarContext(
                testContext({
                  reason,
                  ticket: 'OPS-1',
                  sensitivity: resource.sensitivity,
                  requesterId: 'demo:x',
                }),
              );
              samples.push({ principal, action, resource, roleName, context });
            }
          }
        }
      }
    }
    const allowed = compare(policies, samples, 'demo');
    assert.ok(allowed > 10, `only ${allowed} allowed: the comparison should cover allows too`);
  });

  it('bench policies (a hundred, pinned and general): random decisions agree with the whole set', () => {
    const set = generateBenchPolicySet();
    const { policies } = loadPolicySet([{ name: 'bench.cedar', text: set.text }]);
    const resources = [...set.resources.values()];
    let seed = 1;
    const next = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T;
    const samples: Sample[] = [];
    for (let i = 0; i < 1500; i++) {
      const resource = pick(resources);
      const principal = pick(set.principals);
      samples.push({
        principal,
        action: pick(policyActions),
        resource,
        roleName: pick([...resource.roles.keys()]),
        context: toCedarContext(
          testContext({
            durationMinutes: pick([15, 30, 60, 240]),
            hour: Math.floor(next() * 24),
            weekday: pick(weekdays),
            reason: pick(['', 'incident']),
            ticket: pick(['', 'OPS-7', 'JIRA-1']),
            sensitivity: resource.sensitivity,
            source: pick(['cli', 'api', 'web', 'cron']),
            requesterId: pick(['', principal.id, 'google:someone']),
          }),
        ),
      });
    }
    const allowed = compare(policies, samples, 'bench');
    assert.ok(allowed > 50, `only ${allowed} allowed: the comparison should cover allows too`);
  });
});
