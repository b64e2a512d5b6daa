/**
 * The words and links of a notification, shared by every channel. Built only from the
 * notification, which carries no secret: no token, no password, no credential.
 */
import { clean } from '../break-glass/alerts/smtp-channel.js';
import { formatDuration } from '../config/duration.js';
import type { AccessNotification } from '../core/notification.js';

/** One human line, e.g. "alice requests orders-db/readonly for 1h: needs 1 approval". */
export function notificationSummary(n: AccessNotification): string {
  const what = `${n.resourceId}/${n.role}`;
  const who = clean(n.requesterId);
  const by = n.actor === 'system' ? '' : ` by ${clean(n.actor)}`;
  switch (n.event) {
    case 'request.created':
      return `${who} requests ${what} for ${formatDuration(n.durationSeconds)}: needs ${n.approvalsRequired} approval${n.approvalsRequired === 1 ? '' : 's'}`;
    case 'request.reminded':
      return `Reminder: ${who} still waits for ${what}: ${n.approvalsGiven} of ${n.approvalsRequired} approval${n.approvalsRequired === 1 ? '' : 's'}${n.reviewBy === null ? '' : `, lapses at ${new Date(n.reviewBy).toISOString()}`}`;
    case 'request.approved':
      return `${who}'s request for ${what} was approved${n.actor === 'system' ? ' by policy' : by}`;
    case 'request.denied':
      return `${who}'s request for ${what} was denied${by}`;
    case 'request.cancelled':
      return `${who}'s request for ${what} was cancelled${by}`;
    case 'request.expired':
      return `${who}'s request for ${what} lapsed: it was not reviewed in time`;
    case 'grant.activated':
      return `${who} now has ${what}${n.expiresAt === null ? '' : ` until ${new Date(n.expiresAt).toISOString()}`}`;
    case 'grant.failed':
      return `${who}'s access to ${what} could not be set up`;
    case 'grant.expiring':
      return `${who}'s access to ${what} ends${n.expiresAt === null ? ' soon' : ` at ${new Date(n.expiresAt).toISOString()}`}: ask again to go on`;
    case 'grant.expired':
      return `${who}'s access to ${what} expired`;
    case 'grant.revoked':
      return `${who}'s access to ${what} was revoked${by}`;
  }
}

export interface NotificationLinks {
  /** The request's page in the web console, where an approver approves or denies it. */
  readonly request: string;
  /** CLI commands that act on it, for the notification's audience. */
  readonly commands: readonly string[];
}

export function notificationLinks(publicUrl: string, n: AccessNotification): NotificationLinks {
  const id = encodeURIComponent(n.requestId);
  const commands =
    n.event === 'request.created' || n.event === 'request.reminded'
      ? [`portcullis approve ${n.requestId}`, `portcullis deny ${n.requestId} --reason "…"`]
      : n.event === 'grant.activated' && n.grantId !== null
        ? [`portcullis creds ${n.grantId}`]
        : [`portcullis show ${n.requestId}`];
  return { request: `${publicUrl}/console/requests/${id}`, commands };
}

export function notificationSubject(n: AccessNotification): string {
  return `[Portcullis] ${notificationSummary(n)}`.slice(0, 200);
}

/** The plain-text body of an e-mail. */
export function notificationText(publicUrl: string, n: AccessNotification): string {
  const line = (label: string, value: string) => `${`${label}:`.padEnd(12)}${value}`;
  const links = notificationLinks(publicUrl, n);
  return [
    notificationSummary(n),
    '',
    line('Event', n.event),
    line('Request', n.requestId),
    line('Requester', clean(n.requesterId)),
    line('Access', `${n.resourceId}/${n.role} for ${formatDuration(n.durationSeconds)}`),
    line('Reason', clean(n.requestReason)),
    line('Ticket', n.ticket ? clean(n.ticket) : '-'),
    ...(n.stepReason ? [line('Why', clean(n.stepReason))] : []),
    ...(n.event === 'request.created' || n.event === 'request.reminded'
      ? [
          line(
            'Approvers',
            n.approverGroups.length > 0 ? n.approverGroups.join(', ') : 'any authorised approver',
          ),
        ]
      : []),
    line('At', new Date(n.at).toISOString()),
    '',
    `See it: ${links.request}`,
    ...links.commands.map((command) => `Act:    ${command}`),
    '',
    'Portcullis sends no credentials by e-mail. You receive this because of your role in the',
    'request or because this address is on the channel.',
    '',
  ].join('\n');
}

/** The JSON body of a webhook: Slack-compatible (`text`), with the facts for machines. */
export function notificationJson(publicUrl: string, n: AccessNotification): string {
  const links = notificationLinks(publicUrl, n);
  return JSON.stringify({
    id: n.id,
    event: n.event,
    text: `${notificationSummary(n)} — ${links.request}`,
    notification: {
      id: n.id,
      event: n.event,
      at: new Date(n.at).toISOString(),
      actor: n.actor,
      request_id: n.requestId,
      grant_id: n.grantId,
      requester: n.requesterId,
      resource: n.resourceId,
      role: n.role,
      duration_seconds: n.durationSeconds,
      reason: n.requestReason,
      ticket: n.ticket,
      step_reason: n.stepReason,
      approvals_required: n.approvalsRequired,
      approver_groups: n.approverGroups,
      expires_at: n.expiresAt === null ? null : new Date(n.expiresAt).toISOString(),
      links,
    },
  });
}
