/**
 * What the notification relay (src/app/notification-relay.ts) needs from a delivery route. The
 * adapters (signed webhook, SMTP) live beside this file.
 */
import type { AccessNotification, NotifiableEvent, NotificationAudience } from '../core/notification.js';

export interface NotificationChannel {
  readonly name: string;
  readonly kind: 'webhook' | 'smtp';
  /** Whether this channel takes `event` about `resourceId` (its `events` and `resources` filters). */
  wants(event: NotifiableEvent, resourceId: string): boolean;
  /** People the channel addresses by e-mail besides its fixed list; a webhook addresses nobody. */
  readonly audiences: readonly NotificationAudience[];
  /**
   * Delivers once or throws; retries are the relay's. `recipients` are the e-mail addresses of the
   * notification's audience (approvers or requester) when the channel asked for that audience.
   */
  send(notification: AccessNotification, recipients: readonly string[]): Promise<void>;
}
