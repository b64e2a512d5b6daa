import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { binaryParameterText } from './binary-parameter.js';
import { encodeBind, encodeExecute, encodeParse, FrontendMessage } from './protocol/index.js';
import { StatementTracker } from './statement-tracker.js';

const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('binaryParameterText', () => {
  test('fixed-size types read as PostgreSQL prints them', () => {
    assert.equal(binaryParameterText(23, int4(-42)), '-42');
    assert.equal(binaryParameterText(21, Buffer.from([0x80, 0x00])), '-32768');
    assert.equal(binaryParameterText(26, Buffer.from([0xff, 0xff, 0xff, 0xff])), '4294967295');
    assert.equal(binaryParameterText(20, Buffer.from('7fffffffffffffff', 'hex')), '9223372036854775807');
    assert.equal(binaryParameterText(16, Buffer.from([1])), 'true');
    assert.equal(binaryParameterText(16, Buffer.from([0])), 'false');
    assert.equal(binaryParameterText(701, Buffer.from('7ff8000000000000', 'hex')), 'NaN');
    assert.equal(binaryParameterText(700, Buffer.from('ff800000', 'hex')), '-Infinity');
    assert.equal(binaryParameterText(701, Buffer.from('8000000000000000', 'hex')), '-0');
    assert.equal(
      binaryParameterText(2950, Buffer.from('0123456789abcdef0123456789abcdef', 'hex')),
      '01234567-89ab-cdef-0123-456789abcdef',
    );
  });

  test('a wrong length, an unknown or unspecified type, or a bad bool is not decoded', () => {
    assert.equal(binaryParameterText(23, Buffer.from([0, 0, 1])), undefined);
    assert.equal(binaryParameterText(20, int4(1)), undefined);
    assert.equal(binaryParameterText(16, Buffer.from([2])), undefined);
    assert.equal(binaryParameterText(0, int4(1)), undefined);
    assert.equal(binaryParameterText(1700, int4(1)), undefined); // numeric: variable layout
  });

  test('property: integers and doubles round-trip to their decimal text', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (n) => {
        assert.equal(binaryParameterText(23, int4(n)), String(n));
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => {
        const b = Buffer.alloc(8);
        b.writeBigInt64BE(n);
        assert.equal(binaryParameterText(20, b), n.toString());
      }),
    );
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (x) => {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(x);
        assert.equal(Number(binaryParameterText(701, b)), x);
      }),
    );
  });
});

describe('StatementTracker with binary parameters', () => {
  const body = (frame: Buffer) => frame.subarray(5);

  test('binary values are read by the types their Parse declared; text-like types as text; others base64', () => {
    const tracker = new StatementTracker(true);
    // int4, text, unspecified (0), numeric.
    tracker.observe(
      FrontendMessage.Parse,
      body(encodeParse('S_1', 'select $1, $2, $3, $4', [23, 25, 0, 1700])),
      1,
    );
    const bind = encodeBind({
      portal: '',
      statement: 'S_1',
      parameterFormats: [1],
      parameters: [int4(7), Buffer.from('héllo'), int4(7), int4(7)],
    });
    tracker.observe(FrontendMessage.Bind, body(bind), 2);
    const execute = tracker.observe(FrontendMessage.Execute, body(encodeExecute()), 3);
    assert.deepEqual(execute?.parameters, ['7', 'héllo', 'base64:AAAABw==', 'base64:AAAABw==']);
  });

  test('a Bind of a statement whose Parse was not seen keeps base64', () => {
    const tracker = new StatementTracker(true);
    tracker.observe(
      FrontendMessage.Bind,
      body(encodeBind({ statement: 'from_sql_prepare', parameterFormats: [1], parameters: [int4(1)] })),
      1,
    );
    const execute = tracker.observe(FrontendMessage.Execute, body(encodeExecute()), 2);
    assert.deepEqual(execute?.parameters, ['base64:AAAAAQ==']);
  });
});
