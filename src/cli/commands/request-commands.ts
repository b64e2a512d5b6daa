/** `portcullis request`, `requests`, `show`, `approve`, `deny` and `cancel`. */

import { setTimeout as sleep } from 'node:timers/promises';
import { parseDurationSeconds } from '../../config/duration.js';
import { requestStates } from '../../core/access-request.js';
import type { RequestView } from '../../http/views.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { formatSeconds, formatTable, relativeTime, sanitizeText } from '../output.js';

const requestStateNames: readonly string[] = requestStates;
/** States `--wait` stops at: access is usable, or it never will be. */
const settledStates = new Set(['active', 'expired', 'revoked', 'denied', 'cancelled', 'failed']);

function approvalsGiven(request: RequestView): number {
  return request.reviews.filter((review) => review.verdict === 'approve').length;
}

/** One line on where a request stands and what it waits for. */
export function describeState(request: RequestView, now: number): string {
  switch (request.state) {
    case 'pending': {
      const missing = Math.max(0, request.approvals_required - approvalsGiven(request));
      const groups = request.approver_groups.map((g) => sanitizeText(g)).join(', ') || '(any approver)';
      const lapses = request.review_by ? `; lapses ${relativeTime(request.review_by, now)}` : '';
      return `pending: waiting for ${missing} more approval${missing === 1 ? '' : 's'} (of ${request.approvals_required}) from ${groups}; policy ${sanitizeText(request.policy_id)}${lapses}`;
    }
    case 'approved':
      return 'approved: access is being set up';
    case 'active':
      return `active: expires ${relativeTime(request.expires_at, now)}${request.grant_id ? `, grant ${request.grant_id}` : ''}`;
    case 'denied': {
      const denial = request.reviews.find((review) => review.verdict === 'deny');
      return `denied${denial ? ` by ${sanitizeText(denial.reviewer)}: ${sanitizeText(denial.reason) || '(no reason)'}` : ''}`;
    }
    default:
      return `${sanitizeText(request.state)}${request.end_reason ? `: ${sanitizeText(request.end_reason)}` : ''}`;
  }
}

function printRequest(ctx: CliContext, request: RequestView): void {
  const now = ctx.io.now();
  ctx.output.line(
    `Request ${request.id}: ${sanitizeText(request.resource)}/${sanitizeText(request.role)} for ${formatSeconds(request.duration_seconds)}`,
  );
  ctx.output.line(`  ${describeState(request, now)}`);
  if (request.state === 'active' && request.grant_id) {
    ctx.output.line(
      `  next: portcullis creds ${request.grant_id}   (or: portcullis token ${request.grant_id})`,
    );
  }
}

export interface RequestOptions {
  readonly for: string;
  readonly reason?: string;
  readonly ticket?: string;
  readonly wait?: boolean;
  readonly timeout?: string;
}

function durationSeconds(flag: string, value: string): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === null)
    throw usageError(`${flag} ${JSON.stringify(value)} is not a duration; use e.g. 90s, 45m, 2h, 1d`);
  return seconds;
}

/** Exit code once `--wait` has seen a request settle. */
function exitCodeOfSettled(state: string): number {
  if (state === 'active') return exitCodes.ok;
  if (state === 'denied') return exitCodes.forbidden;
  if (state === 'failed') return exitCodes.unavailable;
  return exitCodes.conflict;
}

/** Polls a request until it is active or can no longer become active. */
async function waitForRequest(
  ctx: CliContext,
  initial: RequestView,
  timeoutSeconds: number,
): Promise<RequestView> {
  const client = await ctx.client();
  const deadline = ctx.io.now() + timeoutSeconds * 1000;
  let current = initial;
  let interval = 1000;
  while (!settledStates.has(current.state)) {
    if (ctx.io.now() >= deadline) {
      throw new CliError(
        'wait_timeout',
        `Request ${current.id} is still ${current.state} after ${formatSeconds(timeoutSeconds)}`,
        exitCodes.conflict,
        { hint: `check later with \`portcullis show ${current.id}\`` },
      );
    }
    await sleep(interval);
    interval = Math.min(interval * 1.5, 5000);
    const next = await client.get<RequestView>(`/api/v1/requests/${encodeURIComponent(current.id)}`);
    if (next.state !== current.state || approvalsGiven(next) !== approvalsGiven(current)) {
      ctx.output.note(`… ${describeState(next, ctx.io.now())}`);
    }
    current = next;
  }
  return current;
}

/** `portcullis request RESOURCE ROLE --for 45m --reason TEXT [--ticket T] [--wait]`. Returns the exit code. */
export async function createRequest(
  ctx: CliContext,
  resource: string,
  role: string,
  options: RequestOptions,
): Promise<number> {
  durationSeconds('--for', options.for);
  const timeoutSeconds = durationSeconds('--timeout', options.timeout ?? '1h');
  const client = await ctx.client();
  let request = await client.post<RequestView>('/api/v1/requests', {
    resource,
    role,
    duration: options.for,
    reason: options.reason ?? '',
    ...(options.ticket === undefined ? {} : { ticket: options.ticket }),
  });
  if (options.wait && !settledStates.has(request.state)) {
    if (!ctx.output.json) printRequest(ctx, request);
    if (!ctx.output.json) ctx.output.note('Waiting (Ctrl-C stops waiting; the request stays)…');
    request = await waitForRequest(ctx, request, timeoutSeconds);
    ctx.output.result(request, () => ctx.output.line(`  ${describeState(request, ctx.io.now())}`));
    if (!ctx.output.json && request.state === 'active' && request.grant_id) {
      ctx.output.line(
        `  next: portcullis creds ${request.grant_id}   (or: portcullis token ${request.grant_id})`,
      );
    }
    return exitCodeOfSettled(request.state);
  }
  ctx.output.result(request, () => printRequest(ctx, request));
  return options.wait ? exitCodeOfSettled(request.state) : exitCodes.ok;
}

