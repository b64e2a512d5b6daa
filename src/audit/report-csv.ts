/**
 * One section of the access report as CSV (RFC 4180), for the spreadsheets auditors work in:
 * `portcullis audit report … --csv access`. Pure. Times are ISO 8601 UTC; lists are joined with
 * spaces. A cell that a spreadsheet would read as a formula (it starts, after any white space, with
 * `=`, `+`, `-`, `@`, a tab, a line break or their full-width forms: a reason, a ticket, a name from
 * an identity provider) is prefixed with `'`, so opening the file never runs anything someone typed
 * into a request. Every cell is quoted, so no list separator of any locale splits one.
 */
import type { AccessReport } from './access-report.js';

export const reportCsvSections = [
  'access',
  'decisions',
  'break-glass',
  'drills',
  'findings',
  'standing',
  'anomalies',
] as const;
export type ReportCsvSection = (typeof reportCsvSections)[number];

type Cell = string | number | boolean | null | readonly string[];
type Columns<T> = readonly (readonly [header: string, value: (row: T) => Cell])[];

const time = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());

function table<T>(rows: readonly T[], columns: Columns<T>): string {
  const lines = [columns.map(([header]) => header).join(',')];
  for (const row of rows) lines.push(columns.map(([, value]) => cell(value(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Leading white space (ASCII, no-break, ideographic), then a character that starts a formula. */
const formulaStart = /^[\s\u00a0\u3000]*[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]/;

function cell(value: Cell): string {
  if (value === null) return '""';
  let text = Array.isArray(value) ? value.join(' ') : String(value);
  if (formulaStart.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

export function reportCsv(report: AccessReport, section: ReportCsvSection): string {
  switch (section) {
    case 'access':
      return table(report.access, [
        ['grant_id', (a) => a.grantId],
        ['request_id', (a) => a.requestId],
        ['principal', (a) => a.principal],
        ['resource', (a) => a.resource],
        ['role', (a) => a.role],
        ['approved_by', (a) => a.approvedBy],
        ['approvers', (a) => a.approvers],
        ['policy_ids', (a) => a.policyIds],
        ['activation_id', (a) => a.activationId],
        ['started_at', (a) => time(a.startedAt)],
        ['expires_at', (a) => time(a.expiresAt)],
        ['ended_at', (a) => time(a.endedAt)],
        ['end', (a) => a.end],
        ['ended_by', (a) => a.endedBy],
        ['removed_at', (a) => time(a.removedAt)],
        ['reason', (a) => a.reason],
        ['ticket', (a) => a.ticket],
      ]);
    case 'decisions':
      return table(report.decisions, [
        ['request_id', (d) => d.requestId],
        ['at', (d) => time(d.at)],
        ['requester', (d) => d.requester],
        ['resource', (d) => d.resource],
        ['role', (d) => d.role],
        ['outcome', (d) => d.outcome],
        ['by', (d) => d.by],
        ['policy_ids', (d) => d.policyIds],
        ['reason', (d) => d.reason],
      ]);
    case 'break-glass':
      return table(report.breakGlass, [
        ['activation_id', (b) => b.activationId],
        ['account', (b) => b.account],
        ['drill', (b) => b.drill],
        ['initiator', (b) => b.initiator],
        ['confirmers', (b) => b.confirmers],
        ['activated_at', (b) => time(b.activatedAt)],
        ['ended_at', (b) => time(b.endedAt)],
        ['reviewed_at', (b) => time(b.reviewedAt)],
        ['reviewed_by', (b) => b.reviewedBy],
        ['rotated_at', (b) => time(b.rotatedAt)],
        ['reason', (b) => b.reason],
      ]);
    case 'drills':
      return table(report.drills, [
        ['at', (d) => time(d.at)],
        ['account', (d) => d.account],
        ['activation_id', (d) => d.activationId],
        ['passed', (d) => d.passed],
        ['failed_checks', (d) => d.failedChecks],
      ]);
    case 'findings':
      return table(report.findings, [
        ['at', (f) => time(f.at)],
        ['run', (f) => f.run],
        ['resource', (f) => f.resource],
        ['kind', (f) => f.kind],
        ['grant', (f) => f.grant],
        ['outcome', (f) => f.outcome],
      ]);
    case 'standing':
      return table(report.standing, [
        ['at', (s) => time(s.at)],
        ['resource', (s) => s.resource],
        ['holder', (s) => s.holder],
        ['via', (s) => s.via],
      ]);
    case 'anomalies':
      return table(report.anomalies, [
        ['at', (a) => time(a.at)],
        ['kind', (a) => a.kind],
        ['detail', (a) => a.detail],
      ]);
  }
}
