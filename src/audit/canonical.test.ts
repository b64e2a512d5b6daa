import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CanonicalJsonError, canonicalJson } from './canonical.js';

describe('canonicalJson', () => {
  it('matches the RFC 8785 section 3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    assert.equal(
      canonicalJson(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 section 3.2.3)', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
        '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",' +
        '"\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    const keys = [...canonicalJson(input).matchAll(/"([^"]*)":"([^"]*)"/g)].map((match) => match[2]);
    assert.deepEqual(keys, [
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
  });

  it('writes numbers as ECMAScript does (RFC 8785 appendix B vectors)', () => {
    const vectors: [number, string][] = [
      [0, '0'],
      [-0, '0'],
      [5e-324, '5e-324'],
      [-5e-324, '-5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [9007199254740992, '9007199254740992'],
      [-9007199254740992, '-9007199254740992'],
      [295147905179352830000, '295147905179352830000'],
      [1e21, '1e+21'],
      [9.999999999999997e22, '9.999999999999997e+22'],
      [1e23, '1e+23'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [333333333.3333333, '333333333.3333333'],
    ];
    for (const [value, expected] of vectors) assert.equal(canonicalJson(value), expected, `${value}`);
  });

  it('has no whitespace and nests canonically', () => {
    assert.equal(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null }), '{"a":null,"b":[1,{"c":"x","d":2}]}');
    assert.equal(canonicalJson([]), '[]');
    assert.equal(canonicalJson({}), '{}');
    assert.equal(canonicalJson(Object.create(null)), '{}');
  });

  it('is the same text for any key order, and parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        const reparsed = JSON.parse(text);
        assert.equal(canonicalJson(reparsed), text);
        assert.equal(canonicalJson(JSON.parse(JSON.stringify(value, null, 2))), text);
      }),
    );
  });

  it('agrees with a naive reference encoder, integer-like keys and backslashes included', () => {
    const reference = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (typeof value === 'object' && value !== null) {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record).sort();
        return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(',')}}`;
      }
      return JSON.stringify(value);
    };
    const key = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.constantFrom('1', '9', '10', '01', 'a', 'B', '\\ud800'),
    );
    const leaf = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.constantFrom('\\ud83d', 'a\\u', '\\'),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node')), fc.dictionary(key, tie('node'))),
    })).node;
    fc.assert(
      fc.property(value, (input) => {
        assert.equal(canonicalJson(input), reference(input));
      }),
      { numRuns: 500 },
    );
    assert.equal(canonicalJson({ b: 1, 10: 2, 9: 3 }), '{"10":2,"9":3,"b":1}');
    assert.equal(canonicalJson({ s: '\\ud800' }), '{"s":"\\\\ud800"}');
  });

  it('refuses what is not I-JSON, naming the path', () => {
    const refused: [unknown, string][] = [
      [{ a: undefined }, '$.a'],
      [{ a: [1, Number.NaN] }, '$.a[1]'],
      [{ a: { b: Number.POSITIVE_INFINITY } }, '$.a.b'],
      [{ f: () => 1 }, '$.f'],
      [{ n: 10n }, '$.n'],
      [{ s: Symbol('x') }, '$.s'],
      [{ d: new Date(0) }, '$.d'],
      [{ m: new Map() }, '$.m'],
      [{ s: 'a\uD800b' }, '$.s'],
      [{ s: '\uDC00' }, '$.s'],
      [{ 'k\uD800': 1 }, '$.k\uD800'],
      [[1, , 3], '$[1]'],
      [{ [Symbol('k')]: 1 }, '$'],
    ];
    for (const [value, path] of refused) {
      assert.throws(
        () => canonicalJson(value),
        (error: unknown) => error instanceof CanonicalJsonError && error.path === path,
        path,
      );
    }
  });

  it('accepts well-formed surrogate pairs and control characters', () => {
    assert.equal(canonicalJson('😀\u0000\u001f'), '"😀\\u0000\\u001f"');
  });

  it('refuses cycles and excessive nesting instead of overflowing the stack', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.throws(() => canonicalJson(cycle), CanonicalJsonError);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    assert.throws(() => canonicalJson(deep), /nested deeper/);
  });
});
