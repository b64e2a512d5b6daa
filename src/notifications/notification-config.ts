/**
 * The `notifications` section: channels that tell approvers about new requests and requesters
 * about what happened to theirs (docs/notifications.md).
 *
 * @example
 * ```yaml
 * notifications:
 *   channels:
 *     - name: access-requests
 *       type: webhook
 *       url: { env: SLACK_RELAY_URL }
 *       secret: { env: PORTCULLIS_NOTIFY_WEBHOOK_SECRET }
 *       events: [request.created, request.approved, request.denied]
 *     - name: approver-mail
 *       type: smtp
 *       host: smtp.example.com
 *       from: portcullis@example.com
 *       recipients: [approvers, requester]
 *       resources: [orders-db]
 * ```
 */
import { z } from 'zod';
import {
  type ResolveSecret,
  readTextFile,
  resolveSmtpServer,
  resolveWebhookTarget,
  smtpChannelFields,
  webhookChannelFields,
  withSmtpTlsRules,
} from '../break-glass/alerts/alert-config.js';
import { parseDurationSeconds } from '../config/duration.js';
import { zodIssues } from '../config/zod-issues.js';
import { defaultNotificationEvents, notifiableEvents } from '../core/notification.js';
import { SmtpNotificationChannel, WebhookNotificationChannel } from './channels.js';
import type { NotificationChannel } from './ports.js';

const filterFields = {
  /** Audit event types the channel hears about (default: new requests, decisions, failures, revocations). */
  events: z
    .array(z.enum(notifiableEvents))
    .min(1)
    .default([...defaultNotificationEvents]),
  /** Only requests for these resources (default: all). */
  resources: z.array(z.string().min(1)).min(1).optional(),
};

const webhook = webhookChannelFields.extend(filterFields);

const smtp = withSmtpTlsRules(
  smtpChannelFields.extend({
    ...filterFields,
    /** Fixed addresses that get every notification of the channel. */
    to: z.array(z.email()).default([]),
    /** People addressed by their e-mail as the identity provider gave it at their last login. */
    recipients: z.array(z.enum(['approvers', 'requester'])).default([]),
  }),
).refine((channel) => channel.to.length > 0 || channel.recipients.length > 0, {
  message: 'needs `to` addresses or `recipients` (approvers, requester)',
  path: ['to'],
});

const atLeastAMinute = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const seconds = parseDurationSeconds(value);
  if (seconds === null || seconds < 60) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1m, such as 4h' });
    return z.NEVER;
  }
  return seconds;
});

export const notificationsSchema = z
  .object({
    channels: z.array(z.discriminatedUnion('type', [webhook, smtp])).default([]),
    /** Approvers are reminded once of a request still pending this long after it was made. */
    remind_after: atLeastAMinute.optional(),
    /** Requesters are warned once this long before their access ends. */
    warn_before_expiry: atLeastAMinute.optional(),
    /** Delivery attempts per notification and channel before it is given up (and audited). */
    max_attempts: z.number().int().min(1).max(20).default(6),
  })
  .strict();

export interface NotificationSettings {
  readonly channels: readonly NotificationChannel[];
  readonly maxAttempts: number;
  /** Seconds after a request was made at which its approvers are reminded; null: never. */
  readonly remindAfterSeconds: number | null;
  /** Seconds before a grant's end at which its requester is warned; null: never. */
  readonly warnBeforeExpirySeconds: number | null;
}

export const noNotifications: NotificationSettings = {
  channels: [],
  maxAttempts: 6,
  remindAfterSeconds: null,
  warnBeforeExpirySeconds: null,
};

/** Resolves the section (secrets, CA files, cross-checks against the resources); every problem has its path. */
export function resolveNotifications(
  section: unknown,
  context: {
    readonly resourceIds: ReadonlySet<string>;
    readonly publicUrl: string;
    readonly resolveSecret: ResolveSecret;
    readonly readFile?: (path: string) => string;
    readonly now?: () => number;
  },
): { settings: NotificationSettings; issues: { path: string; message: string }[] } {
  if (section === undefined) return { settings: noNotifications, issues: [] };
  const parsed = notificationsSchema.safeParse(section);
  if (!parsed.success) {
    return {
      settings: noNotifications,
      issues: zodIssues(parsed.error).map((issue) => ({
        path: `notifications${issue.path.startsWith('[') || issue.path === '' ? '' : '.'}${issue.path}`,
        message: issue.message,
      })),
    };
  }
  const issues: { path: string; message: string }[] = [];
  const names = new Set<string>();
  const channels = parsed.data.channels.map((channel, index): NotificationChannel => {
    const at = `notifications.channels[${index}]`;
    if (names.has(channel.name))
      issues.push({ path: `${at}.name`, message: `duplicate channel name ${channel.name}` });
    names.add(channel.name);
    for (const resource of channel.resources ?? [])
      if (!context.resourceIds.has(resource))
        issues.push({ path: `${at}.resources`, message: `unknown resource "${resource}"` });
    const filter = {
      events: new Set(channel.events),
      resources: channel.resources ? new Set(channel.resources) : null,
    };
    if (channel.type === 'webhook') {
      return new WebhookNotificationChannel({
        name: channel.name,
        ...resolveWebhookTarget(channel, at, context.resolveSecret, issues),
        timeoutMs: channel.timeout * 1000,
        filter,
        publicUrl: context.publicUrl,
        ...(context.now ? { now: context.now } : {}),
      });
    }
    return new SmtpNotificationChannel({
      name: channel.name,
      ...resolveSmtpServer(channel, at, context.resolveSecret, context.readFile ?? readTextFile, issues),
      from: channel.from,
      to: channel.to,
      audiences: [...new Set(channel.recipients)],
      filter,
      publicUrl: context.publicUrl,
    });
  });
  return {
    settings: {
      channels,
      maxAttempts: parsed.data.max_attempts,
      remindAfterSeconds: parsed.data.remind_after ?? null,
      warnBeforeExpirySeconds: parsed.data.warn_before_expiry ?? null,
    },
    issues,
  };
}
