import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type ConsoleSession, isConsolePath } from '../../app/session-service.js';
import { escapeHtml } from '../../text/escape-html.js';
import { consoleCookies } from '../console/console-session.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { readCookie } from '../cookies.js';
import { problemView } from '../views.js';

const errors = {
  400: problemView,
  401: problemView,
  403: problemView,
  404: problemView,
  502: problemView,
  503: problemView,
};

const loginCookie = 'portcullis_login';
const samlLoginCookie = 'portcullis_saml_login';

/** A browser sign-in's `next`: the console page to return to (checked again by the session service). */
const consoleNext = z.string().max(512).refine(isConsolePath, 'must be a path under /console').optional();

/** Public routes of the browser login (outside /api/v1: the IdP redirects here). */
export function loginRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  // Whether browsers use https comes from server.public_url, not from request.protocol: behind a
  // TLS-terminating proxy with trust_proxy false every request looks like plain http.
  const https = deps.sessions.httpsPublicUrl;
  /** The OIDC browser binding cookie: the IdP redirects back with a top-level GET, so Lax. */
  const oidcCookie = (idp: string, value: string, maxAge: number) =>
    `${loginCookie}=${value}; Path=/auth/oidc/${encodeURIComponent(idp)}; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${https ? '; Secure' : ''}`;
  /**
   * The IdP POSTs the SAML Response from its own site: a SameSite=Lax cookie would not come along,
   * so over https the browser binding cookie is SameSite=None; Secure. Over plain http (loopback
   * development, where the IdP is same-site) browsers refuse SameSite=None without Secure: Lax.
   */
  const samlCookie = (idp: string, value: string, maxAge: number) =>
    `${samlLoginCookie}=${value}; Path=/auth/saml/${encodeURIComponent(idp)}; HttpOnly; ${https ? 'SameSite=None; Secure' : 'SameSite=Lax'}; Max-Age=${maxAge}`;

  const consoleSession = consoleCookies(https);
  /** A plain browser sign-in ends in the web console, signed in. */
  const enterConsole = (reply: FastifyReply, session: ConsoleSession, status: 302 | 303): FastifyReply => {
    reply.header('set-cookie', consoleSession.set(session.token, session.maxAgeSeconds));
    return reply.redirect(session.landing, status);
  };

  return async (app) => {
    app.get(
      '/auth/login',
      {
        schema: {
          summary: 'Sign-in page: a link per identity provider',
          tags: ['auth'],
          querystring: z.object({ next: z.string().max(512).optional() }),
        },
      },
      async (request, reply) => {
        // An unusable `next` is dropped rather than refused: the page is still the way in.
        const next = request.query.next && isConsolePath(request.query.next) ? request.query.next : undefined;
        const links = deps.sessions.providers
          .map(
            (p) =>
              `<li><a href="/auth/${p.protocol}/${encodeURIComponent(p.id)}/login${next ? `?next=${encodeURIComponent(next)}` : ''}">${escapeHtml(p.displayName)}</a></li>`,
          )
          .join('');
        return reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'self'")
          .send(
            `<!doctype html><html lang="en"><meta charset="utf-8"><title>Sign in to Portcullis</title><link rel="icon" href="/console/icon.svg" type="image/svg+xml"><link rel="stylesheet" href="/console/style.css"><main><h1>Sign in to Portcullis</h1>${links ? `<ul>${links}</ul>` : '<p>No identity provider is configured.</p>'}</main></html>`,
          );
      },
    );

    app.get(
      '/auth/oidc/:idp/login',
      {
        schema: {
          summary: 'Start an OIDC login; a CLI adds its loopback redirect_uri, PKCE challenge and state',
          tags: ['auth'],
          params: z.object({ idp: z.string().max(64) }),
          querystring: z.object({
            redirect_uri: z.string().max(200).optional(),
            code_challenge: z.string().max(128).optional(),
            code_challenge_method: z.literal('S256').optional(),
            state: z.string().max(128).optional(),
            next: consoleNext,
          }),
        },
      },
      async (request, reply) => {
        const q = request.query;
        const cli = q.redirect_uri
          ? { redirectUri: q.redirect_uri, codeChallenge: q.code_challenge ?? '', state: q.state ?? '' }
          : null;
        const { authorizationUrl, loginId } = await deps.sessions.beginLogin(
          request.params.idp,
          cli,
          'oidc',
          q.next,
        );
        reply.header('set-cookie', oidcCookie(request.params.idp, loginId, 600));
        return reply.redirect(authorizationUrl, 302);
      },
    );

    app.get(
      '/auth/oidc/:idp/callback',
      {
        schema: {
          summary: 'OIDC redirect target',
          tags: ['auth'],
          params: z.object({ idp: z.string().max(64) }),
        },
      },
      async (request, reply) => {
        const url = new URL(request.url, deps.sessions.callbackUrl(request.params.idp));
        const loginId = readCookie(request.headers.cookie, loginCookie);
        const { redirectTo, consoleSession } = await deps.sessions.completeLogin(
          request.params.idp,
          url,
          loginId,
          originOf(request),
          undefined,
          'oidc',
        );
        reply.header('set-cookie', oidcCookie(request.params.idp, '', 0));
        if (consoleSession) return enterConsole(reply, consoleSession, 302);
        return reply.redirect(redirectTo ?? '/console', 302);
      },
    );

    const samlParams = z.object({ idp: z.string().max(64) });

    app.get(
      '/auth/saml/:idp/login',
      {
        schema: {
          summary:
            'Start a SAML login (AuthnRequest, HTTP-Redirect); a CLI adds redirect_uri, PKCE challenge and state',
          tags: ['auth'],
          params: samlParams,
          querystring: z.object({
            redirect_uri: z.string().max(200).optional(),
            code_challenge: z.string().max(128).optional(),
            code_challenge_method: z.literal('S256').optional(),
            state: z.string().max(128).optional(),
            next: consoleNext,
          }),
        },
      },
      async (request, reply) => {
        const q = request.query;
        const cli = q.redirect_uri
          ? { redirectUri: q.redirect_uri, codeChallenge: q.code_challenge ?? '', state: q.state ?? '' }
          : null;
        const { authorizationUrl, loginId } = await deps.sessions.beginLogin(
          request.params.idp,
          cli,
          'saml',
          q.next,
        );
        reply.header('set-cookie', samlCookie(request.params.idp, loginId, 600));
        return reply.redirect(authorizationUrl, 302);
      },
    );

    app.post(
      '/auth/saml/:idp/acs',
      {
        bodyLimit: 524_288,
        schema: {
          summary: 'SAML assertion consumer service (HTTP-POST binding)',
          tags: ['auth'],
          params: samlParams,
          body: z.object({
            SAMLResponse: z.string().max(400_000),
            RelayState: z.string().max(1024).optional(),
          }),
        },
      },
      async (request, reply) => {
        const { idp } = request.params;
        const url = new URL(request.url, deps.sessions.callbackUrl(idp));
        const { redirectTo, consoleSession } = await deps.sessions.completeLogin(
          idp,
          url,
          readCookie(request.headers.cookie, samlLoginCookie),
          originOf(request),
          request.body,
          'saml',
        );
        reply.header('set-cookie', samlCookie(idp, '', 0));
        // 303: the browser follows a POST with a GET.
        if (consoleSession) return enterConsole(reply, consoleSession, 303);
        return reply.redirect(redirectTo ?? '/console', 303);
      },
    );

    app.get(
      '/auth/saml/:idp/metadata',
      {
        schema: {
          summary: "Portcullis' SAML service provider metadata for this IdP (entity id, ACS URL)",
          tags: ['auth'],
          params: samlParams,
        },
      },
      async (request, reply) =>
        reply
          .type('application/samlmetadata+xml; charset=utf-8')
          .header('cache-control', 'public, max-age=300')
          .send(deps.sessions.samlMetadata(request.params.idp)),
    );
  };
}

