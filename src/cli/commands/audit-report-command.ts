/**
 * `portcullis audit report FILE --key KEYS [--from DATE] [--to DATE]`: the access report of a
 * period, built offline from an audit export that is verified first (docs/audit.md#access-report).
 * A tampered export gets no report: exit 10, as `audit verify`.
 */
import type { AccessReport } from '../../audit/access-report.js';
import type { HashedEventFields } from '../../audit/hash.js';
import type { ReportCsvSection } from '../../audit/report-csv.js';
import { exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { formatTable, sanitizeText } from '../output.js';
import { printVerification, verifyExportFile } from './audit-commands.js';

export interface AuditReportOptions {
  readonly key: string;
  readonly from?: string;
  readonly to?: string;
  /** One section as CSV instead of the report. */
  readonly csv?: ReportCsvSection;
}

/** A date (`2026-11-01`, UTC midnight) or an ISO 8601 time, as epoch ms. */
function parseTime(value: string, flag: string): number {
  const at = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(at)) throw usageError(`${flag} ${value} is not a date (2026-11-01) or an ISO 8601 time`);
  return at;
}

export async function reportAuditLog(
  ctx: CliContext,
  file: string,
  options: AuditReportOptions,
): Promise<number> {
  const from = options.from === undefined ? 0 : parseTime(options.from, '--from');
  const to = options.to === undefined ? Date.now() : parseTime(options.to, '--to');
  if (to <= from) throw usageError('--to must be later than --from');
  if (options.csv !== undefined && ctx.output.json) throw usageError('--csv and --json exclude each other');

  // One pass: the report reads exactly the event lines the verifier placed in the chain, and is
  // thrown away unless the whole export verifies.
  const { AccessReportBuilder } = await import('../../audit/access-report.js');
  const builder = new AccessReportBuilder({ from, to });
  const verification = await verifyExportFile(file, options.key, (line) =>
    builder.push(JSON.parse(line) as HashedEventFields),
  );
  if (!verification.ok) {
    printVerification(ctx, file, verification);
    return exitCodes.verificationFailed;
  }
  const report = builder.finish(verification.anchor);
  if (options.csv !== undefined) {
    const { reportCsv } = await import('../../audit/report-csv.js');
    ctx.output.raw(reportCsv(report, options.csv));
    return exitCodes.ok;
  }
  const verified = {
    events: verification.events,
    signedThroughSeq: verification.signedThroughSeq,
    unsignedEvents: verification.unsignedEvents,
  };
  ctx.output.result({ file, verified, report: reportJson(report) }, () =>
    printReport(ctx, file, report, verified),
  );
  return exitCodes.ok;
}

const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());
const day = (at: number | null): string =>
  at === null ? '-' : new Date(at).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z');

/** The report for `--json`: times as ISO 8601 text. */
function reportJson(report: AccessReport) {
  return {
    period: { from: iso(report.period.from), to: iso(report.period.to) },
    events: report.events,
    lastSeq: report.lastSeq,
    logBegins: report.logBegins && { seq: report.logBegins.seq, at: iso(report.logBegins.at) },
    coversPeriod: report.coversPeriod,
    access: report.access.map((a) => ({
      ...a,
      startedAt: iso(a.startedAt),
      expiresAt: iso(a.expiresAt),
      endedAt: iso(a.endedAt),
      removedAt: iso(a.removedAt),
    })),
    decisions: report.decisions.map((d) => ({ ...d, at: iso(d.at) })),
    breakGlass: report.breakGlass.map((b) => ({
      ...b,
      activatedAt: iso(b.activatedAt),
      endedAt: iso(b.endedAt),
      reviewedAt: iso(b.reviewedAt),
      rotatedAt: iso(b.rotatedAt),
    })),
    drills: report.drills.map((d) => ({ ...d, at: iso(d.at) })),
    reconcileRuns: report.reconcileRuns,
    findings: report.findings.map((f) => ({ ...f, at: iso(f.at) })),
    standing: report.standing.map((s) => ({ ...s, at: iso(s.at) })),
    anomalies: report.anomalies.map((a) => ({ ...a, at: iso(a.at) })),
  };
}

