/** `portcullis gateway sessions` and `portcullis gateway end`: open database-gateway sessions. */
import type { GatewaySessionView } from '../../http/routes/gateway-routes.js';
import type { CliContext } from '../context.js';
import { formatTable, relativeTime, sanitizeText } from '../output.js';

/** `portcullis gateway sessions [--all]`. */
export async function listGatewaySessions(ctx: CliContext, options: { all?: boolean }): Promise<void> {
  const { sessions } = await (await ctx.client()).get<{ sessions: GatewaySessionView[] }>(
    '/api/v1/gateway/sessions',
    { scope: options.all ? 'all' : 'mine' },
  );
  ctx.output.result({ sessions }, () => {
    if (sessions.length === 0) {
      ctx.output.line('No open gateway sessions.');
      return;
    }
    const now = ctx.io.now();
    ctx.output.line(
      formatTable(
        [
          { header: 'session' },
          { header: 'principal', maxWidth: 28 },
          { header: 'resource', maxWidth: 24 },
          { header: 'grant' },
          { header: 'client', maxWidth: 40 },
          { header: 'tls' },
          { header: 'started' },
        ],
        sessions.map((s) => [
          s.id,
          s.principal,
          s.resource,
          s.grant_id,
          [s.client_address ?? '?', s.application_name].filter(Boolean).join(' '),
          s.tls ? 'yes' : 'no',
          relativeTime(s.started_at, now),
        ]),
      ),
    );
  });
}

/** `portcullis gateway end SESSION [--reason TEXT]`: end one session; its grant stays. */
export async function endGatewaySession(
  ctx: CliContext,
  id: string,
  reason: string | undefined,
): Promise<void> {
  const answer = await (await ctx.client()).post<{ session: GatewaySessionView; status: 'ending' }>(
    `/api/v1/gateway/sessions/${encodeURIComponent(id)}/end`,
    { reason: reason ?? '' },
  );
  ctx.output.result(answer, () =>
    ctx.output.line(
      `Session ${sanitizeText(answer.session.id)} (${sanitizeText(answer.session.principal)} on ${sanitizeText(answer.session.resource)}) is ending; grant ${sanitizeText(answer.session.grant_id)} stays active`,
    ),
  );
}
