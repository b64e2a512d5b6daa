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

  test('text that is not UTF-8 keeps its bytes: a LATIN1 session records what it really sent', () => {
    let tracker = new StatementTracker(false);
    const latin1 = Buffer.from("select 'caf\u00e9'", 'latin1');
    const query = tracker.observe(FrontendMessage.Query, Buffer.concat([latin1, Buffer.from([0])]), 1);
    assert.deepEqual(query, {
      at: 1,
      kind: 'query',
      sql: "select 'caf\ufffd'",
      sqlBase64: latin1.toString('base64'),
      sqlByteLength: latin1.length,
    });
    assert.equal(JSON.stringify(query), canonicalJson(query));
    // UTF-8 text (é as two bytes) records no bytes.
    const utf8 = tracker.observe(FrontendMessage.Query, body(encodeQuery("select 'caf\u00e9'")), 2);
    assert.deepEqual(utf8, { at: 2, kind: 'query', sql: "select 'caf\u00e9'" });

    // Two texts that read the same as UTF-8 but differ in bytes are different statements: while a
    // re-Parse with the other bytes is unanswered, an Execute cannot say which one runs.
    const parseBody = (bytes: Buffer) => Buffer.concat([Buffer.from('s\0'), bytes, Buffer.from([0, 0, 0])]);
    tracker = new StatementTracker(false);
    tracker.observe(FrontendMessage.Parse, parseBody(latin1), 3);
    tracker.sync();
    tracker.serverSaid(BackendMessage.ParseComplete);
    tracker.serverSaid(BackendMessage.ReadyForQuery, 0x49);
    tracker.observe(FrontendMessage.Parse, parseBody(Buffer.from("select 'caf\u00e8'", 'latin1')), 4);
    tracker.sync();
    tracker.observe(FrontendMessage.Bind, body(encodeBind({ statement: 's' })), 5);
    const execute = tracker.observe(FrontendMessage.Execute, body(encodeExecute()), 6);
    assert.deepEqual([execute?.sql, execute?.sqlUnknown], [null, 'parse_pending']);
  });

  test('long text that is not UTF-8 keeps at most 64 KiB of its bytes', () => {
    const bytes = Buffer.alloc(maxRecordedSqlChars + 10, 0xe9);
    const cut = new StatementTracker(false).observe(
      FrontendMessage.Query,
      Buffer.concat([bytes, Buffer.from([0])]),
      1,
    );
    assert.equal(Buffer.from(String(cut?.sqlBase64), 'base64').length, maxRecordedSqlChars);
    assert.equal(cut?.sqlByteLength, bytes.length);
    assert.equal(cut?.sqlSha256, createHash('sha256').update(bytes).digest('hex'));
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
    const answer = (t: StatementTracker, ...messages: (number | [number, number])[]) => {
      for (const m of messages) {
        if (typeof m === 'number') t.serverSaid(m);
        else t.serverSaid(m[0], m[1]);
      }
    };
    const { ParseComplete, BindComplete, ErrorResponse, CopyInResponse } = BackendMessage;
    const [idle, inTransaction, failedTransaction] = [0x49, 0x54, 0x45];
    /** A ReadyForQuery and its transaction status, as `answer` takes it. */
    const ReadyForQuery = (status: number): [number, number] => [BackendMessage.ReadyForQuery, status];

    test('a re-Parse the server refused (42P05) leaves the statement it had', () => {
      const t = new StatementTracker(false);
      parse(t, 's1', "select 'really_ran'");
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle));
      parse(t, 's1', 'select 1 as harmless');
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery(idle));
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
      answer(t, ErrorResponse, ReadyForQuery(idle)); // b was skipped: never a statement
      assert.equal(t.awaitingAnswers, false);
      assert.deepEqual(
        { sql: run(t, 'b')?.sql, why: run(t, 'b')?.sqlUnknown },
        { sql: null, why: 'statement_not_seen' },
      );
    });

    test('a Bind while a Parse of other text under the same name is unanswered records no SQL', () => {
      const t = new StatementTracker(false);
      parse(t, 's1', 'select 1');
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle));
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
        answer(t, ParseComplete, ParseComplete, ReadyForQuery(idle));
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
      answer(t, ParseComplete);
      for (let i = 0; i <= 10_000; i++) {
        t.observe(FrontendMessage.Bind, body(encodeBind({ portal: `p${i}` })), 1);
        answer(t, BindComplete);
      }
      t.sync();
      answer(t, ReadyForQuery(inTransaction));
      const first = t.observe(FrontendMessage.Execute, body(encodeExecute('p0')), 2);
      assert.deepEqual([first?.sql, first?.sqlUnknown], [null, 'portal_not_seen']);
      assert.equal(t.observe(FrontendMessage.Execute, body(encodeExecute('p1')), 2)?.sql, 'select 5');
      assert.equal(t.observe(FrontendMessage.Execute, body(encodeExecute('p10000')), 2)?.sql, 'select 5');
    });

    test('a Parse sent into a batch the server already failed is skipped, never committed (Flush, then more)', () => {
      const t = new StatementTracker(false);
      parse(t, 'q', "select 'really_ran'");
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle));
      parse(t, 'bad', 'garbage');
      answer(t, ErrorResponse); // after a Flush: the batch failed, its Sync not sent yet
      const skipped = parse(t, 'q', 'select 1 as harmless');
      assert.equal(skipped?.skipped, true);
      assert.equal(JSON.stringify(skipped), canonicalJson(skipped));
      t.sync();
      answer(t, ReadyForQuery(idle));
      parse(t, 'x', 'select 2');
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle)); // x's, not the skipped q's
      const execute = run(t, 'q');
      assert.deepEqual([execute?.sql, execute?.skipped], ["select 'really_ran'", undefined]);
    });

    test('a Bind the server skipped leaves the portal it had; an Execute in a failed batch says skipped', () => {
      const t = new StatementTracker(false);
      parse(t, 'evil', "select 'really_ran'");
      parse(t, 'harmless', 'select 1');
      t.observe(FrontendMessage.Bind, body(encodeBind({ portal: 'c', statement: 'evil' })), 1);
      t.sync();
      answer(t, ParseComplete, ParseComplete, BindComplete, ReadyForQuery(inTransaction));
      parse(t, 'bad', 'garbage');
      t.observe(FrontendMessage.Bind, body(encodeBind({ portal: 'c', statement: 'harmless' })), 2);
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery(failedTransaction));
      const later = t.observe(FrontendMessage.Execute, body(encodeExecute('c')), 3);
      assert.deepEqual([later?.sql, later?.statement], ["select 'really_ran'", 'evil']);
      // The error is known before this Execute goes out: the server will skip it.
      answer(t, ErrorResponse);
      assert.equal(t.observe(FrontendMessage.Execute, body(encodeExecute('c')), 4)?.skipped, true);
    });

    test('Syncs the server ignores during COPY FROM STDIN end no batch (simple and extended protocol)', () => {
      const t = new StatementTracker(false);
      t.observe(FrontendMessage.Query, body(encodeQuery('copy t from stdin')), 1);
      answer(t, CopyInResponse);
      t.sync(); // ignored by the server while it reads copy data
      t.copyEnded();
      answer(t, ReadyForQuery(idle));
      parse(t, 'q', 'select count(*) from no_such_table_harmless');
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery(idle));
      parse(t, 'q', "select 'really_ran'");
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle));
      parse(t, 'z', 'garbage');
      t.sync();
      answer(t, ErrorResponse, ReadyForQuery(idle));
      assert.equal(run(t, 'q')?.sql, "select 'really_ran'");

      // libpq's COPY over the extended protocol: Parse, Bind, Execute, Sync, then the data.
      parse(t, '', 'copy t from stdin');
      run(t, '');
      t.sync(); // ignored: the server is in copy mode by the time it reads it
      answer(t, ParseComplete, BindComplete, CopyInResponse);
      t.copyEnded();
      t.sync();
      answer(t, ReadyForQuery(idle));
      parse(t, 'after', 'select 3');
      t.sync();
      answer(t, ParseComplete, ReadyForQuery(idle));
      assert.equal(run(t, 'after')?.sql, 'select 3');
    });

    test('a named portal bound before DECLARE or CLOSE in SQL, or before its transaction ended, is not trusted', () => {
      for (const [what, act] of [
        [
          'a cursor re-declared in SQL',
          (t: StatementTracker) =>
            t.observe(
              FrontendMessage.Query,
              body(encodeQuery("close c; declare c cursor for select 'x'")),
              5,
            ),
        ],
        [
          'a FunctionCall',
          (t: StatementTracker) =>
            t.observe(FrontendMessage.FunctionCall, body(encodeFunctionCall({ functionOid: 2924 })), 5),
        ],
      ] as const) {
        const t = new StatementTracker(false);
        parse(t, 's1', 'select 1 as harmless');
        t.observe(FrontendMessage.Bind, body(encodeBind({ portal: 'c', statement: 's1' })), 1);
        t.sync();
        answer(t, ParseComplete, BindComplete, ReadyForQuery(inTransaction));
        assert.equal(
          t.observe(FrontendMessage.Execute, body(encodeExecute('c')), 2)?.sql,
          'select 1 as harmless',
        );
        t.sync();
        answer(t, ReadyForQuery(inTransaction));
        act(t);
        answer(t, ReadyForQuery(inTransaction));
        const execute = t.observe(FrontendMessage.Execute, body(encodeExecute('c')), 6);
        assert.deepEqual([execute?.sql, execute?.sqlUnknown], [null, 'redefined_in_sql'], what);
      }
      const t = new StatementTracker(false);
      parse(t, 's1', 'select 1');
      t.observe(FrontendMessage.Bind, body(encodeBind({ portal: 'c', statement: 's1' })), 1);
      t.sync();
      answer(t, ParseComplete, BindComplete, ReadyForQuery(idle)); // autocommit: the portal is gone
      const execute = t.observe(FrontendMessage.Execute, body(encodeExecute('c')), 2);
      assert.deepEqual([execute?.sql, execute?.sqlUnknown], [null, 'portal_not_seen']);
    });

    test('unanswered Parses are capped: beyond, the session is untracked and their text is let go', () => {
      const t = new StatementTracker(false);
      const text = `select 1 /* ${'x'.repeat(1_000_000)} */`;
      for (let i = 0; i < 300; i++) parse(t, `s${i}`, text); // each kept cut to 64 Ki characters
      assert.equal(t.awaitingAnswers, false, 'over the cap: nothing is kept pending');
      assert.deepEqual([run(t, 's0')?.sql, run(t, 's0')?.sqlUnknown], [null, 'untracked']);
    });
  });
});
