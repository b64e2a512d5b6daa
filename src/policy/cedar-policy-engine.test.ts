import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPortcullisError } from '../core/errors.js';
import type { ApprovalRoute, PolicyAction, PolicyContext } from '../core/policy-decision.js';
import type { Principal } from '../core/principal.js';
import { CedarPolicyEngine } from './cedar-policy-engine.js';
import type { PolicySource } from './policy-loader.js';
import {
  demoPrincipals,
  demoResources,
  testContext,
  testPrincipal,
  testResource,
} from './policy-test-fixtures.js';

const request = 'action == Portcullis::Action::"request"';
const engineers = 'principal in Portcullis::Group::"engineering"';

function engineFrom(text: string, timeZone = 'UTC'): CedarPolicyEngine {
  return CedarPolicyEngine.fromSources([{ name: 'test.cedar', text }], { timeZone });
}

const resources = new Map([
  ...demoResources,
  ['vault', testResource('vault', { sensitivity: 'critical', owners: ['security'], roles: ['read'] })],
  ['wiki', testResource('wiki', { kind: 'token', sensitivity: 'low', roles: ['edit'] })],
]);

interface Scenario {
  readonly desc: string;
  readonly policies: string;
  readonly principal?: Principal;
  readonly action?: PolicyAction;
  readonly resource?: string;
  readonly role?: string;
  readonly context?: Partial<PolicyContext>;
  readonly allowed: boolean;
  readonly policyIds?: readonly string[];
  readonly reason?: RegExp;
  readonly route?: Partial<ApprovalRoute>;
}

