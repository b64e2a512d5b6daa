/**
 * The two delivery routes of access notifications: a signed JSON webhook (Slack-compatible `text`)
 * and e-mail over SMTP. Both reuse the transports of the break-glass alerts, so signing, TLS and
 * error reporting behave the same everywhere.
 */

import { type SmtpServerOptions, sendOneMail } from '../break-glass/alerts/smtp-channel.js';
import type { AccessNotification, NotifiableEvent, NotificationAudience } from '../core/notification.js';
import { postSignedJson, type WebhookTarget } from '../webhooks/signed-webhook.js';
import type { NotificationChannel } from './ports.js';
import { notificationJson, notificationSubject, notificationText } from './render.js';

/** Receivers drop duplicates by it: the audit event id, the same on every retry and replica. */
export const notificationIdHeader = 'portcullis-notification-id';

export interface ChannelFilter {
  readonly events: ReadonlySet<NotifiableEvent>;
  /** Null: every resource. */
  readonly resources: ReadonlySet<string> | null;
}

function wants(filter: ChannelFilter, event: NotifiableEvent, resourceId: string): boolean {
  return filter.events.has(event) && (filter.resources === null || filter.resources.has(resourceId));
}

export interface WebhookNotificationChannelOptions extends WebhookTarget {
  readonly name: string;
  readonly filter: ChannelFilter;
  /** Base of the links in the payload (`server.public_url`). */
  readonly publicUrl: string;
}

export class WebhookNotificationChannel implements NotificationChannel {
  readonly kind = 'webhook';
  readonly audiences: readonly NotificationAudience[] = [];
  readonly name: string;
  readonly #options: WebhookNotificationChannelOptions;

  constructor(options: WebhookNotificationChannelOptions) {
    this.name = options.name;
    this.#options = options;
  }

  wants(event: NotifiableEvent, resourceId: string): boolean {
    return wants(this.#options.filter, event, resourceId);
  }

  async send(notification: AccessNotification): Promise<void> {
    const o = this.#options;
    await postSignedJson(
      o,
      {
        label: `webhook ${this.name}`,
        userAgent: 'Portcullis-Notifications/1',
        headers: { [notificationIdHeader]: notification.id },
      },
      notificationJson(o.publicUrl, notification),
    );
  }
}

export interface SmtpNotificationChannelOptions extends SmtpServerOptions {
  readonly name: string;
  readonly from: string;
  /** Always addressed, whoever the notification is for. */
  readonly to: readonly string[];
  readonly audiences: readonly NotificationAudience[];
  readonly filter: ChannelFilter;
  readonly publicUrl: string;
}

export class SmtpNotificationChannel implements NotificationChannel {
  readonly kind = 'smtp';
  readonly name: string;
  readonly audiences: readonly NotificationAudience[];
  readonly #options: SmtpNotificationChannelOptions;

  constructor(options: SmtpNotificationChannelOptions) {
    this.name = options.name;
    this.audiences = options.audiences;
    this.#options = options;
  }

  wants(event: NotifiableEvent, resourceId: string): boolean {
    return wants(this.#options.filter, event, resourceId);
  }

  /** One message to the fixed list and the audience together; nothing to send when both are empty. */
  async send(notification: AccessNotification, recipients: readonly string[]): Promise<void> {
    const o = this.#options;
    const to = [...new Set([...o.to, ...recipients])];
    if (to.length === 0) return;
    await sendOneMail(o, `smtp ${this.name}`, {
      from: o.from,
      to,
      subject: notificationSubject(notification),
      text: notificationText(o.publicUrl, notification),
      messageId: `<${notification.id}.${this.name}@portcullis.notifications>`,
      headers: {
        'X-Portcullis-Notification-Id': notification.id,
        'X-Portcullis-Event': notification.event,
      },
    });
  }
}
