/**
 * Break-glass alerts by e-mail over SMTP (nodemailer): one plain-text message per alert to a fixed
 * recipient list. TLS is either implicit (`secure`, port 465) or required through STARTTLS; the
 * server certificate is always verified (against `ca` when given) and TLS 1.2 is the floor.
 * Credentials are never offered over a plain connection (the config schema refuses it).
 *
 * Each alert keeps one Message-ID across retries (`<alert id.channel@portcullis.alerts>`), so mail
 * clients fold duplicates, and carries `X-Portcullis-Alert-Id` for filters.
 */
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Secret } from '../../config/secret.js';
import type { AlertChannel, BreakGlassAlert } from '../ports.js';

/** How to reach one SMTP server. */
export interface SmtpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS. */
  readonly secure: boolean;
  /** Refuse to send unless the server upgrades the connection with STARTTLS. */
  readonly starttls: boolean;
  /** PEM CA certificates to trust instead of the system store. */
  readonly ca?: string;
  readonly auth?: { readonly user: string; readonly pass: Secret };
  /** Connect, greeting and per-command socket timeout. */
  readonly timeoutMs: number;
}

export interface SmtpAlertChannelOptions extends SmtpServerOptions {
  readonly name: string;
  readonly from: string;
  readonly to: readonly string[];
}

/** Control characters other than tab and newline are dropped from free text (reason, incident). */
export function clean(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}

export function alertSubject(alert: BreakGlassAlert): string {
  return `[Portcullis]${alert.drill ? ' [DRILL]' : ''} Break-glass ${alert.kind.replace(/_/g, ' ')}: ${clean(alert.accountId)}`;
}

/** The plain-text body. Built only from the alert, which by contract carries no secret. */
export function alertText(alert: BreakGlassAlert): string {
  const line = (label: string, value: string) => `${`${label}:`.padEnd(13)}${value}`;
  return [
    clean(alert.drill ? `[DRILL] ${alert.summary}` : alert.summary),
    '',
    line('Event', `break_glass.${alert.kind}`),
    line('Account', clean(alert.accountId)),
    line('Activation', alert.activationId ?? '-'),
    line('Drill', alert.drill ? 'yes' : 'no'),
    line('Custodians', alert.custodians.length > 0 ? alert.custodians.map(clean).join(', ') : '-'),
    line('Reason', alert.reason ? clean(alert.reason) : '-'),
    line('Incident', alert.incident ? clean(alert.incident) : '-'),
    line('At', new Date(alert.at).toISOString()),
    line('Alert id', alert.id),
    '',
    'This message carries no credentials. Every break-glass step is in the audit log;',
    'the activation stays open until someone other than its user records a review.',
    'If nobody on your team expected this, treat it as a security incident.',
    '',
  ].join('\n');
}

/** An SMTP failure in a few words: the error code, the command and the reply code, never the server's text. */
function describeSmtpFailure(error: unknown): string {
  const e = error as { code?: unknown; responseCode?: unknown; command?: unknown };
  const parts = [typeof e.code === 'string' ? e.code : 'failed'];
  if (typeof e.command === 'string') parts.push(`at ${e.command.split(' ')[0]}`);
  if (typeof e.responseCode === 'number') parts.push(`reply ${e.responseCode}`);
  return parts.join(' ');
}

/**
 * A nodemailer transport for one message: TLS verified (TLS 1.2 at least), credentials only over
 * TLS (the config schema refuses anything else), and no logging of the exchange.
 */
function smtpTransport(o: SmtpServerOptions) {
  const transport: SMTPTransport.Options = {
    host: o.host,
    port: o.port,
    secure: o.secure,
    requireTLS: o.starttls,
    connectionTimeout: o.timeoutMs,
    greetingTimeout: o.timeoutMs,
    socketTimeout: o.timeoutMs,
    dnsTimeout: o.timeoutMs,
    tls: {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
    },
    ...(o.auth ? { auth: { user: o.auth.user, pass: o.auth.pass.reveal() } } : {}),
    // nodemailer logs nothing unless asked; make it explicit (the AUTH exchange must never be logged).
    logger: false,
    debug: false,
  };
  return nodemailer.createTransport(transport);
}

/** One plain-text message, as every Portcullis e-mail is sent. */
export interface OneMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly text: string;
  /** The same across retries, so mail clients fold duplicates. */
  readonly messageId: string;
  readonly priority?: 'high' | 'normal';
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Sends `mail` once over a transport of its own; a failure, or any recipient refused, is a thrown
 * error labelled `label` ("smtp security-mail") that gives codes only, never the server's text.
 */
export async function sendOneMail(server: SmtpServerOptions, label: string, mail: OneMail): Promise<void> {
  const transport = smtpTransport(server);
  try {
    const info = await transport.sendMail({
      ...mail,
      to: [...mail.to],
      headers: { ...mail.headers },
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    if (info.rejected.length > 0) {
      throw Object.assign(new Error('recipients rejected'), {
        code: `${info.rejected.length} of ${mail.to.length} recipients rejected`,
      });
    }
  } catch (error) {
    throw new Error(`${label}: ${describeSmtpFailure(error)}`);
  } finally {
    transport.close();
  }
}

export class SmtpAlertChannel implements AlertChannel {
  readonly kind = 'smtp';
  readonly name: string;
  readonly #options: SmtpAlertChannelOptions;

  constructor(options: SmtpAlertChannelOptions) {
    this.name = options.name;
    this.#options = options;
  }

  async send(alert: BreakGlassAlert): Promise<void> {
    await sendOneMail(this.#options, `smtp ${this.name}`, {
      from: this.#options.from,
      to: [...this.#options.to],
      subject: alertSubject(alert),
      text: alertText(alert),
      messageId: `<${alert.id}.${this.name}@portcullis.alerts>`,
      priority: alert.drill ? 'normal' : 'high',
      headers: {
        'X-Portcullis-Alert-Id': alert.id,
        'X-Portcullis-Event': `break_glass.${alert.kind}`,
      },
    });
  }
}