const scenarios: Scenario[] = [
  {
    desc: 'a matching permit allows, naming the permit',
    policies: `@id("engineers-wiki") permit(${engineers}, ${request}, resource == Portcullis::Role::"wiki/edit");`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    policyIds: ['engineers-wiki'],
  },
  {
    desc: 'a permit without route annotations gets the defaults: 1 approval, any approver, 1h, no auto-approve',
    policies: `@id("engineers-wiki") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    route: {
      requiredApprovals: 1,
      approverGroups: [],
      maxDurationSeconds: 3600,
      autoApprove: false,
      policyId: 'engineers-wiki',
    },
  },
  {
    desc: 'auto-approve without @approvals means no approvals',
    policies: `@id("wiki-auto") @auto_approve("true") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    route: { requiredApprovals: 0, autoApprove: true, approverGroups: [] },
  },
  {
    desc: 'forbid wins over a matching permit',
    policies: `@id("engineers-all") permit(${engineers}, ${request}, resource);
      @id("no-critical-over-30m") @description("critical at most 30 minutes")
      forbid(principal, ${request}, resource) when { resource.sensitivity == "critical" && context.duration_minutes > 30 };`,
    resource: 'vault',
    role: 'read',
    context: { durationMinutes: 45 },
    allowed: false,
    policyIds: ['no-critical-over-30m'],
    reason: /^forbidden by policy no-critical-over-30m \(critical at most 30 minutes\)$/,
  },
  {
    desc: 'the same forbid lets a short enough request through',
    policies: `@id("engineers-all") permit(${engineers}, ${request}, resource);
      @id("no-critical-over-30m")
      forbid(principal, ${request}, resource) when { resource.sensitivity == "critical" && context.duration_minutes > 30 };`,
    resource: 'vault',
    role: 'read',
    context: { durationMinutes: 30 },
    allowed: true,
    policyIds: ['engineers-all'],
  },
  {
    desc: 'no permit means deny, with a reason naming who asked for what',
    policies: `@id("sre-wiki") permit(principal in Portcullis::Group::"sre", ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: false,
    policyIds: [],
    reason: /^no policy permits demo:alice to request wiki\/edit$/,
  },
  {
    desc: 'an empty policy set denies everything',
    policies: '',
    resource: 'wiki',
    role: 'edit',
    allowed: false,
    reason: /no policy permits/,
  },
  {
    desc: 'a policy pinned to another resource does not apply',
    policies: `@id("db-only") permit(${engineers}, ${request}, resource in Portcullis::Resource::"demo-db");`,
    resource: 'wiki',
    role: 'edit',
    allowed: false,
    reason: /no policy permits/,
  },
  {
    desc: 'a policy pinned to the resource applies to its roles',
    policies: `@id("db-only") permit(${engineers}, ${request}, resource in Portcullis::Resource::"demo-db");`,
    resource: 'demo-db',
    role: 'readwrite',
    allowed: true,
    policyIds: ['db-only'],
  },
  {
    desc: 'route: the permit requiring more approvals wins',
    policies: `@id("lenient") @approvals("1") @max_duration("1h") permit(${engineers}, ${request}, resource);
      @id("strict") @approvals("2") @max_duration("4h") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    policyIds: ['lenient', 'strict'],
    route: { policyId: 'strict', requiredApprovals: 2, maxDurationSeconds: 4 * 3600 },
  },
  {
    desc: 'route: with equal approvals the shorter maximum duration wins',
    policies: `@id("long") @max_duration("2h") permit(${engineers}, ${request}, resource);
      @id("short") @max_duration("45m") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    route: { policyId: 'short', maxDurationSeconds: 45 * 60 },
  },
  {
    desc: 'route: a full tie is broken by the lowest policy id',
    policies: `@id("b-route") @approver_groups("sre") permit(${engineers}, ${request}, resource);
      @id("a-route") @approver_groups("dba") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
    route: { policyId: 'a-route', approverGroups: ['dba'] },
  },
  {
    desc: 'route: a permit whose maximum is shorter than the request is set aside',
    policies: `@id("reviewed") @approvals("2") @max_duration("1h") permit(${engineers}, ${request}, resource);
      @id("auto") @auto_approve("true") @max_duration("8h") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    context: { durationMinutes: 4 * 60 },
    allowed: true,
    policyIds: ['auto'],
    route: { policyId: 'auto', autoApprove: true },
  },
  {
    desc: 'route: when both fit, the reviewed route is stricter than auto-approval',
    policies: `@id("reviewed") @approvals("2") @max_duration("1h") permit(${engineers}, ${request}, resource);
      @id("auto") @auto_approve("true") @max_duration("8h") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    context: { durationMinutes: 30 },
    allowed: true,
    route: { policyId: 'reviewed', requiredApprovals: 2 },
  },
  {
    desc: 'a request longer than every permit allows is denied with the longest maximum',
    policies: `@id("one-hour") @max_duration("1h") permit(${engineers}, ${request}, resource);
      @id("two-hours") @max_duration("2h") permit(${engineers}, ${request}, resource);`,
    resource: 'wiki',
    role: 'edit',
    context: { durationMinutes: 3 * 60 },
    allowed: false,
    policyIds: ['one-hour', 'two-hours'],
    reason: /^requested 3h is longer than the 2h allowed by policy two-hours$/,
  },
  {
    desc: 'a Cedar evaluation error denies with the error text, even when another permit matches',
    policies: `@id("plain") permit(${engineers}, ${request}, resource);
      @id("overflowing") permit(${engineers}, ${request}, resource) when { context.duration_minutes * 9223372036854775807 > 0 };`,
    resource: 'wiki',
    role: 'edit',
    allowed: false,
    policyIds: ['overflowing'],
    reason: /^policy overflowing could not be evaluated: .*overflow/,
  },
  {
    desc: 'ticket pattern: OPS-123 matches like "OPS-*"',
    policies: `@id("ops") permit(${engineers}, ${request}, resource) when { context.ticket like "OPS-*" };`,
    resource: 'wiki',
    role: 'edit',
    context: { ticket: 'OPS-123' },
    allowed: true,
  },
  {
    desc: 'ticket pattern: JIRA-9 does not match like "OPS-*"',
    policies: `@id("ops") permit(${engineers}, ${request}, resource) when { context.ticket like "OPS-*" };`,
    resource: 'wiki',
    role: 'edit',
    context: { ticket: 'JIRA-9' },
    allowed: false,
  },
  {
    desc: 'ticket pattern: no ticket means has_ticket is false',
    policies: `@id("ops") permit(${engineers}, ${request}, resource) when { context.has_ticket };`,
    resource: 'wiki',
    role: 'edit',
    context: { ticket: '' },
    allowed: false,
  },
  {
    desc: 'approve: members of a permitted group may approve',
    policies: `@id("sre-approve") permit(principal in Portcullis::Group::"sre", action == Portcullis::Action::"approve", resource);`,
    principal: demoPrincipals.bob,
    action: 'approve',
    resource: 'demo-db',
    role: 'readonly',
    allowed: true,
    policyIds: ['sre-approve'],
  },
  {
    desc: 'approve: a permit for request does not let anyone approve',
    policies: `@id("engineers-all") permit(${engineers}, ${request}, resource);`,
    action: 'approve',
    resource: 'demo-db',
    role: 'readonly',
    allowed: false,
    reason: /^no policy permits demo:alice to approve demo-db\/readonly$/,
  },
  {
    desc: 'approve without a resource and role is denied, whatever the policies say',
    policies: `@id("anyone-anything") permit(principal, action, resource);`,
    action: 'approve',
    allowed: false,
    reason: /^approve needs a resource and a role$/,
  },
  {
    desc: 'revoke: owners may revoke through resource.owners',
    policies: `@id("owners-revoke") permit(principal, action == Portcullis::Action::"revoke", resource) when { principal in resource.owners };`,
    principal: demoPrincipals.carol,
    action: 'revoke',
    resource: 'demo-db',
    role: 'readwrite',
    allowed: true,
  },
  {
    desc: 'revoke: a non-owner may not',
    policies: `@id("owners-revoke") permit(principal, action == Portcullis::Action::"revoke", resource) when { principal in resource.owners };`,
    principal: demoPrincipals.bob,
    action: 'revoke',
    resource: 'demo-db',
    role: 'readwrite',
    allowed: false,
  },
  {
    desc: 'view_audit: admins may read the audit log',
    policies: `@id("admins-audit") permit(principal in Portcullis::Group::"admins", action == Portcullis::Action::"view_audit", resource);`,
    principal: demoPrincipals.dave,
    action: 'view_audit',
    allowed: true,
    policyIds: ['admins-audit'],
  },
  {
    desc: 'view_audit: others may not',
    policies: `@id("admins-audit") permit(principal in Portcullis::Group::"admins", action == Portcullis::Action::"view_audit", resource);`,
    action: 'view_audit',
    allowed: false,
    reason: /^no policy permits demo:alice to view_audit the audit log$/,
  },
  {
    desc: 'principal attributes: e-mail domain and IdP are visible to policies',
    policies: `@id("corp") permit(principal, ${request}, resource) when { principal.idp == "demo" && principal has email && principal.email like "*@example.com" };`,
    resource: 'wiki',
    role: 'edit',
    allowed: true,
  },
  {
    desc: 'resource attributes: kind and labels are visible on the role',
    policies: `@id("labelled") permit(${engineers}, ${request}, resource) when { resource.kind == "postgres" && resource.labels.contains("env=demo") && resource.name == "readonly" };`,
    resource: 'demo-db',
    role: 'readonly',
    allowed: true,
  },
];

