import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateMapping, type MappingSettings, mapPushedGroups } from './mapping-rules.js';

const base: MappingSettings = { groups_claim: 'groups', group_mapping: {} };
const claims = {
  sub: 'u1',
  email: 'Alice@Corp.Example',
  groups: ['Eng-Prod', 'sre', 'Domain Users'],
  department: 'Finance',
  realm_access: { roles: ['auditor'] },
  contractor: true,
};

describe('evaluateMapping', () => {
  const cases: [
    string,
    Partial<MappingSettings>,
    { allowed: boolean; reason?: string; groups?: string[] },
  ][] = [
    [
      'no rules: valid identifiers pass through (group_mapping compatibility)',
      {},
      { allowed: true, reason: 'no allow rules', groups: ['sre'] },
    ],
    [
      'group_mapping only keeps listed groups',
      { group_mapping: { 'Eng-Prod': ['engineering', 'oncall'] } },
      { allowed: true, groups: ['engineering', 'oncall'] },
    ],
    [
      'mapping rules alone turn pass-through off',
      { mapping_rules: [{ when: { email_domain: 'corp.example' }, groups: ['staff'] }] },
      { allowed: true, groups: ['staff'] },
    ],
    [
      'group_mapping and rules add up',
      {
        group_mapping: { 'Eng-Prod': ['engineering'] },
        mapping_rules: [{ when: { claim: 'department', equals: 'Finance' }, groups: ['finance'] }],
      },
      { allowed: true, groups: ['engineering', 'finance'] },
    ],
    [
      'a rule whose condition fails adds nothing',
      { mapping_rules: [{ when: { claim: 'department', equals: 'HR' }, groups: ['hr'] }] },
      { allowed: true, groups: [] },
    ],
    [
      'all fields of a condition must hold',
      { mapping_rules: [{ when: { group: 'sre', email_domain: 'other.example' }, groups: ['x'] }] },
      { allowed: true, groups: [] },
    ],
    [
      'nested claims by dotted name',
      { mapping_rules: [{ when: { claim: 'realm_access.roles', equals: 'auditor' }, groups: ['auditors'] }] },
      { allowed: true, groups: ['auditors'] },
    ],
    [
      'allow by e-mail domain is case-insensitive',
      { allow: [{ email_domain: ['elsewhere.example', '@corp.example'] }] },
      { allowed: true, reason: 'allow[0] matched' },
    ],
    [
      'allow that matches nobody refuses',
      { allow: [{ email_domain: 'elsewhere.example' }] },
      { allowed: false, reason: 'no allow rule matched', groups: [] },
    ],
    ['no subdomains for email_domain', { allow: [{ email_domain: 'example' }] }, { allowed: false }],
    [
      'deny on a boolean claim',
      { deny: [{ claim: 'contractor', equals: 'true' }] },
      { allowed: false, reason: 'deny[0] matched' },
    ],
    [
      'deny on mere presence of a claim',
      { deny: [{ claim: 'missing' }, { claim: 'department' }] },
      { allowed: false, reason: 'deny[1] matched' },
    ],
    [
      'deny wins over allow',
      { allow: [{ group: 'sre' }], deny: [{ group: 'Domain Users' }] },
      { allowed: false, reason: 'deny[0] matched' },
    ],
    [
      'a group named like an Object property does not match by accident',
      { mapping_rules: [{ when: { group: 'constructor' }, groups: ['x'] }] },
      { allowed: true, groups: [] },
    ],
  ];
  for (const [name, settings, expected] of cases) {
    it(name, () => {
      const outcome = evaluateMapping(claims, claims.email, { ...base, ...settings });
      assert.equal(outcome.allowed, expected.allowed);
      if (expected.reason) assert.equal(outcome.reason, expected.reason);
      if (expected.groups) assert.deepEqual(outcome.groups, expected.groups);
    });
  }

  it('an unverified (absent) e-mail matches no email_domain', () => {
    const outcome = evaluateMapping(claims, undefined, {
      ...base,
      allow: [{ email_domain: 'corp.example' }],
    });
    assert.equal(outcome.allowed, false);
  });

  it('explains where each group came from', () => {
    const outcome = evaluateMapping(claims, claims.email, {
      ...base,
      group_mapping: { 'Eng-Prod': ['engineering'], sre: ['engineering'] },
      mapping_rules: [{ when: { group: 'sre' }, groups: ['oncall', 'engineering'] }],
    });
    assert.deepEqual(outcome.explanation, [
      'engineering ← group_mapping["Eng-Prod", "sre"], mapping_rules[0]',
      'oncall ← mapping_rules[0]',
    ]);
  });
});

describe('mapPushedGroups (SCIM)', () => {
  const pushed = ['Eng-Prod', 'sre', 'admins'];
  const cases: [string, Partial<MappingSettings>, { certain: string[]; possible: string[] }][] = [
    [
      'no rules: valid identifiers pass through, as at sign-in',
      {},
      { certain: ['admins', 'sre'], possible: ['admins', 'sre'] },
    ],
    [
      'mapping rules alone turn pass-through off, as at sign-in',
      { mapping_rules: [{ when: { group: 'sre' }, groups: ['oncall'] }] },
      { certain: ['oncall'], possible: ['oncall'] },
    ],
    [
      'group_mapping keeps only listed groups',
      { group_mapping: { 'Eng-Prod': ['engineering'] } },
      { certain: ['engineering'], possible: ['engineering'] },
    ],
    [
      'email_domain reads the kept e-mail',
      { mapping_rules: [{ when: { group: 'sre', email_domain: 'corp.example' }, groups: ['oncall'] }] },
      { certain: ['oncall'], possible: ['oncall'] },
    ],
    [
      'a claim on the groups claim is known',
      { mapping_rules: [{ when: { claim: 'groups', equals: 'sre' }, groups: ['oncall'] }] },
      { certain: ['oncall'], possible: ['oncall'] },
    ],
    [
      'another claim is unknown: possible, never certain',
      { mapping_rules: [{ when: { group: 'sre', claim: 'department', equals: 'ops' }, groups: ['oncall'] }] },
      { certain: [], possible: ['oncall'] },
    ],
    [
      'an unknown claim does not rescue a failing group condition',
      { mapping_rules: [{ when: { group: 'dba', claim: 'department' }, groups: ['oncall'] }] },
      { certain: [], possible: [] },
    ],
    [
      'allow and deny decide sign-ins, not SCIM groups',
      { deny: [{ group: 'sre' }], allow: [{ email_domain: 'other.example' }] },
      { certain: ['admins', 'sre'], possible: ['admins', 'sre'] },
    ],
  ];
  for (const [name, settings, expected] of cases) {
    it(name, () => {
      assert.deepEqual(mapPushedGroups(pushed, 'a@corp.example', { ...base, ...settings }), expected);
    });
  }
});
