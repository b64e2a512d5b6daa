/** Input rules shared by routes: free text that is safe to show to approvers in a terminal or a page. */
import { z } from 'zod';
import { parseDurationSeconds } from '../config/duration.js';
import { PortcullisError } from '../core/errors.js';

// C0 controls except tab/newline, DEL, C1 controls, and bidirectional overrides that can disguise text.
const hostileCharacters = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/;

// In a `u` regex a surrogate pair is one code point; only a lone surrogate is of category Cs.
const loneSurrogate = /\p{Cs}/u;

/**
 * Free text of at most `max` UTF-16 code units: well-formed Unicode (a lone surrogate cannot be
 * stored, signed or shown faithfully, and the policy engine refuses it), with no control or
 * bidirectional-override characters.
 */
export function safeText(max: number) {
  return z
    .string()
    .max(max)
    .refine((s) => !loneSurrogate.test(s), 'must be well-formed Unicode (no lone surrogates)')
    .refine(
      (s) => !hostileCharacters.test(s),
      'must not contain control or bidirectional-override characters',
    );
}

/**
 * A query parameter that lists some of `values`, comma-separated (`?state=pending,approved`): the
 * array of them, or undefined when the parameter is absent or empty. Any other word is refused.
 */
export function commaSeparatedEnum<const T extends readonly string[]>(values: T) {
  return z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',') : undefined))
    .pipe(z.array(z.enum(values)).optional());
}

export const durationInput = z
  .union([z.string().max(32), z.number()])
  .describe('Seconds, or a duration such as 30m, 2h');

/** Converts a requested duration, refusing zero, negative, fractional and unparseable values. */
export function requestedSeconds(value: string | number): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === null) {
    throw new PortcullisError(
      'invalid_duration',
      'Duration must be a positive whole number of seconds or like 45m, 2h',
    );
  }
  return seconds;
}

export const idParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9-]+$/, 'must be an id'),
});

/** Where a newest-first listing continues: the creation time and id of the last row seen. */
export interface ListPosition {
  readonly createdAt: number;
  readonly id: string;
}

/** A listing's position as an opaque, URL-safe cursor. */
export function encodeListCursor(position: ListPosition): string {
  return Buffer.from(`${position.createdAt}.${position.id}`, 'utf8').toString('base64url');
}

/** A `cursor` query parameter: what {@link encodeListCursor} wrote, or a 400 naming it. */
export const listCursor = z
  .string()
  .max(200)
  .transform((value, ctx): ListPosition => {
    const decoded = /^[A-Za-z0-9_-]+$/.test(value) ? Buffer.from(value, 'base64url').toString('utf8') : '';
    const match = /^(\d{1,16})\.([A-Za-z0-9-]{1,64})$/.exec(decoded);
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this server gave out' });
      return z.NEVER;
    }
    return { createdAt: Number(match[1]), id: match[2] ?? '' };
  });
