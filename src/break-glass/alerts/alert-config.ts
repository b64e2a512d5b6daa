/**
 * Configuration of break-glass alert channels (`break_glass.alert_channels` in the config file) and
 * the factory that turns it into {@link AlertChannel}s. Secrets (the webhook signing secret, a
 * webhook URL that embeds a token, the SMTP password) are secret references, resolved by the caller.
 *
 * @example
 * ```yaml
 * alert_channels:
 *   - name: soc-webhook
 *     type: webhook
 *     url: https://soc.example.com/hooks/portcullis
 *     secret: { env: PORTCULLIS_ALERT_WEBHOOK_SECRET }
 *     timeout: 5s
 *   - name: security-mail
 *     type: smtp
 *     host: smtp.example.com
 *     port: 587
 *     starttls: true
 *     auth: { user: portcullis, pass: { file: /run/secrets/smtp-pass } }
 *     from: portcullis@example.com
 *     to: [security@example.com, oncall@example.com]
 * ```
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseDurationSeconds } from '../../config/duration.js';
import { type SecretRef, secretRef } from '../../config/schema.js';
import type { Secret } from '../../config/secret.js';
import { PortcullisError } from '../../core/errors.js';
import { minWebhookSecretLength, webhookUrlProblem } from '../../webhooks/signed-webhook.js';
import type { AlertChannel } from '../ports.js';
import { SmtpAlertChannel, type SmtpServerOptions } from './smtp-channel.js';
import { WebhookAlertChannel } from './webhook-channel.js';

export const channelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, "-" or "_" (at most 63)');

const timeout = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const seconds = parseDurationSeconds(value);
  if (seconds === null || seconds > 120) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration from 1s to 2m, such as 5s' });
    return z.NEVER;
  }
  return seconds;
});

const email = z.email();

/** The fields of a webhook channel; notification channels extend them. */
export const webhookChannelFields = z
  .object({
    name: channelName,
    type: z.literal('webhook'),
    /** `https://…`, or `http://` to a loopback address only. A secret ref when the URL embeds a token. */
    url: z.union([z.string().min(1), secretRef]),
    /** HMAC-SHA256 key for the `Portcullis-Signature` header; at least 32 characters. */
    secret: secretRef,
    /** Time allowed for one delivery attempt (connect, send, response headers). */
    timeout: timeout.default(5),
  })
  .strict();

