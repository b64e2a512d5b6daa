import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError, exitCodes } from './cli-error.js';
import { formatSeconds, formatTable, Output, relativeTime, sanitizeText } from './output.js';

function sink(isTTY = false) {
  const chunks: string[] = [];
  return { chunks, isTTY, write: (text: string) => chunks.push(text), text: () => chunks.join('') };
}

describe('sanitizeText', () => {
  it('turns terminal escapes into visible text', () => {
    assert.equal(sanitizeText('ok\u001b[2J\u001b]0;pwned\u0007'), 'ok\\x1b[2J\\x1b]0;pwned\\x07');
    assert.equal(sanitizeText('a\rb\bc\u007fd\u009be'), 'a\\x0db\\x08c\\x7fd\\x9be');
  });

  it('neutralises bidirectional overrides and isolates (Trojan Source)', () => {
    assert.equal(sanitizeText('approve \u202Eevil\u202C'), 'approve \\u202eevil\\u202c');
    assert.equal(sanitizeText('\u2066x\u2069\u200F'), '\\u2066x\\u2069\\u200f');
  });

  it('escapes newlines unless multiline, and turns tabs into spaces', () => {
    assert.equal(sanitizeText('line 1\nline 2\tend'), 'line 1\\x0aline 2 end');
    assert.equal(sanitizeText('line 1\nline 2', { multiline: true }), 'line 1\nline 2');
    assert.equal(sanitizeText('line 1\u2028fake', { multiline: true }), 'line 1\\u2028fake');
  });

  it('leaves ordinary text, including non-Latin scripts and emoji, alone', () => {
    const text = 'Migration «OPS-12» — naïve façade, 日本語, עברית, 🚀';
    assert.equal(sanitizeText(text), text);
  });
});

describe('formatTable', () => {
  it('aligns columns under upper-case headers without trailing spaces', () => {
    const table = formatTable(
      [{ header: 'id' }, { header: 'state' }, { header: 'reason' }],
      [
        ['r-1', 'pending', 'debug'],
        ['r-22222', 'active', ''],
      ],
    );
    assert.equal(
      table,
      ['ID       STATE    REASON', 'r-1      pending  debug', 'r-22222  active'].join('\n'),
    );
  });

  it('sanitises every cell and cuts long ones', () => {
    const table = formatTable(
      [{ header: 'reason', maxWidth: 10 }, { header: 'x' }],
      [['\u001b[31mred\u001b[0m and more', 'y']],
    );
    assert.ok(!table.includes('\u001b'));
    assert.equal(table.split('\n')[1], '\\x1b[31mr…  y');
  });
});

describe('relative times', () => {
  const now = Date.parse('2026-11-24T10:00:00Z');

  it('reads like "in 44m" and "3m ago", rounding down', () => {
    assert.equal(relativeTime('2026-11-24T10:44:59Z', now), 'in 44m');
    assert.equal(relativeTime('2026-11-24T09:57:00Z', now), '3m ago');
    assert.equal(relativeTime('2026-11-24T11:30:00Z', now), 'in 1h 30m');
    assert.equal(relativeTime('2026-11-26T13:00:00Z', now), 'in 2d 3h');
    assert.equal(relativeTime('2026-11-24T10:00:00.500Z', now), 'now');
    assert.equal(relativeTime(null, now), '-');
  });

  it('formats spans in at most two units', () => {
    assert.deepEqual([45, 60, 2700, 3600, 5400, 86_400, 90_000].map(formatSeconds), [
      '45s',
      '1m',
      '45m',
      '1h',
      '1h 30m',
      '1d',
      '1d 1h',
    ]);
  });
});

describe('Output', () => {
  it('prints errors as error[code]: detail on stderr, sanitised, with the hint', () => {
    const stdout = sink();
    const stderr = sink();
    new Output(false, stdout, stderr).error(
      new CliError('policy_denied', 'No policy allows this\u001b[2J', exitCodes.forbidden, {
        hint: 'ask an admin',
      }),
    );
    assert.equal(stdout.text(), '');
    assert.equal(stderr.text(), 'error[policy_denied]: No policy allows this\\x1b[2J\nhint: ask an admin\n');
  });

  it('prints JSON with --json and human text otherwise', () => {
    const json = sink();
    new Output(true, json, sink()).result({ reason: 'a\u001bb' }, () =>
      assert.fail('human output with --json'),
    );
    assert.deepEqual(JSON.parse(json.text()), { reason: 'a\u001bb' });
    assert.ok(!json.text().includes('\u001b'), 'JSON escapes control characters itself');
    const human = sink();
    new Output(false, human, sink()).result({}, () => human.write('hello'));
    assert.equal(human.text(), 'hello');
  });
});
