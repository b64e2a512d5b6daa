import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isPortcullisError } from '../core/errors.js';
import { CedarPolicyEngine } from './cedar-policy-engine.js';
import { formatPolicyCaseResults, runPolicyCases } from './policy-cases.js';
import { demoResources } from './policy-test-fixtures.js';

const demoDir = new URL('../../examples/demo/policies/', import.meta.url);
const demoEngine = CedarPolicyEngine.fromFiles([new URL('access.cedar', demoDir).pathname], {
  timeZone: 'Europe/Berlin',
});

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    runPolicyCases(demoEngine, text, demoResources, 'cases.yaml');
  } catch (error) {
    assert.ok(isPortcullisError(error), String(error));
    assert.equal(error.code, 'validation_failed');
    return error.details.issues as { path: string; message: string }[];
  }
  return assert.fail('expected the cases file to be refused');
}

const alice = 'principal: { id: "demo:alice", groups: [engineering] }';

describe('runPolicyCases', () => {
  it('the demo cases file passes against the demo policies', () => {
    const text = readFileSync(new URL('cases.yaml', demoDir), 'utf8');
    const results = runPolicyCases(demoEngine, text, demoResources, 'cases.yaml');
    const failures = results.filter((r) => !r.passed);
    assert.deepEqual(failures, [], formatPolicyCaseResults(failures));
    assert.ok(results.some((r) => r.actual === 'allow') && results.some((r) => r.actual === 'deny'));
  });

  it('a deliberately wrong case is reported as a mismatch, with the reason', () => {
    const results = runPolicyCases(
      demoEngine,
      `cases:
        - name: engineers may write to demo-db without a ticket (wrong)
          ${alice}
          action: request
          resource: demo-db
          role: readwrite
          context: { duration: 30m, reason: "migration", at: "2026-11-24T10:00:00" }
          expect: allow
        - name: the readonly route (with a wrong approval count)
          ${alice}
          action: request
          resource: demo-db
          role: readonly
          context: { duration: 30m, reason: "debug", at: "2026-11-24T10:00:00" }
          expect: allow
          expect_route: { approvals: 2, approver_groups: [dba, sre], max_duration: 2h }
          expect_policies: [something-else]`,
      demoResources,
    );
    assert.deepEqual(
      results.map((r) => [r.passed, r.expected, r.actual]),
      [
        [false, 'allow', 'deny'],
        [false, 'allow', 'allow'],
      ],
    );
    assert.match(
      results[0]?.message ?? '',
      /^expected allow, got deny: no policy permits demo:alice to request demo-db\/readwrite$/,
    );
    assert.equal(
      results[1]?.message,
      'expected policies [something-else], got [engineers-demo-db-readonly]; expected 2 approval(s), route has 1',
    );
    const report = formatPolicyCaseResults(results);
    assert.match(
      report,
      /^FAIL {2}engineers may write to demo-db without a ticket \(wrong\)\n {6}expected allow/,
    );
    assert.match(report, /2 cases: 0 passed, 2 failed$/);
  });

  it("an instant with an offset is read in the engine's zone: 19:30Z is 20:30 in Berlin, after hours", () => {
    const readwrite = (at: string) => `
        - name: readwrite at ${at}
          ${alice}
          action: request
          resource: demo-db
          role: readwrite
          context: { duration: 30m, reason: "migration", ticket: "OPS-1", at: "${at}" }
          expect: allow`;
    const results = runPolicyCases(
      demoEngine,
      `cases:${readwrite('2026-11-24T18:30:00Z')}${readwrite('2026-11-24T19:30:00Z')}${readwrite('2026-11-24T19:30:00')}`,
      demoResources,
    );
    assert.deepEqual(
      results.map((r) => r.actual),
      ['allow', 'deny', 'allow'],
    );
  });

  it("defaults.context is merged under each case, and a case's own time replaces the default time", () => {
    const results = runPolicyCases(
      demoEngine,
      [
        'defaults:',
        '  context: { at: "2026-11-28T10:00:00", reason: "default reason", ticket: "OPS-9" }',
        'cases:',
        '  - name: saturday from the defaults',
        `    ${alice}`,
        '    action: request',
        '    resource: demo-db',
        '    role: readwrite',
        '    context: { duration: 30m }',
        '    expect: deny',
        '  - name: a weekday given by hour and weekday',
        `    ${alice}`,
        '    action: request',
        '    resource: demo-db',
        '    role: readwrite',
        '    context: { duration: 30m, hour: 9, weekday: mon }',
        '    expect: allow',
      ].join('\n'),
      demoResources,
    );
    assert.deepEqual(
      results.map((r) => r.passed),
      [true, true],
      formatPolicyCaseResults(results),
    );
  });

  const invalid = [
    {
      desc: 'YAML syntax errors are reported',
      text: 'cases: [ { name: x',
      path: '',
      message: /./,
    },
    { desc: 'an empty file needs cases', text: '', path: 'cases', message: /./ },
    {
      desc: 'an unknown action is reported with its path',
      text: `cases:\n  - { name: a, ${alice}, action: delete, resource: demo-db, role: readonly, context: { hour: 1, weekday: mon }, expect: allow }`,
      path: 'cases[0].action',
      message: /./,
    },
    {
      desc: 'an unknown field is reported',
      text: `cases:\n  - { name: a, ${alice}, action: view_audit, context: { hour: 1, weekday: mon }, expect: allow, expected_policies: [] }`,
      path: 'cases[0]',
      message: /expected_policies/,
    },
    {
      desc: 'an unknown resource is reported with the known ones',
      text: `cases:\n  - { name: a, ${alice}, action: request, resource: prod-db, role: readonly, context: { hour: 1, weekday: mon }, expect: allow }`,
      path: 'cases[0].resource',
      message: /unknown resource "prod-db" \(known: demo-db, demo-api, demo-hosts\)/,
    },
    {
      desc: "an unknown role is reported with the resource's roles",
      text: `cases:\n  - { name: a, ${alice}, action: request, resource: demo-db, role: owner, context: { hour: 1, weekday: mon }, expect: allow }`,
      path: 'cases[0].role',
      message: /has no role "owner" \(roles: readonly, readwrite\)/,
    },
    {
      desc: 'a role action without a role is reported',
      text: `cases:\n  - { name: a, ${alice}, action: approve, resource: demo-db, context: { hour: 1, weekday: mon }, expect: allow }`,
      path: 'cases[0].role',
      message: /is required for action approve/,
    },
    {
      desc: 'a case without a time is reported',
      text: `cases:\n  - { name: a, ${alice}, action: view_audit, expect: allow }`,
      path: 'cases[0].context',
      message: /needs the time/,
    },
    {
      desc: 'an impossible date is reported',
      text: `cases:\n  - { name: a, ${alice}, action: view_audit, context: { at: "2026-02-30T10:00:00" }, expect: allow }`,
      path: 'cases[0].context.at',
      message: /is not a valid date and time/,
    },
    {
      desc: 'an invalid duration is reported',
      text: `cases:\n  - { name: a, ${alice}, action: view_audit, context: { at: "2026-02-03T10:00", duration: soon }, expect: allow }`,
      path: 'cases[0].context.duration',
      message: /must be a duration/,
    },
    {
      desc: 'a principal id without an IdP is reported',
      text: `cases:\n  - { name: a, principal: { id: alice }, action: view_audit, context: { hour: 1, weekday: mon }, expect: allow }`,
      path: 'cases[0].principal.id',
      message: /must be "idp:subject"/,
    },
    {
      desc: 'duplicate case names are reported',
      text: `cases:\n  - { name: a, ${alice}, action: view_audit, context: { hour: 1, weekday: mon }, expect: deny }\n  - { name: a, ${alice}, action: view_audit, context: { hour: 1, weekday: mon }, expect: deny }`,
      path: 'cases[1].name',
      message: /duplicate case name "a"/,
    },
  ];
  for (const c of invalid) {
    it(`file problems: ${c.desc}`, () => {
      const issues = issuesOf(c.text);
      const found = issues.find((i) => i.path === c.path && c.message.test(i.message));
      assert.ok(found, JSON.stringify(issues));
    });
  }

  it('every problem in the file is reported together, each with its path', () => {
    const issues = issuesOf(`cases:
      - { name: a, ${alice}, action: request, resource: nope, role: readonly, context: { hour: 1, weekday: mon }, expect: allow }
      - { name: b, ${alice}, action: request, resource: demo-db, role: nope, expect: allow }`);
    assert.deepEqual(
      issues.map((i) => i.path),
      ['cases[0].resource', 'cases[1].role', 'cases[1].context'],
    );
  });
});