/** The fields of an SMTP channel; notification channels extend them. */
export const smtpChannelFields = z
  .object({
    name: channelName,
    type: z.literal('smtp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    /** Implicit TLS from the first byte (usually port 465). */
    secure: z.boolean().default(false),
    /** Require STARTTLS on a plain connection (port 587/25); the mail is never sent in clear. */
    starttls: z.boolean().default(true),
    /** PEM file of CA certificates to trust for this server, instead of the system store. */
    ca_file: z.string().min(1).optional(),
    auth: z
      .object({ user: z.string().min(1), pass: secretRef })
      .strict()
      .optional(),
    from: email,
    to: z.array(email).min(1),
    /** Time allowed for connecting, the greeting and each SMTP command. */
    timeout: timeout.default(10),
  })
  .strict();

/** The TLS rules of an SMTP channel, on its fields or on an extension of them. */
export function withSmtpTlsRules<T extends z.ZodType<{ secure: boolean; starttls: boolean; auth?: unknown }>>(
  schema: T,
) {
  return schema
    .refine((channel) => !(channel.secure && channel.starttls), {
      message: 'secure (implicit TLS) and starttls exclude each other; choose one',
      path: ['starttls'],
    })
    .refine((channel) => channel.auth === undefined || channel.secure || channel.starttls, {
      message: 'SMTP credentials are never sent without TLS: set secure or starttls',
      path: ['auth'],
    });
}

const smtpChannel = withSmtpTlsRules(smtpChannelFields);

/** One alert channel as written in the configuration. */
export const alertChannelSchema = z.discriminatedUnion('type', [webhookChannelFields, smtpChannel]);
export type AlertChannelConfig = z.output<typeof alertChannelSchema>;

/** The list of channels; names are unique because reports and audit events name the channel. */
export const alertChannelsSchema = z
  .array(alertChannelSchema)
  .default([])
  .superRefine((channels, ctx) => {
    const seen = new Set<string>();
    channels.forEach((channel, index) => {
      if (seen.has(channel.name)) {
        ctx.addIssue({
          code: 'custom',
          message: `duplicate channel name ${channel.name}`,
          path: [index, 'name'],
        });
      }
      seen.add(channel.name);
    });
  });

/** Resolves a secret reference found at `path` of the configuration (env var or file). */
export type ResolveSecret = (ref: SecretRef, path: string) => Secret;

/** Optional dependencies, for tests and the composition root. */
export interface AlertChannelFactoryOptions {
  /** Epoch ms; used for the webhook signature timestamp. */
  readonly now?: () => number;
  /** Reads `ca_file`; defaults to `fs.readFileSync(path, 'utf8')`. */
  readonly readFile?: (path: string) => string;
}

type Issues = { path: string; message: string }[];

/** A webhook channel's URL and signing secret, resolved and checked; problems go to `issues`. */
export function resolveWebhookTarget(
  channel: z.output<typeof webhookChannelFields>,
  at: string,
  resolveSecret: ResolveSecret,
  issues: Issues,
): { url: string; secret: string } {
  const url =
    typeof channel.url === 'string' ? channel.url : resolveSecret(channel.url, `${at}.url`).reveal();
  const urlProblem = webhookUrlProblem(url);
  // The URL may be a secret: the message never repeats it.
  if (urlProblem) issues.push({ path: `${at}.url`, message: urlProblem });
  const secret = resolveSecret(channel.secret, `${at}.secret`);
  if (secret.reveal().length < minWebhookSecretLength) {
    issues.push({ path: `${at}.secret`, message: `must be at least ${minWebhookSecretLength} characters` });
  }
  return { url, secret: secret.reveal() };
}

/** An SMTP channel's server settings, CA file read and password resolved; problems go to `issues`. */
export function resolveSmtpServer(
  channel: z.output<typeof smtpChannelFields>,
  at: string,
  resolveSecret: ResolveSecret,
  readFile: (path: string) => string,
  issues: Issues,
): SmtpServerOptions {
  let ca: string | undefined;
  if (channel.ca_file) {
    try {
      ca = readFile(channel.ca_file);
    } catch (error) {
      issues.push({
        path: `${at}.ca_file`,
        message: `cannot read ${channel.ca_file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      });
    }
  }
  return {
    host: channel.host,
    port: channel.port,
    secure: channel.secure,
    starttls: channel.starttls,
    ...(ca !== undefined ? { ca } : {}),
    ...(channel.auth
      ? { auth: { user: channel.auth.user, pass: resolveSecret(channel.auth.pass, `${at}.auth.pass`) } }
      : {}),
    timeoutMs: channel.timeout * 1000,
  };
}

/** Reads a file as UTF-8 text (the default of `readFile` options). */
export const readTextFile = (path: string) => readFileSync(path, 'utf8');

/**
 * Builds the channels of a parsed configuration. Every problem (an unreadable secret, a short
 * signing secret, a bad URL) is collected and reported together as one `config_invalid` error.
 *
 * @param prefix the configuration path of the list, used in error messages.
 */
export function createAlertChannels(
  config: readonly AlertChannelConfig[],
  resolveSecret: ResolveSecret,
  options: AlertChannelFactoryOptions & { readonly prefix?: string } = {},
): AlertChannel[] {
  const prefix = options.prefix ?? 'break_glass.alert_channels';
  const readFile = options.readFile ?? readTextFile;
  const issues: Issues = [];
  const channels: AlertChannel[] = [];
  for (const [index, channel] of config.entries()) {
    const at = `${prefix}[${index}]`;
    if (channel.type === 'webhook') {
      const target = resolveWebhookTarget(channel, at, resolveSecret, issues);
      channels.push(
        new WebhookAlertChannel({
          name: channel.name,
          ...target,
          timeoutMs: channel.timeout * 1000,
          ...(options.now ? { now: options.now } : {}),
        }),
      );
    } else {
      const server = resolveSmtpServer(channel, at, resolveSecret, readFile, issues);
      channels.push(
        new SmtpAlertChannel({ name: channel.name, ...server, from: channel.from, to: channel.to }),
      );
    }
  }
  if (issues.length > 0) {
    throw new PortcullisError('config_invalid', 'The break-glass alert channels are not valid', { issues });
  }
  return channels;
}
