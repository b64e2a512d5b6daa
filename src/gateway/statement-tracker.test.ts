import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { canonicalJson } from '../audit/canonical.js';
import {
  encodeBind,
  encodeExecute,
  encodeFunctionCall,
  encodeParse,
  encodeQuery,
  encodeSync,
  FrontendMessage,
} from './protocol/index.js';
import { maxRecordedSqlChars, StatementTracker } from './statement-tracker.js';

/** The body of an encoded frontend message (after its 5-byte header). */
const body = (frame: Buffer) => frame.subarray(5);

describe('StatementTracker', () => {
  test('Query, Parse and Execute are records; Bind is folded into its Execute; keys in canonical order', () => {
    const tracker = new StatementTracker(true);
    const query = tracker.observe(FrontendMessage.Query, body(encodeQuery('select 1')), 10);
    assert.deepEqual(query, { at: 10, kind: 'query', sql: 'select 1' });

    const parse = tracker.observe(FrontendMessage.Parse, body(encodeParse('s1', 'select $1::int')), 11);
    assert.deepEqual(parse, { at: 11, kind: 'parse', sql: 'select $1::int', statement: 's1' });
    const bind = encodeBind({ portal: 'p1', statement: 's1', parameters: ['42'] });
    assert.equal(tracker.observe(FrontendMessage.Bind, body(bind), 12), undefined);
    const execute = tracker.observe(FrontendMessage.Execute, body(encodeExecute('p1', 5)), 13);
    assert.deepEqual(execute, {
      at: 13,
      kind: 'execute',
      maxRows: 5,
      parameters: ['42'],
      portal: 'p1',
      sql: 'select $1::int',
      statement: 's1',
    });
    assert.equal(tracker.observe(FrontendMessage.Sync, body(encodeSync()), 14), undefined);

    // Built in canonical key order, so the audit encoding takes its fast path unchanged.
    for (const record of [query, parse, execute]) {
      assert.deepEqual(Object.keys(record ?? {}), Object.keys(record ?? {}).sort());
      assert.equal(JSON.stringify(record), canonicalJson(record));
    }
  });

  test('parameters are left out unless configured; long SQL is cut with its length and hash', () => {
    const tracker = new StatementTracker(false);
    tracker.observe(FrontendMessage.Parse, body(encodeParse('', 'select $1')), 1);
    tracker.observe(FrontendMessage.Bind, body(encodeBind({ parameters: ['secret'] })), 2);
    const execute = tracker.observe(FrontendMessage.Execute, body(encodeExecute()), 3);
    assert.equal(execute?.parameters, undefined);
    assert.equal(execute?.sql, 'select $1');

    const long = `select '${'x'.repeat(maxRecordedSqlChars)}'`;
    const cut = tracker.observe(FrontendMessage.Query, body(encodeQuery(long)), 4);
    assert.equal((cut?.sql as string).length, maxRecordedSqlChars);
    assert.equal(cut?.sqlLength, long.length);
    assert.equal(cut?.sqlSha256, createHash('sha256').update(long).digest('hex'));
    assert.equal(cut?.sqlTruncated, true);
    assert.equal(JSON.stringify(cut), canonicalJson(cut));
  });

  test('a FunctionCall is a record of its own: the OID, and its arguments only when configured', () => {
    const call = encodeFunctionCall({
      functionOid: 2078,
      argumentFormats: [0, 0, 1],
      arguments: ['search_path', 'public', Buffer.from([0])],
    });
    const withArguments = new StatementTracker(true).observe(FrontendMessage.FunctionCall, body(call), 5);
    assert.deepEqual(withArguments, {
      at: 5,
      functionOid: 2078,
      kind: 'function_call',
      parameters: ['search_path', 'public', 'base64:AA=='],
    });
    assert.equal(JSON.stringify(withArguments), canonicalJson(withArguments));
    const without = new StatementTracker(false).observe(FrontendMessage.FunctionCall, body(call), 6);
    assert.deepEqual(without, { at: 6, functionOid: 2078, kind: 'function_call' });
  });
});
