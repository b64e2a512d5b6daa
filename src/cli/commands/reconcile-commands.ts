/** `portcullis reconcile`: compare every target with the grants now (administrators). */
import type { ReconcileReportView } from '../../http/routes/reconcile-routes.js';
import { type ExitCode, exitCodes } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { formatTable, sanitizeText } from '../output.js';

const outcomeText = {
  taken_back: 'taken back',
  take_back_failed: 'taking back FAILED',
  reported: 'reported',
  reported_before: 'reported before',
} as const;

/** Exit 0 when every target matched its grants; 10 when anything differed, a target holds standing access, or could not be read. */
export async function reconcile(ctx: CliContext): Promise<ExitCode> {
  const report = await (await ctx.client()).post<ReconcileReportView>('/api/v1/reconcile', {});
  ctx.output.result(report, () => {
    ctx.output.line(
      formatTable(
        [
          { header: 'resource', maxWidth: 40 },
          { header: 'checked' },
          { header: 'held' },
          { header: 'findings' },
          { header: 'standing' },
        ],
        report.resources.map((r) => [
          r.resource_id,
          r.outcome === 'checked'
            ? 'yes'
            : r.outcome === 'not_applicable'
              ? 'n/a (no target state)'
              : 'FAILED',
          r.outcome === 'checked' ? String(r.held) : '',
          String(r.findings.length),
          String(r.standing.length),
        ]),
      ),
    );
    for (const r of report.resources) {
      if (r.error)
        ctx.output.line(
          `${sanitizeText(r.resource_id)}: could not inspect: ${sanitizeText(r.error)} (${r.reference})`,
        );
      for (const f of r.findings) {
        const what = Object.entries(f.artefacts)
          .map(([key, value]) => `${key}=${String(value)}`)
          .join(' ');
        ctx.output.line(
          sanitizeText(
            `${r.resource_id}: ${f.kind} grant ${f.grant_id} (${what}): ${outcomeText[f.outcome]}${f.error ? `: ${f.error} (${f.reference})` : ''}`,
          ),
        );
      }
      for (const s of r.standing) {
        ctx.output.line(
          sanitizeText(
            `${r.resource_id}: standing access: ${s.holder} holds ${standingVia(s.via)} without a grant (${outcomeText[s.outcome]})`,
          ),
        );
      }
    }
    ctx.output.line(
      report.clean
        ? 'Every target matches its grants.'
        : 'Drift or standing access found: see the audit log (reconcile.*) for the record.',
    );
  });
  return report.clean ? exitCodes.ok : exitCodes.verificationFailed;
}

/** What gives standing access, in a sentence: a role, or a power that is not one (postgres-provisioner.ts). */
function standingVia(via: string): string {
  const powers = ['superuser', 'createrole', 'replication', 'database owner'];
  return powers.includes(via) || via.startsWith('privileges of ') ? via : `role ${via}`;
}
