/** `portcullis principals list|show|lock|unlock`: administrators lock people out and back in. */
import type { PrincipalView } from '../../http/routes/principal-routes.js';
import type { CliContext } from '../context.js';
import { formatTable, relativeTime, sanitizeText } from '../output.js';

function path(id: string, action = ''): string {
  return `/api/v1/principals/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
}

function standingLine(p: PrincipalView, now: number): string {
  if (p.lock)
    return `locked ${relativeTime(p.lock.at, now)} by ${sanitizeText(p.lock.by)}: ${sanitizeText(p.lock.reason)}`;
  return p.disabled ? 'deactivated by its identity provider (SCIM)' : 'enabled';
}

/** `portcullis principals list [--disabled]`: locked principals, or those SCIM deactivated. */
export async function listPrincipals(ctx: CliContext, options: { disabled?: boolean }): Promise<void> {
  const { principals } = await (await ctx.client()).get<{ principals: PrincipalView[] }>(
    '/api/v1/principals',
    { standing: options.disabled ? 'disabled' : 'locked', limit: '500' },
  );
  ctx.output.result({ principals }, () => {
    if (principals.length === 0) {
      ctx.output.line(options.disabled ? 'No deactivated principals.' : 'No locked principals.');
      return;
    }
    const now = ctx.io.now();
    ctx.output.line(
      formatTable(
        [
          { header: 'principal', maxWidth: 40 },
          { header: 'name', maxWidth: 28 },
          { header: options.disabled ? 'last sign-in' : 'locked' },
          ...(options.disabled
            ? []
            : [
                { header: 'by', maxWidth: 28 },
                { header: 'reason', maxWidth: 60 },
              ]),
        ],
        principals.map((p) =>
          options.disabled
            ? [p.id, p.display_name, p.last_login_at ? relativeTime(p.last_login_at, now) : 'never']
            : [p.id, p.display_name, relativeTime(p.lock?.at, now), p.lock?.by ?? '', p.lock?.reason ?? ''],
        ),
      ),
    );
  });
}

/** `portcullis principals show PRINCIPAL`. */
export async function showPrincipal(ctx: CliContext, id: string): Promise<void> {
  const principal = await (await ctx.client()).get<PrincipalView>(path(id));
  ctx.output.result(principal, () => {
    const now = ctx.io.now();
    ctx.output.line(`principal     ${sanitizeText(principal.id)}`);
    ctx.output.line(`name          ${sanitizeText(principal.display_name)}`);
    ctx.output.line(`groups        ${principal.groups.map((s) => sanitizeText(s)).join(', ') || '(none)'}`);
    ctx.output.line(
      `last sign-in  ${principal.last_login_at ? relativeTime(principal.last_login_at, now) : 'never'}`,
    );
    ctx.output.line(`standing      ${standingLine(principal, now)}`);
  });
}

/** `portcullis principals lock PRINCIPAL --reason TEXT`: ends all of its access now. */
export async function lockPrincipal(ctx: CliContext, id: string, reason: string): Promise<void> {
  const answer = await (await ctx.client()).post<{
    principal: PrincipalView;
    locked: string[];
    cancelled_requests: number;
    revoked_grants: number;
  }>(path(id, 'lock'), { reason });
  ctx.output.result(answer, () => {
    ctx.output.line(
      `Locked ${answer.locked.map((s) => sanitizeText(s)).join(', ')}: ${answer.revoked_grants} grant(s) revoked, ${answer.cancelled_requests} request(s) cancelled; sessions and sign-ins are refused until unlocked`,
    );
  });
}

/** `portcullis principals unlock PRINCIPAL --reason TEXT`: lifts the lock; restores nothing. */
export async function unlockPrincipal(ctx: CliContext, id: string, reason: string): Promise<void> {
  const principal = await (await ctx.client()).post<PrincipalView>(path(id, 'unlock'), { reason });
  ctx.output.result(principal, () => {
    const scim = principal.disabled ? '; still deactivated by its identity provider (SCIM)' : '';
    ctx.output.line(
      `Unlocked ${sanitizeText(principal.id)}${scim}. Ended access stays ended: new requests are needed`,
    );
  });
}
