/** Cookies of the browser-facing routes (sign-in and the web console). */

/** The value of cookie `name` in a `Cookie` header; undefined when absent or empty. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=') || undefined;
  }
  return undefined;
}
