/**
 * Break-glass alerts as signed webhooks (src/webhooks/signed-webhook.ts): one JSON `POST` per
 * alert, with `Portcullis-Alert-Id: <alert id>`, the same on every retry of one alert, so that
 * receivers drop duplicates by it (see docs/break-glass.md, "Receiving alerts").
 *
 * The body is Slack-compatible (`text` is the one-line summary) and carries no secret.
 */
import { postSignedJson, type WebhookTarget } from '../../webhooks/signed-webhook.js';
import type { AlertChannel, BreakGlassAlert } from '../ports.js';

export const alertIdHeader = 'portcullis-alert-id';

/** The JSON body of one alert. */
export function webhookBody(alert: BreakGlassAlert): string {
  return JSON.stringify({
    id: alert.id,
    event: `break_glass.${alert.kind}`,
    text: alert.drill ? `[DRILL] ${alert.summary}` : alert.summary,
    alert: {
      id: alert.id,
      kind: alert.kind,
      account_id: alert.accountId,
      activation_id: alert.activationId,
      drill: alert.drill,
      custodians: alert.custodians,
      reason: alert.reason,
      incident: alert.incident,
      at: new Date(alert.at).toISOString(),
      summary: alert.summary,
    },
  });
}

export interface WebhookAlertChannelOptions extends WebhookTarget {
  readonly name: string;
}

/** Delivers each alert as one signed `POST`. */
export class WebhookAlertChannel implements AlertChannel {
  readonly kind = 'webhook';
  readonly name: string;
  readonly #options: WebhookAlertChannelOptions;

  constructor(options: WebhookAlertChannelOptions) {
    this.name = options.name;
    this.#options = options;
  }

  async send(alert: BreakGlassAlert): Promise<void> {
    await postSignedJson(
      this.#options,
      {
        label: `webhook ${this.name}`,
        userAgent: 'Portcullis-Alerts/1',
        headers: { [alertIdHeader]: alert.id },
      },
      webhookBody(alert),
    );
  }
}
