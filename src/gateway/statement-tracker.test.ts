import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { canonicalJson } from '../audit/canonical.js';
import {
  BackendMessage,
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

  describe('Execute records name only SQL the server accepted', () => {
    const parse = (t: StatementTracker, name: string, sql: string) =>
      t.observe(FrontendMessage.Parse, body(encodeParse(name, sql)), 1);
    const run = (t: StatementTracker, statement: string, portal = '') => {
      t.observe(FrontendMessage.Bind, body(encodeBind({ portal, statement })), 2);
      return t.observe(FrontendMessage.Execute, body(encodeExecute(portal)), 3);
    };
    const answer = (t: StatementTracker, ...types: number[]) => {
      for (const type of types) t.serverSaid(type);
    };
    const { ParseComplete, ErrorResponse, ReadyForQuery } = BackendMessage;

    test('a re-Parse the server refused (42P05) leaves the statement it had', () => {
      const t = new StatementTracker(false);
      parse(t, 's1', "select 'really_ran'");
      t.sync();
      answer(t, ParseComplete, ReadyForQuery);
      parse(t, 's1', 'select 1 as harmless');
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery);
      const execute = run(t, 's1');
      assert.equal(execute?.sql, "select 'really_ran'");
      assert.equal(execute?.sqlUnknown, undefined);
    });

    test('a Parse, Bind and Execute sent together name the Parse; Parses skipped after an error are dropped', () => {
      const t = new StatementTracker(false);
      parse(t, 'a', 'select 1/0');
      parse(t, 'b', 'select 2');
      assert.equal(run(t, 'a')?.sql, 'select 1/0');
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery); // b was skipped: never a statement
      assert.equal(t.awaitingParse, false);
      assert.deepEqual(
        { sql: run(t, 'b')?.sql, why: run(t, 'b')?.sqlUnknown },
        { sql: null, why: 'statement_not_seen' },
      );
    });

    test('a Bind while a Parse of other text under the same name is unanswered records no SQL', () => {
      const t = new StatementTracker(false);
      parse(t, 's1', 'select 1');
      t.sync();
      answer(t, ParseComplete, ReadyForQuery);
      parse(t, 's1', 'select 2'); // may fail with 42P05
      t.sync();
      assert.equal(run(t, 's1')?.sqlUnknown, 'parse_pending');
      // Without a committed statement, only the pending Parse can have made it.
      parse(t, 's9', 'select 9');
      t.sync();
      assert.equal(run(t, 's9')?.sql, 'select 9');
    });

    test('after PREPARE, DEALLOCATE or DISCARD in SQL (or a FunctionCall), named statements are not trusted', () => {
      for (const [what, act] of [
        [
          'a Query',
          (t: StatementTracker) => t.observe(FrontendMessage.Query, body(encodeQuery('deallocate s2')), 4),
        ],
        [
          'an executed statement',
          (t: StatementTracker) => {
            parse(t, 'd', 'DISCARD ALL');
            run(t, 'd');
          },
        ],
        [
          'a FunctionCall',
          (t: StatementTracker) =>
            t.observe(FrontendMessage.FunctionCall, body(encodeFunctionCall({ functionOid: 2924 })), 4),
        ],
      ] as const) {
        const t = new StatementTracker(false);
        parse(t, 's2', 'select 1 as harmless');
        parse(t, '', 'select 3');
        t.sync();
        answer(t, ParseComplete, ParseComplete, ReadyForQuery);
        act(t);
        const execute = run(t, 's2');
        assert.deepEqual(
          [execute?.sql, execute?.sqlUnknown, execute?.statement],
          [null, 'redefined_in_sql', 's2'],
          what,
        );
        assert.equal(JSON.stringify(execute), canonicalJson(execute));
        // The unnamed statement cannot be replaced in SQL.
        assert.equal(run(t, '')?.sql, 'select 3', what);
        // A Parse the server accepts afterwards is certain again.
        t.sync();
        parse(t, 's3', 'select 4');
        t.sync();
        assert.equal(run(t, 's3')?.sql, 'select 4', what);
      }
    });

    test('beyond the cap the oldest portal is forgotten, not all of them', () => {
      const t = new StatementTracker(false);
      parse(t, '', 'select 5');
      for (let i = 0; i <= 10_000; i++)
        t.observe(FrontendMessage.Bind, body(encodeBind({ portal: `p${i}` })), 1);
      const first = t.observe(FrontendMessage.Execute, body(encodeExecute('p0')), 2);
      assert.deepEqual([first?.sql, first?.sqlUnknown], [null, 'portal_not_seen']);
      assert.equal(t.observe(FrontendMessage.Execute, body(encodeExecute('p1')), 2)?.sql, 'select 5');
      assert.equal(t.observe(FrontendMessage.Execute, body(encodeExecute('p10000')), 2)?.sql, 'select 5');
    });
  });
});