describe('CedarPolicyEngine decisions', () => {
  for (const s of scenarios) {
    it(s.desc, () => {
      const engine = engineFrom(s.policies);
      const principal = s.principal ?? demoPrincipals.alice;
      const action = s.action ?? 'request';
      const resource = s.resource === undefined ? null : (resources.get(s.resource) ?? null);
      const role = resource && s.role !== undefined ? (resource.roles.get(s.role) ?? null) : null;
      const context = testContext({ sensitivity: resource?.sensitivity ?? '', ...s.context });
      const decision =
        action === 'request'
          ? engine.decideRequest(
              principal,
              resource ?? assert.fail('request needs a resource'),
              role ?? assert.fail('request needs a role'),
              context,
            )
          : engine.decide(principal, action, resource, role, context);
      assert.equal(decision.allowed, s.allowed, JSON.stringify(decision));
      if (s.policyIds) assert.deepEqual(decision.policyIds, s.policyIds);
      if (s.reason) {
        assert.equal(decision.allowed, false);
        if (!decision.allowed) assert.match(decision.reason, s.reason);
      }
      if (s.route) {
        const route = decision.allowed && 'route' in decision ? (decision.route as ApprovalRoute) : undefined;
        assert.ok(route, 'expected a route');
        for (const [key, value] of Object.entries(s.route)) {
          assert.deepEqual(route[key as keyof ApprovalRoute], value, `route.${key}`);
        }
      }
    });
  }
});

describe('CedarPolicyEngine time zones', () => {
  const window = `@id("office-hours") permit(${engineers}, ${request}, resource)
    when { ["mon", "tue", "wed", "thu", "fri"].contains(context.weekday) && context.hour >= 9 && context.hour < 17 };`;
  const instant = Date.parse('2026-11-24T17:30:00Z');

  function decideAt(timeZone: string): boolean {
    const engine = engineFrom(window, timeZone);
    const { hour, weekday } = engine.localTime(instant);
    const resource = resources.get('wiki') ?? assert.fail('fixture');
    const role = resource.roles.get('edit') ?? assert.fail('fixture');
    return engine.decideRequest(demoPrincipals.alice, resource, role, testContext({ hour, weekday })).allowed;
  }

  it('the same instant is 18:30 in Berlin (outside office hours) and 12:30 in New York (inside)', () => {
    assert.equal(decideAt('Europe/Berlin'), false);
    assert.equal(decideAt('America/New_York'), true);
  });
});