function printReport(
  ctx: CliContext,
  file: string,
  report: AccessReport,
  verified: { readonly events: number; readonly signedThroughSeq: number; readonly unsignedEvents: number },
): void {
  const out = (line = '') => ctx.output.line(line);
  out(
    `Access report ${report.period.from === 0 ? 'from the beginning' : day(report.period.from)} – ${day(report.period.to)}`,
  );
  out(
    `From ${sanitizeText(file)}: verified, ${verified.events} events, signed through entry ${verified.signedThroughSeq}.`,
  );
  if (verified.unsignedEvents > 0) {
    out(
      `Note: the last ${verified.unsignedEvents} event(s) come after the last signed checkpoint; only the hash chain protects them (export again for a checkpoint over them).`,
    );
  }
  if (!report.coversPeriod && report.logBegins !== null) {
    out(
      `Note: the log begins at entry ${report.logBegins.seq} (${day(report.logBegins.at)}); retention removed the events before it, so access and decisions before then are missing from this report.`,
    );
  }

  const people = new Set(report.access.map((a) => a.principal)).size;
  out();
  out(`Access held: ${report.access.length} grant(s), ${people} person(s)`);
  if (report.access.length > 0) {
    out(
      formatTable(
        [
          { header: 'start' },
          { header: 'end' },
          { header: 'principal', maxWidth: 32 },
          { header: 'access', maxWidth: 40 },
          { header: 'approved by', maxWidth: 40 },
          { header: 'ended' },
          { header: 'reason', maxWidth: 48 },
        ],
        report.access.map((a) => [
          day(a.startedAt),
          day(a.removedAt ?? a.endedAt),
          a.principal,
          `${a.resource}/${a.role}`,
          a.approvedBy === 'approvers'
            ? a.approvers.join(', ')
            : a.approvedBy === 'auto'
              ? `policy ${a.policyIds.join(', ')}`
              : a.approvedBy === 'break_glass'
                ? `break-glass ${a.activationId ?? ''}`
                : 'unknown',
          a.end === null
            ? 'live'
            : `${a.end}${a.endedBy && a.endedBy !== 'system' ? ` by ${a.endedBy}` : ''}${a.removedAt === null ? ', removal NOT confirmed' : ''}`,
          [a.ticket, a.reason].filter(Boolean).join(': '),
        ]),
      ),
    );
  }

  const count = (outcome: string) => report.decisions.filter((d) => d.outcome === outcome).length;
  out();
  out(
    `Decisions: ${report.decisions.length} (${count('approved')} approved, ${count('denied')} denied, ` +
      `${count('denied_by_policy')} denied by policy, ${count('cancelled')} cancelled, ${count('lapsed')} lapsed)`,
  );
  if (report.decisions.length > 0) {
    out(
      formatTable(
        [
          { header: 'at' },
          { header: 'outcome' },
          { header: 'requester', maxWidth: 32 },
          { header: 'access', maxWidth: 40 },
          { header: 'by', maxWidth: 48 },
        ],
        report.decisions.map((d) => [
          day(d.at),
          d.outcome,
          d.requester ?? '-',
          `${d.resource ?? '?'}/${d.role ?? '?'}`,
          d.by.join(', '),
        ]),
      ),
    );
  }

  const emergencies = report.breakGlass.filter((b) => !b.drill);
  out();
  out(
    `Break-glass: ${emergencies.length} activation(s), ${emergencies.filter((b) => b.reviewedAt === null).length} not reviewed; ${report.drills.length} drill(s), ${report.drills.filter((d) => !d.passed).length} failed`,
  );
  if (report.breakGlass.length > 0) {
    out(
      formatTable(
        [
          { header: 'activated' },
          { header: 'account', maxWidth: 32 },
          { header: 'by', maxWidth: 48 },
          { header: 'reviewed', maxWidth: 48 },
          { header: 'rotated' },
        ],
        report.breakGlass.map((b) => [
          `${day(b.activatedAt)}${b.drill ? ' (drill)' : ''}`,
          b.account,
          [b.initiator, ...b.confirmers].join(', '),
          b.reviewedAt === null
            ? b.drill
              ? '-'
              : 'NOT REVIEWED'
            : `${day(b.reviewedAt)} by ${b.reviewedBy}`,
          day(b.rotatedAt),
        ]),
      ),
    );
  }

  out();
  out(
    report.reconcileRuns === 0
      ? `Standing privileges: no reconciliation ran in the period, so there is no evidence either way; ${report.findings.length} finding(s), ${report.standing.length} standing holder(s)`
      : `Standing privileges: ${report.reconcileRuns} reconciliation run(s); ${report.findings.length} finding(s), ${report.standing.length} standing holder(s)${report.findings.length + report.standing.length === 0 ? ' (none, as it should be)' : ''}`,
  );
  for (const s of report.standing) {
    out(
      `  ${day(s.at)}  ${s.resource ?? '?'}  ${sanitizeText(s.holder)} holds ${sanitizeText(s.via)} without a grant`,
    );
  }
  for (const f of report.findings) {
    out(`  ${day(f.at)}  ${f.resource ?? '?'}  ${f.kind}  grant ${sanitizeText(f.grant)}  ${f.outcome}`);
  }

  out();
  out(`Anomalies: ${report.anomalies.length === 0 ? 'none' : report.anomalies.length}`);
  for (const a of report.anomalies) out(`  ${day(a.at)}  ${a.kind}: ${sanitizeText(a.detail)}`);
}
