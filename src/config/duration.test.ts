import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDurationSeconds } from './duration.js';

describe('parseDurationSeconds', () => {
  const cases: ReadonlyArray<readonly [string | number, number | null]> = [
    ['30s', 30],
    ['45m', 2_700],
    ['2h', 7_200],
    ['1d', 86_400],
    ['90', 90],
    [90, 90],
    [' 2h ', 7_200],
    ['2 h', 7_200],
    ['007m', 420],
    ['0s', null],
    ['0', null],
    [0, null],
    [-5, null],
    ['-5m', null],
    ['1.5h', null],
    [1.5, null],
    ['h', null],
    ['', null],
    ['2w', null],
    ['2H', null],
    ['2hours', null],
    ['1h30m', null],
    ['1e3', null],
    [Number.NaN, null],
    [Number.POSITIVE_INFINITY, null],
    ['99999999999999999d', null],
    [1e300, null],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [Number.MAX_SAFE_INTEGER + 1, null],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${expected}`, () => {
      assert.equal(parseDurationSeconds(input), expected);
    });
  }

  it('a number of seconds and its string form agree', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -1000, max: 1_000_000 }), fc.double()), (n) => {
        const asNumber = parseDurationSeconds(n);
        if (Number.isInteger(n) && n >= 0 && !Object.is(n, -0)) {
          assert.equal(asNumber, parseDurationSeconds(String(n)));
        }
        if (asNumber !== null) assert.ok(Number.isSafeInteger(asNumber) && asNumber > 0);
      }),
    );
  });
});

describe('formatDuration', () => {
  const cases: ReadonlyArray<readonly [number, string]> = [
    [1, '1s'],
    [90, '90s'],
    [60, '1m'],
    [5_400, '90m'],
    [3_600, '1h'],
    [7_200, '2h'],
    [90_000, '25h'],
    [86_400, '1d'],
    [604_800, '7d'],
  ];
  for (const [seconds, text] of cases) {
    it(`${seconds} → ${text}`, () => assert.equal(formatDuration(seconds), text));
  }

  it('round-trips through parseDurationSeconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 * 365 * 86_400 }), (seconds) => {
        assert.equal(parseDurationSeconds(formatDuration(seconds)), seconds);
      }),
    );
  });
});