describe('CedarPolicyEngine start-up', () => {
  interface StartupScenario {
    readonly desc: string;
    readonly sources: readonly PolicySource[];
    readonly timeZone?: string;
    readonly message: RegExp;
  }
  const one = (text: string): PolicySource[] => [{ name: 'policies/access.cedar', text }];
  const permit = (annotations: string) => `${annotations}\npermit(${engineers}, ${request}, resource);`;

  const failures: StartupScenario[] = [
    {
      desc: "invalid policy text stops start-up with Cedar's message and the position",
      sources: one('@id("broken")\npermit(principal, action, resource) when { context.reason = "" };'),
      message: /policies\/access\.cedar:2:44: '=' is not a valid operator in Cedar/,
    },
    {
      desc: 'an unknown attribute (schema violation) stops start-up',
      sources: one('@id("typo")\npermit(principal, action, resource)\n  when { context.reasn != "" };'),
      message:
        /policies\/access\.cedar:3:10: for policy `typo`, attribute `reasn` in context for Portcullis::Action::"\w+" not found/,
    },
    {
      desc: 'an unknown action stops start-up',
      sources: one(
        '@id("wrong-action")\npermit(principal, action == Portcullis::Action::"break_glass", resource);',
      ),
      message: /for policy `wrong-action`.*break_glass/,
    },
    {
      desc: 'a policy without @id stops start-up',
      sources: one(
        `@id("fine") permit(${engineers}, ${request}, resource);\n\npermit(${engineers}, ${request}, resource);`,
      ),
      message: /policies\/access\.cedar:3:1: policy has no @id/,
    },
    {
      desc: 'a duplicate @id across files stops start-up, naming both places',
      sources: [
        { name: 'a.cedar', text: `@id("same") permit(${engineers}, ${request}, resource);` },
        { name: 'b.cedar', text: `\n@id("same") permit(${engineers}, ${request}, resource);` },
      ],
      message: /b\.cedar:2:1: duplicate @id\("same"\), first used at a\.cedar:1/,
    },
    {
      desc: 'an @id with spaces stops start-up',
      sources: one(permit('@id("two words")')),
      message: /@id\("two words"\) must be/,
    },
    {
      desc: 'approvals must be a number',
      sources: one(permit('@id("p") @approvals("two")')),
      message: /@approvals must be a whole number from 0 to 10, not "two"/,
    },
    {
      desc: 'approvals above 10 are refused',
      sources: one(permit('@id("p") @approvals("11")')),
      message: /@approvals must be a whole number/,
    },
    {
      desc: 'max_duration must be a duration',
      sources: one(permit('@id("p") @max_duration("forever")')),
      message: /@max_duration must be a duration such as 45m, 2h or 1d, not "forever"/,
    },
    {
      desc: 'max_duration must be whole minutes (policies see minutes)',
      sources: one(permit('@id("p") @max_duration("90s")')),
      message: /@max_duration must be whole minutes from 1m to 7d, not "90s"/,
    },
    {
      desc: 'max_duration above seven days is refused',
      sources: one(permit('@id("p") @max_duration("8d")')),
      message: /@max_duration must be whole minutes from 1m to 7d, not "8d"/,
    },
    {
      desc: 'auto_approve must be true or false',
      sources: one(permit('@id("p") @auto_approve("yes")')),
      message: /@auto_approve must be "true" or "false", not "yes"/,
    },
    {
      desc: 'auto_approve together with approvals is refused',
      sources: one(permit('@id("p") @auto_approve("true") @approvals("1")')),
      message: /@auto_approve\("true"\) cannot be combined with @approvals\("1"\)/,
    },
    {
      desc: 'auto_approve together with approver groups is refused',
      sources: one(permit('@id("p") @auto_approve("true") @approver_groups("sre")')),
      message: /cannot be combined with @approver_groups/,
    },
    {
      desc: 'zero approvals without auto_approve is refused',
      sources: one(permit('@id("p") @approvals("0")')),
      message: /@approvals\("0"\) needs @auto_approve\("true"\)/,
    },
    {
      desc: 'approver groups must be group names',
      sources: one(permit('@id("p") @approver_groups("sre, DBA team")')),
      message: /@approver_groups must list group names separated by commas; not valid: "DBA team"/,
    },
    {
      desc: 'an annotation without a value is refused',
      sources: one(permit('@id("p") @max_duration')),
      message: /@max_duration needs a value/,
    },
    {
      desc: 'a misspelt annotation is refused rather than ignored',
      sources: one(permit('@id("p") @aprovals("2")')),
      message: /unknown annotation @aprovals/,
    },
    {
      desc: 'route annotations on a forbid are refused',
      sources: one(`@id("f") @approvals("2") forbid(principal, ${request}, resource);`),
      message: /approval annotations belong on permit policies, not on a forbid/,
    },
    {
      desc: 'route annotations on a permit for approve are refused',
      sources: one(
        '@id("a") @max_duration("1h") permit(principal, action == Portcullis::Action::"approve", resource);',
      ),
      message: /approval annotations only apply to permit policies for action "request"/,
    },
    {
      desc: 'policy templates are refused',
      sources: one('@id("t") permit(principal == ?principal, action, resource);'),
      message: /policy templates are not supported/,
    },
    {
      desc: 'an unknown time zone is refused',
      sources: one(permit('@id("p")')),
      timeZone: 'Mars/Olympus_Mons',
      message: /Unknown time zone "Mars\/Olympus_Mons"/,
    },
  ];

  for (const s of failures) {
    it(s.desc, () => {
      assert.throws(
        () => CedarPolicyEngine.fromSources(s.sources, { timeZone: s.timeZone ?? 'UTC' }),
        (error: unknown) => {
          assert.ok(isPortcullisError(error), String(error));
          assert.equal(error.code, 'config_invalid');
          assert.match(error.message, s.message);
          return true;
        },
      );
    });
  }

  it('every problem in every file is reported at once', () => {
    assert.throws(
      () =>
        CedarPolicyEngine.fromSources(
          [
            { name: 'a.cedar', text: permit('@id("p") @approvals("many")') },
            { name: 'b.cedar', text: '@id("q") permit(principal, action, resource) when { context.nope };' },
          ],
          { timeZone: 'UTC' },
        ),
      (error: unknown) => {
        assert.ok(isPortcullisError(error));
        assert.match(error.message, /\(2 problems\)/);
        assert.match(error.message, /a\.cedar:1:1: @approvals/);
        assert.match(error.message, /b\.cedar:1:\d+: for policy `q`/);
        const issues = error.details.issues as { file: string }[];
        assert.deepEqual(
          issues.map((i) => i.file),
          ['a.cedar', 'b.cedar'],
        );
        return true;
      },
    );
  });

  it('a missing policy file stops start-up with its name', () => {
    assert.throws(
      () => CedarPolicyEngine.fromFiles(['/nonexistent/access.cedar'], { timeZone: 'UTC' }),
      /\/nonexistent\/access\.cedar: cannot read: ENOENT/,
    );
  });

  it('the demo policies load from their file', () => {
    const engine = CedarPolicyEngine.fromFiles(
      [new URL('../../examples/demo/policies/access.cedar', import.meta.url).pathname],
      {
        timeZone: 'Europe/Berlin',
      },
    );
    assert.ok(engine.policyIds.includes('engineers-demo-db-readonly'));
    assert.deepEqual(engine.warnings, []);
    assert.equal(engine.policy('owners-revoke')?.line, 90);
  });

  it('a principal from another IdP with the same name is a different principal', () => {
    const engine = engineFrom(
      '@id("alice-only") permit(principal == Portcullis::User::"demo:alice", action, resource);',
    );
    const resource = resources.get('wiki') ?? assert.fail('fixture');
    const role = resource.roles.get('edit') ?? assert.fail('fixture');
    const impostor = testPrincipal('alice', ['engineering'], 'other-idp');
    assert.equal(engine.decideRequest(demoPrincipals.alice, resource, role, testContext()).allowed, true);
    assert.equal(engine.decideRequest(impostor, resource, role, testContext()).allowed, false);
  });
});

describe('an evaluation that throws is a deny', () => {
  const engine = engineFrom(`@id("engineers-wiki") permit(${engineers}, ${request}, resource);
@id("anyone-approves") permit(principal, action == Portcullis::Action::"approve", resource);`);
  const wiki = resources.get('wiki');
  const edit = wiki?.roles.get('edit');

  it('a lone surrogate in the reason: request and approve are denied, not thrown', () => {
    assert.ok(wiki && edit);
    const context = testContext({ reason: 'fix \uD800 now', ticket: 'OPS-\uDC00' });
    const asked = engine.decideRequest(testPrincipal('alice', ['engineering']), wiki, edit, context);
    assert.equal(asked.allowed, false);
    assert.match(asked.allowed ? '' : asked.reason, /policy evaluation failed/);
    const approval = engine.decide(testPrincipal('bob', ['sre']), 'approve', wiki, edit, context);
    assert.equal(approval.allowed, false);
  });
});
