/**
 * Zod validation errors as `{ path, message }` pairs, for the files Portcullis reads (the
 * configuration, policy test cases), which report every problem with where it is.
 *
 * @example
 * ```ts
 * zodIssues(error); // [{ path: 'resources[0].roles', message: 'Too small: expected array to have >=1 items' }]
 * ```
 */
import type { z } from 'zod';

/** `['resources', 0, 'id']` → `resources[0].id`; the root is `''`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    '',
  );
}

/** Every issue of `error`, its path formatted by {@link formatIssuePath}. */
export function zodIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: formatIssuePath(issue.path), message: issue.message }));
}
