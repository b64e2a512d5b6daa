/**
 * How the web console keeps a signed-in browser and refuses forged forms.
 *
 * - The session is an ordinary Portcullis session token, issued at a browser sign-in, in an
 *   HttpOnly cookie: `__Host-portcullis_session` (Secure, Path=/, no Domain, so no sibling host can
 *   set or read it) when `server.public_url` is https, `portcullis_session` over plain http
 *   (loopback development). SameSite=Lax so that a link in an e-mail opens the page signed in,
 *   while a cross-site form POST carries no session.
 * - Pages are served with `Referrer-Policy: same-origin`: with `no-referrer`, browsers send
 *   `Origin: null` on the console's own form posts, and the Origin check could not tell them apart.
 * - Every form carries a CSRF token derived from the session token (HMAC-SHA-256 keyed with it), so
 *   any replica can check it without shared state and it dies with the session. A POST must carry
 *   it, and an `Origin` or `Sec-Fetch-Site` header naming another site is refused as well.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PortcullisError } from '../../core/errors.js';
import { readCookie } from '../cookies.js';

export interface ConsoleCookies {
  readonly name: string;
  /** `Set-Cookie` that keeps `token` for `maxAgeSeconds`. */
  set(token: string, maxAgeSeconds: number): string;
  /** `Set-Cookie` that removes the session from the browser. */
  clear(): string;
  /** The session token the browser sent, if any. */
  read(request: FastifyRequest): string | undefined;
}

export function consoleCookies(https: boolean): ConsoleCookies {
  const name = https ? '__Host-portcullis_session' : 'portcullis_session';
  const attributes = `Path=/; HttpOnly; SameSite=Lax${https ? '; Secure' : ''}`;
  return {
    name,
    set: (token, maxAgeSeconds) =>
      `${name}=${token}; ${attributes}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    clear: () => `${name}=; ${attributes}; Max-Age=0`,
    read: (request) => {
      const value = readCookie(request.headers.cookie, name);
      // Only what a JWT can hold; anything else is not a session this server set.
      return value && /^[A-Za-z0-9._-]{1,4096}$/.test(value) ? value : undefined;
    },
  };
}

/** The CSRF token of the forms shown to the holder of `sessionToken`. */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('portcullis console form').digest('base64url');
}

/**
 * Refuses a state-changing console request that may come from another site: a missing or wrong
 * CSRF token, an `Origin` other than the console's own, or `Sec-Fetch-Site` other than
 * `same-origin` (browsers send `none` only for typed URLs and bookmarks, never for a POST).
 */
export function assertSameOriginForm(
  request: FastifyRequest,
  sessionToken: string,
  submittedToken: unknown,
  consoleOrigin: string,
): void {
  const origin = request.headers.origin;
  // `null` is what a browser sends when a referrer policy hides the origin (a privacy setting or
  // extension); Sec-Fetch-Site, which pages cannot change, still tells a cross-site form apart.
  if (origin !== undefined && origin !== 'null' && origin !== consoleOrigin) {
    throw new PortcullisError('csrf_rejected', `The form was sent from ${origin}, not from this console`, {
      reason: 'cross_origin',
    });
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    throw new PortcullisError('csrf_rejected', 'The form was sent from another site', {
      reason: 'cross_site',
    });
  }
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  const given = Buffer.from(typeof submittedToken === 'string' ? submittedToken : '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new PortcullisError(
      'csrf_rejected',
      'The form has no valid CSRF token; reload the page and try again',
      {
        reason: 'token_mismatch',
      },
    );
  }
}
