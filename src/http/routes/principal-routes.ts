/** Principals for administrators: see one, list the locked or deactivated, lock and unlock. See src/app/principal-locks.ts. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { StoredPrincipal } from '../../app/ports.js';
import { standingOf } from '../../core/principal.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { safeText } from '../input.js';
import { accessProblemResponses } from '../views.js';

const principalView = z.object({
  id: z.string(),
  idp: z.string(),
  subject: z.string(),
  display_name: z.string(),
  email: z.string().nullable(),
  groups: z.array(z.string()),
  standing: z.enum(['enabled', 'disabled', 'locked']),
  /** Deprovisioned through SCIM. */
  disabled: z.boolean(),
  lock: z.object({ at: z.string(), by: z.string(), reason: z.string() }).nullable(),
  last_login_at: z.string().nullable(),
});

/** One principal as the API shows it to administrators. */
export type PrincipalView = z.infer<typeof principalView>;

function toView(p: StoredPrincipal): PrincipalView {
  return {
    id: p.id,
    idp: p.idp,
    subject: p.subject,
    display_name: p.displayName,
    email: p.email,
    groups: [...p.groups],
    standing: standingOf(p),
    disabled: p.disabled,
    lock: p.lock && { at: new Date(p.lock.at).toISOString(), by: p.lock.by, reason: p.lock.reason },
    last_login_at: p.lastLoginAt > 0 ? new Date(p.lastLoginAt).toISOString() : null,
  };
}

const principalParam = z.object({
  id: z
    .string()
    .min(3)
    .max(512)
    // The subject is the IdP's own (a SAML NameID may hold spaces); only control characters are refused.
    .regex(/^[^:\s]+:[^\p{Cc}]+$/u, 'must be a principal id, idp:subject'),
});

const reasonBody = z.object({ reason: safeText(1000).refine((s) => s.trim() !== '', 'required') }).strict();

export function principalRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/principals',
      {
        schema: {
          summary:
            'Principals that may not act: locked by an administrator, or deactivated through SCIM (admins)',
          tags: ['principals'],
          querystring: z.object({
            standing: z.enum(['locked', 'disabled']).default('locked'),
            limit: z.coerce.number().int().min(1).max(500).default(100),
          }),
          response: { 200: z.object({ principals: z.array(principalView) }), ...accessProblemResponses },
        },
      },
      async (request) => {
        const list = await deps.principalLocks.list(
          principalOf(request),
          request.query.standing,
          request.query.limit,
          originOf(request),
        );
        return { principals: list.map(toView) };
      },
    );

    app.get(
      '/principals/:id',
      {
        schema: {
          summary: 'One principal as Portcullis keeps it, with its lock (admins)',
          tags: ['principals'],
          params: principalParam,
          response: { 200: principalView, ...accessProblemResponses },
        },
      },
      async (request) =>
        toView(await deps.principalLocks.get(principalOf(request), request.params.id, originOf(request))),
    );

    app.post(
      '/principals/:id/lock',
      {
        schema: {
          summary:
            'Lock a principal now (admins): its requests are cancelled, grants revoked, gateway sessions closed, sessions and sign-ins refused until unlocked. Audited',
          tags: ['principals'],
          params: principalParam,
          body: reasonBody,
          response: {
            200: z.object({
              principal: principalView,
              locked: z.array(z.string()),
              cancelled_requests: z.number().int(),
              revoked_grants: z.number().int(),
            }),
            ...accessProblemResponses,
          },
        },
      },
      async (request) => {
        const outcome = await deps.principalLocks.lock(
          principalOf(request),
          request.params.id,
          request.body.reason,
          originOf(request),
        );
        return {
          principal: toView(outcome.principal),
          locked: [...outcome.locked],
          cancelled_requests: outcome.cancelledRequests,
          revoked_grants: outcome.revokedGrants,
        };
      },
    );

    app.post(
      '/principals/:id/unlock',
      {
        schema: {
          summary: 'Lift a lock (admins). Restores nothing: ended access stays ended. Audited',
          tags: ['principals'],
          params: principalParam,
          body: reasonBody,
          response: { 200: principalView, ...accessProblemResponses },
        },
      },
      async (request) =>
        toView(
          await deps.principalLocks.unlock(
            principalOf(request),
            request.params.id,
            request.body.reason,
            originOf(request),
          ),
        ),
    );
  };
}
