/** Break-glass alert adapters: the channel configuration and factory, the channels, the dispatcher. */

export {
  type SignatureCheck,
  signatureHeader,
  signWebhookPayload,
  verifyWebhookSignature,
} from '../../webhooks/signed-webhook.js';
export {
  type AlertChannelConfig,
  type AlertChannelFactoryOptions,
  alertChannelSchema,
  alertChannelsSchema,
  createAlertChannels,
  type ResolveSecret,
} from './alert-config.js';
export {
  backoffDelayMs,
  RetryingAlertDispatcher,
  type RetryingAlertDispatcherOptions,
} from './dispatcher.js';
export { alertSubject, alertText, SmtpAlertChannel, type SmtpAlertChannelOptions } from './smtp-channel.js';
export {
  alertIdHeader,
  WebhookAlertChannel,
  type WebhookAlertChannelOptions,
  webhookBody,
} from './webhook-channel.js';
