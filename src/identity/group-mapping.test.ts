import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertedGroups, mapIdpGroups, maxAssertedGroups } from './group-mapping.js';

describe('mapIdpGroups', () => {
  const cases: ReadonlyArray<{
    readonly description: string;
    readonly claim: unknown;
    readonly mapping: Readonly<Record<string, readonly string[]>>;
    readonly expected: readonly string[];
  }> = [
    {
      description: 'maps listed IdP groups and drops the others',
      claim: ['eng-prod', 'Everyone', 'sre'],
      mapping: { 'eng-prod': ['engineering', 'oncall'], sre: ['sre'] },
      expected: ['engineering', 'oncall', 'sre'],
    },
    {
      description: 'one IdP group may map to several Portcullis groups, merged and de-duplicated',
      claim: ['a', 'b'],
      mapping: { a: ['x', 'y'], b: ['y', 'z'] },
      expected: ['x', 'y', 'z'],
    },
    {
      description: 'with a mapping, an IdP group that is a valid identifier but unlisted is dropped',
      claim: ['admins'],
      mapping: { engineering: ['engineering'] },
      expected: [],
    },
    {
      description: 'with an empty mapping, valid identifiers pass through unchanged',
      claim: ['engineering', 'sre'],
      mapping: {},
      expected: ['engineering', 'sre'],
    },
    {
      description: 'with an empty mapping, names that are not identifiers are dropped',
      claim: ['Domain Users', 'CN=admins,OU=x', 'UPPER', '-leading-dash', 'a'.repeat(64), 'ok_1'],
      mapping: {},
      expected: ['ok_1'],
    },
    {
      description: 'a single string claim is one group',
      claim: 'dba',
      mapping: {},
      expected: ['dba'],
    },
    {
      description: 'a missing claim yields no groups',
      claim: undefined,
      mapping: { dba: ['dba'] },
      expected: [],
    },
    {
      description: 'non-string members are ignored',
      claim: ['sre', 42, null, { name: 'admins' }, ['admins']],
      mapping: {},
      expected: ['sre'],
    },
    {
      description: 'an object claim yields no groups',
      claim: { admins: true },
      mapping: {},
      expected: [],
    },
    {
      description: 'IdP groups named like Object.prototype members do not reach the prototype',
      claim: ['constructor', '__proto__', 'toString', 'hasOwnProperty'],
      mapping: { sre: ['sre'] },
      expected: [],
    },
    {
      description: 'mapped targets that are not identifiers are never produced',
      claim: ['x'],
      mapping: { x: ['Bad Group', 'good'] },
      expected: ['good'],
    },
    {
      description: 'the result is sorted whatever the claim order',
      claim: ['zeta', 'alpha', 'mid'],
      mapping: {},
      expected: ['alpha', 'mid', 'zeta'],
    },
  ];

  for (const { description, claim, mapping, expected } of cases) {
    it(description, () => {
      assert.deepEqual(mapIdpGroups(claim, mapping), expected);
    });
  }

  it(`reads at most ${maxAssertedGroups} asserted groups`, () => {
    const many = Array.from({ length: maxAssertedGroups + 5 }, (_, i) => `g${i}`);
    assert.equal(assertedGroups(many).length, maxAssertedGroups);
  });
});
