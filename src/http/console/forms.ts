/** Reading console forms and query strings: a refusal names the field, as the API's validation does. */
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import { safeText } from '../input.js';

/** The parsed value, or a validation_failed naming the first field in error. */
export function parseForm<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new PortcullisError(
    'validation_failed',
    `${issue?.path.join('.') || 'form'}: ${issue?.message ?? 'invalid'}`,
  );
}

/** A form whose only field is a reason (approve, deny, revoke). */
export const reasonForm = z.object({ csrf: z.string(), reason: safeText(1000).default('') });
