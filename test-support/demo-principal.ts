/** A principal of the demo identity provider, as its sign-in makes it, for tests that skip the sign-in. */
import type { Principal } from '../src/core/principal.js';

/** `demo:<subject>` in `groups`, named after the subject, without an e-mail address. */
export function demoPrincipal(subject: string, groups: readonly string[]): Principal {
  return {
    id: `demo:${subject}`,
    idp: 'demo',
    subject,
    displayName: subject.charAt(0).toUpperCase() + subject.slice(1),
    email: null,
    groups: [...groups],
  };
}
