/**
 * The web console: server-rendered pages over the same application services as the API, for people
 * with a browser (requesters, approvers, resource owners, auditors). No JavaScript runs in it; every
 * change is a plain form POST with a CSRF token (console-session.ts), answered with a redirect.
 * Decisions and limits: docs/console.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tokenRejectionCodes } from '../../app/session-service.js';
import type { RequestOrigin } from '../../core/audit-event.js';
import { errorCatalogue, PortcullisError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import { type HttpDependencies, originOf } from '../context.js';
import { breakGlassContentSecurityPolicy, breakGlassPage, breakGlassScript } from './break-glass-page.js';
import { consoleBreakGlassReviewPages } from './break-glass-review-routes.js';
import { assertSameOriginForm, consoleCookies, csrfTokenFor } from './console-session.js';
import { consoleIcon, consoleStylesheet } from './console-style.js';
import { consoleGrantPages } from './grant-routes.js';
import { type Html, html } from './html.js';
import { type ConsoleViewer, consolePage, type Notice, signedOutPage } from './layout.js';
import { consoleOverviewPages } from './overview-routes.js';
import { consoleRequestPages } from './request-routes.js';

export const consolePrefix = '/console';

/** No script, no inline style, no framing, forms only to this server. */
const contentSecurityPolicy =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The signed-in person of a console request, and what their pages need. */
export interface ConsoleCaller {
  readonly principal: Principal;
  readonly viewer: ConsoleViewer;
  readonly from: RequestOrigin;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleSessionToken: string | null;
  }
}

/** What the console's page modules share: the services, the caller, rendering and its errors. */
export interface ConsoleContext {
  readonly deps: HttpDependencies;
  caller(request: FastifyRequest): ConsoleCaller;
  /** Refuses a POST whose form did not come from a console page (throws csrf_rejected). */
  checkForm(request: FastifyRequest): void;
  render(reply: FastifyReply, caller: ConsoleCaller, page: ConsolePageContent, status?: number): FastifyReply;
  /**
   * Runs a form's action after checking the form, then redirects (303) to the page `run` names. A
   * refusal the person can act on (a 4xx other than 401 and 404) shows the page `refusedPage`
   * builds, with why; anything else, the audit log failing included, is an error page.
   */
  act(
    request: FastifyRequest,
    reply: FastifyReply,
    run: (caller: ConsoleCaller) => Promise<string>,
    refusedPage: (caller: ConsoleCaller) => Promise<ConsolePageContent>,
  ): Promise<FastifyReply>;
}

/** What a page shows, without the frame the viewer decides. */
export type ConsolePageContent = Omit<Parameters<typeof consolePage>[0], 'viewer'>;

/** Refusals shown on the error page rather than beside the form that caused them. */
const errorPageCodes: ReadonlySet<string> = new Set(['csrf_rejected', 'not_found', 'unauthenticated']);

/** The notices a page shows after a redirect, by the `done` query parameter: fixed texts only. */
export const doneNotices: Readonly<Record<string, string>> = {
  created: 'Your request was sent.',
  approved: 'You approved this request.',
  denied: 'You denied this request.',
  cancelled: 'The request was withdrawn.',
  ended: 'The access was ended.',
  reviewed: 'The review was recorded.',
};

export function doneNotice(done: unknown): Notice | null {
  const text = typeof done === 'string' ? doneNotices[done] : undefined;
  return text ? { kind: 'info', text } : null;
}

/** A console error as the person reads it; internal faults say no more than "internal error". */
export function errorNotice(error: PortcullisError): Notice {
  return { kind: 'error', text: error.expose ? error.message : errorCatalogue[error.code].title };
}