export interface ListRequestsOptions {
  readonly reviewable?: boolean;
  readonly all?: boolean;
  readonly state?: string;
  readonly limit?: string;
  readonly cursor?: string;
}

/** `portcullis requests [--reviewable | --all] [--state pending,active] [--cursor C]`. */
export async function listRequests(ctx: CliContext, options: ListRequestsOptions): Promise<void> {
  if (options.reviewable && options.all) throw usageError('Use either --reviewable or --all, not both');
  if (options.state) {
    const unknown = options.state.split(',').filter((s) => !requestStateNames.includes(s));
    if (unknown.length > 0) {
      throw usageError(`Unknown state ${unknown.join(', ')}; states are ${requestStateNames.join(', ')}`);
    }
  }
  const limit = options.limit === undefined ? undefined : Number(options.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 500)) {
    throw usageError('--limit must be a whole number from 1 to 500');
  }
  const scope = options.reviewable ? 'reviewable' : options.all ? 'all' : 'mine';
  const { requests, next_cursor } = await (await ctx.client()).get<{
    requests: RequestView[];
    next_cursor?: string | null;
  }>('/api/v1/requests', {
    scope,
    state: options.state,
    limit: options.limit,
    cursor: options.cursor,
  });
  const more = next_cursor ?? null;
  ctx.output.result({ requests, next_cursor: more }, () => {
    if (more !== null) ctx.output.note(`More requests: add --cursor ${sanitizeText(more)}`);
    if (requests.length === 0) {
      ctx.output.line(
        scope === 'reviewable'
          ? 'Nothing to review.'
          : `No requests${options.state ? ` in state ${options.state}` : ''}.`,
      );
      return;
    }
    const now = ctx.io.now();
    ctx.output.line(
      formatTable(
        [
          { header: 'id' },
          { header: 'requester', maxWidth: 28 },
          { header: 'access', maxWidth: 40 },
          { header: 'state' },
          { header: 'for' },
          { header: 'when' },
          { header: 'reason', maxWidth: 48 },
        ],
        requests.map((r) => [
          r.id,
          r.requester,
          `${r.resource}/${r.role}`,
          r.state === 'pending' ? `pending ${approvalsGiven(r)}/${r.approvals_required}` : r.state,
          formatSeconds(r.duration_seconds),
          r.state === 'active'
            ? `expires ${relativeTime(r.expires_at, now)}`
            : `asked ${relativeTime(r.created_at, now)}`,
          r.reason,
        ]),
      ),
    );
  });
}

/** `portcullis show REQUEST`: everything about one request. */
export async function showRequest(ctx: CliContext, id: string): Promise<void> {
  const request = await (await ctx.client()).get<RequestView>(`/api/v1/requests/${encodeURIComponent(id)}`);
  ctx.output.result(request, () => {
    const now = ctx.io.now();
    const row = (label: string, value: string) => ctx.output.line(`  ${label.padEnd(12)} ${value}`);
    ctx.output.line(`Request ${request.id}`);
    row('requester', sanitizeText(request.requester));
    row(
      'access',
      `${sanitizeText(request.resource)}/${sanitizeText(request.role)} for ${formatSeconds(request.duration_seconds)}`,
    );
    row('reason', sanitizeText(request.reason) || '(none)');
    if (request.ticket) row('ticket', sanitizeText(request.ticket));
    row('state', describeState(request, now));
    row(
      'policy',
      `${sanitizeText(request.policy_id)}: ${request.approvals_required} approval(s) from ${request.approver_groups.map((g) => sanitizeText(g)).join(', ') || '-'}`,
    );
    row('created', `${request.created_at} (${relativeTime(request.created_at, now)})`);
    if (request.activated_at)
      row('activated', `${request.activated_at} (${relativeTime(request.activated_at, now)})`);
    if (request.expires_at)
      row('expires', `${request.expires_at} (${relativeTime(request.expires_at, now)})`);
    if (request.ended_at)
      row('ended', `${request.ended_at}${request.end_reason ? `: ${sanitizeText(request.end_reason)}` : ''}`);
    if (request.grant_id) row('grant', request.grant_id);
    for (const review of request.reviews) {
      row(
        review.verdict === 'approve' ? 'approved by' : 'denied by',
        `${sanitizeText(review.reviewer)} ${relativeTime(review.at, now)}${review.reason ? `: ${sanitizeText(review.reason)}` : ''}`,
      );
    }
  });
}

/** `portcullis approve REQUEST [--reason]` and `portcullis deny REQUEST --reason`. */
export async function reviewRequest(
  ctx: CliContext,
  verdict: 'approve' | 'deny',
  id: string,
  reason: string | undefined,
): Promise<void> {
  const request = await (await ctx.client()).post<RequestView>(
    `/api/v1/requests/${encodeURIComponent(id)}/${verdict}`,
    { reason: reason ?? '' },
  );
  ctx.output.result(request, () => {
    ctx.output.line(
      `${verdict === 'approve' ? 'Approved' : 'Denied'} request ${request.id} (${sanitizeText(request.requester)}: ${sanitizeText(request.resource)}/${sanitizeText(request.role)})`,
    );
    ctx.output.line(`  ${describeState(request, ctx.io.now())}`);
  });
}

/** `portcullis cancel REQUEST`: withdraw your own request. */
export async function cancelRequest(ctx: CliContext, id: string): Promise<void> {
  const request = await (await ctx.client()).post<RequestView>(
    `/api/v1/requests/${encodeURIComponent(id)}/cancel`,
  );
  ctx.output.result(request, () => ctx.output.line(`Cancelled request ${request.id}`));
}
