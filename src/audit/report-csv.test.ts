import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessReportBuilder } from './access-report.js';
import { hashedEventBuilder } from './audit-test-support.js';
import { reportCsv } from './report-csv.js';

const t0 = Date.UTC(2026, 9, 1);
const event = hashedEventBuilder();

describe('reportCsv', () => {
  const builder = new AccessReportBuilder({ from: 0, to: t0 + 86_400_000 });
  for (const e of [
    event('request.created', t0, {
      actor: 'okta:alice',
      request_id: 'r1',
      reason: '=HYPERLINK("https://evil.example","fix, "urgent"")',
      policy_ids: ['p1'],
      data: { role: 'read', ticket: '-OPS-1' },
    }),
    event('request.approved', t0 + 1000, {
      actor: 'okta:bob',
      request_id: 'r1',
      data: { approvals: ['okta:bob', 'okta:carol'] },
    }),
    event('grant.activated', t0 + 2000, {
      request_id: 'r1',
      grant_id: 'g1',
      data: { role: 'read', principal: 'okta:alice', expiresAt: t0 + 3_600_000 },
    }),
  ])
    builder.push(e);
  const report = builder.finish();

  it('writes a header and one row per grant, times in ISO 8601, lists joined with spaces', () => {
    const lines = reportCsv(report, 'access').split('\r\n');
    assert.equal(
      lines[0],
      'grant_id,request_id,principal,resource,role,approved_by,approvers,policy_ids,activation_id,started_at,expires_at,ended_at,end,ended_by,removed_at,reason,ticket',
    );
    assert.equal(lines.length, 3, 'header, one row, and the final line break');
    assert.ok(
      lines[1]?.startsWith(
        '"g1","r1","okta:alice","db","read","approvers","okta:bob okta:carol","p1","","2026-10-01T00:00:02.000Z",',
      ),
      lines[1],
    );
  });

  it('quotes what needs quoting and disarms what a spreadsheet would run as a formula', () => {
    const row = reportCsv(report, 'access').split('\r\n')[1] ?? '';
    assert.ok(row.endsWith(`,"'=HYPERLINK(""https://evil.example"",""fix, ""urgent"""")","'-OPS-1"`), row);
  });

  it('disarms a formula behind white space, a line break or a full-width sign, and leaves the rest', () => {
    const cells = (reason: string) => {
      const builder = new AccessReportBuilder({ from: 0, to: t0 + 86_400_000 });
      builder.push(event('request.denied_by_policy', t0, { actor: 'okta:x', request_id: 'q', reason }));
      const row = reportCsv(builder.finish(), 'decisions').split('\r\n')[1] ?? '';
      return row.slice(row.lastIndexOf(',"') + 1);
    };
    assert.equal(cells(' =1+1'), `"' =1+1"`);
    assert.equal(cells('\n=1+1'), `"'\n=1+1"`);
    assert.equal(cells('\u00a0@SUM(A1)'), `"'\u00a0@SUM(A1)"`);
    assert.equal(cells('\uff1d1+1'), `"'\uff1d1+1"`);
    assert.equal(cells('ok;=1+1'), '"ok;=1+1"', 'quoted: no separator splits it');
    assert.equal(cells('fix the disk'), '"fix the disk"');
  });

  it('writes every section, empty ones as their header alone', () => {
    assert.equal(reportCsv(report, 'anomalies'), 'at,kind,detail\r\n');
    assert.match(
      reportCsv(report, 'decisions'),
      /^request_id,at,requester,resource,role,outcome,by,policy_ids,reason\r\n"r1",/,
    );
    for (const section of ['break-glass', 'drills', 'findings', 'standing'] as const) {
      assert.match(reportCsv(report, section), /^[a-z_,]+\r\n$/);
    }
  });
});