export function consoleRoutes(deps: HttpDependencies) {
  const cookies = consoleCookies(deps.sessions.httpsPublicUrl);
  const consoleOrigin = deps.sessions.publicOrigin;
  const signInHref = (request: FastifyRequest) =>
    `/auth/login?next=${encodeURIComponent(request.method === 'GET' ? request.url : consolePrefix)}`;

  const context: ConsoleContext = {
    deps,
    caller(request) {
      const principal = request.principal;
      const token = request.consoleSessionToken;
      if (!principal || !token) throw new PortcullisError('unauthenticated');
      return {
        principal,
        from: { ...originOf(request), channel: 'console' },
        viewer: {
          id: principal.id,
          displayName: principal.displayName || principal.id,
          csrf: csrfTokenFor(token),
          mayViewAudit: deps.mayViewAudit(principal).allowed,
          mayReviewBreakGlass:
            (deps.breakGlass?.settings.accounts.length ?? 0) > 0 &&
            (deps.breakGlass?.mayReview(principal) ?? false),
        },
      };
    },
    checkForm(request) {
      const body = request.body as Record<string, unknown> | undefined;
      assertSameOriginForm(request, request.consoleSessionToken ?? '', body?.csrf, consoleOrigin);
    },
    render(reply, caller, page, status = 200) {
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(consolePage({ ...page, viewer: caller.viewer }));
    },
    async act(request, reply, run, refusedPage) {
      context.checkForm(request);
      const caller = context.caller(request);
      try {
        return reply.redirect(await run(caller), 303);
      } catch (error) {
        if (
          !(error instanceof PortcullisError) ||
          error.status >= 500 ||
          error.status === 401 ||
          errorPageCodes.has(error.code)
        )
          throw error;
        const page = await refusedPage(caller);
        return context.render(reply, caller, { ...page, notice: errorNotice(error) }, error.status);
      }
    },
  };

  return async (app: FastifyInstance) => {
    app.decorateRequest('consoleSessionToken', null);

    app.get(`${consolePrefix}/style.css`, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('text/css; charset=utf-8')
        .header('cache-control', 'public, max-age=3600')
        .send(consoleStylesheet),
    );

    app.get(`${consolePrefix}/icon.svg`, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('image/svg+xml')
        .header('cache-control', 'public, max-age=86400')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(consoleIcon),
    );

    // The break-glass console needs no session: custodians prove who they are with every step.
    const breakGlassConfigured = () => (deps.breakGlass?.settings.accounts.length ?? 0) > 0;
    app.get(`${consolePrefix}/break-glass`, { schema: { hide: true } }, async (_request, reply) => {
      if (!breakGlassConfigured()) throw new PortcullisError('not_found');
      return reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', breakGlassContentSecurityPolicy)
        .header('x-frame-options', 'DENY')
        .send(breakGlassPage);
    });
    app.get(`${consolePrefix}/break-glass.js`, { schema: { hide: true } }, async (_request, reply) => {
      if (!breakGlassConfigured()) throw new PortcullisError('not_found');
      return reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(breakGlassScript);
    });

    await app.register(
      async (pages) => {
        pages.addHook('onRequest', async (request, reply) => {
          reply.header('content-security-policy', contentSecurityPolicy);
          reply.header('x-frame-options', 'DENY');
          // Not `no-referrer`: that makes browsers send `Origin: null` with the console's own forms.
          reply.header('referrer-policy', 'same-origin');
          const token = cookies.read(request);
          if (!token) return signInRedirect(request, reply, false);
          try {
            request.principal = await deps.sessions.authenticate(`Bearer ${token}`, {
              ...originOf(request),
              channel: 'console',
            });
            request.consoleSessionToken = token;
          } catch (error) {
            if (error instanceof PortcullisError && tokenRejectionCodes.has(error.code))
              return signInRedirect(request, reply, true);
            throw error;
          }
        });

        /** To the sign-in page, and back here afterwards; an ended session's cookie is removed. */
        function signInRedirect(request: FastifyRequest, reply: FastifyReply, ended: boolean) {
          if (ended) reply.header('set-cookie', cookies.clear());
          return reply.redirect(signInHref(request), 303);
        }

        pages.setNotFoundHandler((request, reply) =>
          renderError(request, reply, new PortcullisError('not_found')),
        );
        pages.setErrorHandler((error, request, reply) => {
          if (error instanceof PortcullisError) return renderError(request, reply, error);
          const { statusCode, message } = error as { statusCode?: number; message?: string };
          if (statusCode !== undefined && statusCode < 500)
            return renderError(request, reply, new PortcullisError('validation_failed', message));
          request.log.error({ err: error }, 'console request failed');
          return renderError(request, reply, new PortcullisError('internal'));
        });

        function renderError(request: FastifyRequest, reply: FastifyReply, error: PortcullisError) {
          if (!error.expose) request.log.error({ err: error }, 'console request failed');
          const title = errorCatalogue[error.code].title;
          if (!request.principal || !request.consoleSessionToken) {
            return reply
              .code(error.status)
              .type('text/html; charset=utf-8')
              .send(signedOutPage(title, errorNotice(error).text, signInHref(request)));
          }
          return context.render(
            reply,
            context.caller(request),
            { title, section: null, body: errorBody(error), notice: errorNotice(error) },
            error.status,
          );
        }

        pages.post('/logout', { schema: { hide: true } }, async (request, reply) => {
          context.checkForm(request);
          const { principal, from } = context.caller(request);
          await deps.sessions.logout(principal, `Bearer ${request.consoleSessionToken}`, from);
          reply.header('set-cookie', cookies.clear());
          return reply.redirect('/auth/login', 303);
        });

        await pages.register(consoleRequestPages(context));
        await pages.register(consoleGrantPages(context));
        await pages.register(consoleOverviewPages(context));
        await pages.register(consoleBreakGlassReviewPages(context));
      },
      { prefix: consolePrefix },
    );
  };
}

/** Under the error notice: its stable code, and a way back. */
function errorBody(error: PortcullisError): Html {
  return html`<p class="muted">Error code <code>${error.code}</code>.</p><p><a href="/console">Back to the overview</a></p>`;
}