export function authApiRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/auth/providers',
      {
        schema: {
          summary: 'Identity providers people can sign in with',
          tags: ['auth'],
          response: {
            200: z.object({
              providers: z.array(
                z.object({
                  id: z.string(),
                  display_name: z.string(),
                  protocol: z.enum(['oidc', 'saml']),
                  login_url: z.string(),
                }),
              ),
            }),
          },
        },
      },
      async () => ({
        providers: deps.sessions.providers.map((p) => ({
          id: p.id,
          display_name: p.displayName,
          protocol: p.protocol,
          login_url: p.loginUrl,
        })),
      }),
    );

    app.post(
      '/auth/cli/token',
      {
        schema: {
          summary: 'Exchange a one-time CLI login code and its PKCE verifier for a session token',
          tags: ['auth'],
          body: z
            .object({
              code: z.string().min(1).max(128),
              code_verifier: z.string().min(43).max(128),
              redirect_uri: z.string().max(200),
            })
            .strict(),
          response: {
            200: z.object({
              session_token: z.string(),
              expires_at: z.string(),
              principal: z.object({ id: z.string(), display_name: z.string(), groups: z.array(z.string()) }),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const session = await deps.sessions.exchangeCliCode(
          {
            code: request.body.code,
            codeVerifier: request.body.code_verifier,
            redirectUri: request.body.redirect_uri,
          },
          originOf(request),
        );
        return {
          session_token: session.token,
          expires_at: new Date(session.expiresAt).toISOString(),
          principal: {
            id: session.principal.id,
            display_name: session.principal.displayName,
            groups: [...session.principal.groups],
          },
        };
      },
    );

    app.post(
      '/auth/device',
      {
        schema: {
          summary:
            'Start a CLI login with the device authorization grant (RFC 8628) at the identity provider',
          tags: ['auth'],
          body: z.object({ idp: z.string().min(1).max(64) }).strict(),
          response: {
            200: z.object({
              device_id: z.string(),
              user_code: z.string(),
              verification_uri: z.string(),
              verification_uri_complete: z.string().nullable(),
              expires_at: z.string(),
              interval: z.number(),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const started = await deps.sessions.beginDeviceLogin(request.body.idp);
        return {
          device_id: started.deviceId,
          user_code: started.userCode,
          verification_uri: started.verificationUri,
          verification_uri_complete: started.verificationUriComplete,
          expires_at: new Date(started.expiresAt).toISOString(),
          interval: started.intervalSeconds,
        };
      },
    );

    app.post(
      '/auth/device/token',
      {
        schema: {
          summary:
            'Poll a device login: authorization_pending or slow_down (wait `interval` seconds), or the session token',
          tags: ['auth'],
          body: z.object({ device_id: z.string().min(1).max(128) }).strict(),
          response: {
            200: z.union([
              z.object({ status: z.enum(['authorization_pending', 'slow_down']), interval: z.number() }),
              z.object({
                status: z.literal('complete'),
                session_token: z.string(),
                expires_at: z.string(),
                principal: z.object({
                  id: z.string(),
                  display_name: z.string(),
                  groups: z.array(z.string()),
                }),
              }),
            ]),
            ...errors,
          },
        },
      },
      async (request) => {
        const polled = await deps.sessions.pollDeviceLogin(request.body.device_id, originOf(request));
        if (polled.status !== 'complete') return { status: polled.status, interval: polled.intervalSeconds };
        return {
          status: 'complete' as const,
          session_token: polled.token,
          expires_at: new Date(polled.expiresAt).toISOString(),
          principal: {
            id: polled.principal.id,
            display_name: polled.principal.displayName,
            groups: [...polled.principal.groups],
          },
        };
      },
    );

    app.post(
      '/auth/logout',
      {
        schema: {
          summary: 'End your Portcullis session now, on every replica (the token is refused from now on)',
          tags: ['auth'],
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await deps.sessions.logout(principalOf(request), request.headers.authorization, originOf(request));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/me',
      {
        schema: {
          summary: 'Who you are, as Portcullis sees you',
          tags: ['auth'],
          response: {
            200: z.object({
              id: z.string(),
              idp: z.string(),
              display_name: z.string(),
              email: z.string().nullable(),
              groups: z.array(z.string()),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const p = principalOf(request);
        return { id: p.id, idp: p.idp, display_name: p.displayName, email: p.email, groups: [...p.groups] };
      },
    );
  };
}
