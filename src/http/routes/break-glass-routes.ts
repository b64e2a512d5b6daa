/**
 * Break-glass over HTTP. The custodian routes (`/break-glass/activations…`) are authenticated by
 * custodian credentials in the body or by the initiator's activation handle
 * (`X-Break-Glass-Handle`), never by an SSO session — they must work while every IdP is down.
 * Reviews and the account overview are for signed-in people (admins, break-glass reviewers);
 * listing and revoking custodians' security keys for admins.
 */

import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { EnrolledSecurityKey } from '../../app/break-glass-ports.js';
import type { CustodianProof } from '../../app/break-glass-service.js';
import type { Activation } from '../../break-glass/activation.js';
import { activationStates } from '../../break-glass/activation.js';
import { PortcullisError } from '../../core/errors.js';
import type { HttpDependencies } from '../context.js';
import { originOf, principalOf } from '../context.js';
import { idParam, safeText } from '../input.js';
import { accessProblemResponses, problemView } from '../views.js';

const prefix = '/api/v1/break-glass/activations';

/** Paths answered without an SSO session: custodian credentials or the handle authenticate them. */
export function isCustodianRoute(path: string): boolean {
  return (path === prefix || path.startsWith(`${prefix}/`)) && !path.endsWith('/review');
}

export const handleHeader = 'x-break-glass-handle';

/** Account and custodian ids are configuration identifiers; anything else is refused before use. */
const configId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be an identifier from the configuration');

/** A WebAuthn response as the browser returns it; checked in depth by the ceremony. */
const webauthnResponse = z.looseObject({
  id: z.string().max(1024),
  rawId: z.string().max(1024),
  type: z.string(),
});

const custodianProof = {
  custodian: configId,
  passphrase: z.string().min(1).max(1024),
  /** The TOTP code, or `security_key` instead. */
  totp: z.string().min(1).max(16).optional(),
  security_key: webauthnResponse.optional(),
};

type ProofBody = { custodian: string; passphrase: string; totp?: string; security_key?: unknown };

/** Exactly one second factor: a TOTP code or a security-key assertion. */
function proofOf(b: ProofBody): CustodianProof {
  if ((b.totp === undefined) === (b.security_key === undefined))
    throw new PortcullisError('validation_failed', 'Give either totp or security_key', {
      issues: [{ path: 'body.totp', message: 'exactly one of totp and security_key is required' }],
    });
  return {
    custodianId: b.custodian,
    passphrase: b.passphrase,
    ...(b.totp !== undefined ? { totp: b.totp } : {}),
    ...(b.security_key !== undefined ? { securityKey: b.security_key as AuthenticationResponseJSON } : {}),
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const activationView = z.object({
  id: z.string(),
  account: z.string(),
  state: z.enum(activationStates),
  drill: z.boolean(),
  initiator: z.string(),
  confirmers: z.array(z.string()),
  quorum: z.number(),
  reason: z.string(),
  incident: z.string(),
  resource: z.string(),
  roles: z.array(z.string()),
  duration_minutes: z.number(),
  initiated_at: z.string(),
  window_ends_at: z.string(),
  activated_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
  review: z.object({ reviewer: z.string(), notes: z.string(), at: z.string() }).nullable(),
  rotated_at: z.string().nullable(),
  timeline: z.array(
    z.object({
      state: z.string(),
      actor: z.string().nullable(),
      at: z.string(),
      note: z.string().nullable(),
    }),
  ),
});

export function toActivationView(a: Activation): z.infer<typeof activationView> {
  return {
    id: a.id,
    account: a.accountId,
    state: a.state,
    drill: a.drill,
    initiator: a.initiatorId,
    confirmers: [...a.confirmerIds],
    quorum: a.quorum,
    reason: a.reason,
    incident: a.incident,
    resource: a.scope.resourceId,
    roles: [...a.scope.roles],
    duration_minutes: a.durationMinutes,
    initiated_at: iso(a.initiatedAt) as string,
    window_ends_at: iso(a.windowEndsAt) as string,
    activated_at: iso(a.activatedAt),
    expires_at: iso(a.expiresAt),
    ended_at: iso(a.endedAt),
    end_reason: a.endReason,
    review: a.review
      ? { reviewer: a.review.reviewerId, notes: a.review.notes, at: iso(a.review.at) as string }
      : null,
    rotated_at: iso(a.rotatedAt),
    timeline: a.timeline.map((t) => ({
      state: t.state,
      actor: t.actorId,
      at: iso(t.at) as string,
      note: t.note,
    })),
  };
}

const responses = { ...accessProblemResponses, 429: problemView };

export function breakGlassRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    const service = () => {
      if (!deps.breakGlass || deps.breakGlass.settings.accounts.length === 0)
        throw new PortcullisError('break_glass_unavailable');
      return deps.breakGlass;
    };
    const handleOf = (headers: Record<string, unknown>): string => {
      const value = headers[handleHeader];
      if (typeof value !== 'string' || value.length < 16 || value.length > 128)
        throw new PortcullisError('unauthenticated', `Send the activation handle in ${handleHeader}`);
      return value;
    };

    app.post(
      '/break-glass/activations',
      {
        schema: {
          summary: 'Initiate a break-glass activation (custodian credentials; no SSO)',
          tags: ['break-glass'],
          security: [],
          body: z
            .object({
              account: configId,
              ...custodianProof,
              shares: z.array(z.string().min(1).max(1024)).max(255).optional(),
              reason: safeText(2000),
              incident: safeText(200),
              resource: configId.optional(),
              roles: z.array(configId).max(64).optional(),
              duration_minutes: z.number(),
              drill: z.boolean().default(false),
            })
            .strict(),
          response: {
            201: z.object({ activation: activationView, handle: z.string() }),
            ...responses,
          },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const { activation, handle } = await service().initiate(
          {
            accountId: b.account,
            proof: proofOf(b),
            shares: b.shares,
            reason: b.reason,
            incident: b.incident,
            resourceId: b.resource,
            roles: b.roles,
            durationMinutes: b.duration_minutes,
            drill: b.drill,
          },
          originOf(request),
        );
        return reply.code(201).send({ activation: toActivationView(activation), handle });
      },
    );

    app.post(
      '/break-glass/activations/security-key-options',
      {
        schema: {
          summary: 'Options for navigator.credentials.get(): sign in as a custodian with a security key',
          tags: ['break-glass'],
          security: [],
          body: z.object({ account: configId, custodian: configId }).strict(),
          response: { 200: z.record(z.string(), z.unknown()), ...responses },
        },
      },
      async (request) =>
        ({ ...(await service().securityKeyOptions(request.body.account, request.body.custodian)) }) as Record<
          string,
          unknown
        >,
    );

    app.post(
      '/break-glass/activations/security-keys/options',
      {
        schema: {
          summary: 'Start enrolling a security key (custodian passphrase + TOTP or an enrolled key)',
          tags: ['break-glass'],
          security: [],
          body: z.object({ account: configId, ...custodianProof }).strict(),
          response: { 200: z.record(z.string(), z.unknown()), ...responses },
        },
      },
      async (request) =>
        ({
          ...(await service().securityKeyRegistrationOptions(
            request.body.account,
            proofOf(request.body),
            originOf(request),
          )),
        }) as Record<string, unknown>,
    );

    app.post(
      '/break-glass/activations/security-keys',
      {
        schema: {
          summary: 'Finish enrolling a security key (the response of navigator.credentials.create())',
          tags: ['break-glass'],
          security: [],
          body: z.object({ account: configId, custodian: configId, response: webauthnResponse }).strict(),
          response: { 201: z.object({ credential_id: z.string() }), ...responses },
        },
      },
      async (request, reply) => {
        const { credentialId } = await service().enrolSecurityKey(
          request.body.account,
          request.body.custodian,
          request.body.response as unknown as RegistrationResponseJSON,
          originOf(request),
        );
        return reply.code(201).send({ credential_id: credentialId });
      },
    );

    app.post(
      '/break-glass/activations/:id/confirm',
      {
        schema: {
          summary: 'Confirm an activation as another custodian (counts once; never the initiator)',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          body: z.object({ account: configId.optional(), ...custodianProof }).strict(),
          response: { 200: activationView, ...responses },
        },
      },
      async (request) =>
        toActivationView(
          await service().confirm(
            request.params.id,
            request.body.account,
            proofOf(request.body),
            originOf(request),
          ),
        ),
    );

    app.post(
      '/break-glass/activations/:id/cancel',
      {
        schema: {
          summary: 'Cancel an activation before it is active (initiator handle or custodian credentials)',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          body: z.object(custodianProof).strict().optional(),
          response: { 200: activationView, ...responses },
        },
      },
      async (request) => {
        const b = request.body;
        const auth = b ? { proof: proofOf(b) } : { handle: handleOf(request.headers) };
        return toActivationView(await service().cancel(request.params.id, auth, originOf(request)));
      },
    );

    app.get(
      '/break-glass/activations/:id',
      {
        schema: {
          summary: 'Status of an activation (initiator handle)',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          response: { 200: activationView, ...responses },
        },
      },
      async (request) =>
        toActivationView(
          (await service().status(request.params.id, handleOf(request.headers), originOf(request)))
            .activation,
        ),
    );

    app.post(
      '/break-glass/activations/:id/credentials',
      {
        schema: {
          summary: 'The emergency access credentials, for the initiator only (handle); audited',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          response: {
            200: z.object({
              grants: z.array(
                z.object({
                  grant_id: z.string(),
                  role: z.string(),
                  expires_at: z.string(),
                  credentials: z.record(z.string(), z.string()).optional(),
                  token: z.string().optional(),
                  out_of_scope: z.array(z.string()).optional(),
                }),
              ),
            }),
            ...responses,
          },
        },
      },
      async (request) => {
        const grants = await service().credentials(
          request.params.id,
          handleOf(request.headers),
          originOf(request),
        );
        return {
          grants: grants.map((g) => ({
            grant_id: g.grantId,
            role: g.role,
            expires_at: new Date(g.expiresAt).toISOString(),
            ...(g.credentials ? { credentials: { ...g.credentials } } : {}),
            ...(g.token ? { token: g.token } : {}),
            ...(g.outOfScope ? { out_of_scope: [...g.outOfScope] } : {}),
          })),
        };
      },
    );

    app.post(
      '/break-glass/activations/:id/end',
      {
        schema: {
          summary: 'End the emergency access now (initiator handle)',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          response: { 200: activationView, ...responses },
        },
      },
      async (request) =>
        toActivationView(
          await service().end(request.params.id, handleOf(request.headers), originOf(request)),
        ),
    );

    app.post(
      '/break-glass/activations/:id/drill-report',
      {
        schema: {
          summary: 'Record a drill: the client checks plus the server checks (initiator handle)',
          tags: ['break-glass'],
          security: [],
          params: idParam,
          body: z
            .object({
              checks: z
                .array(
                  z.object({ name: safeText(200), passed: z.boolean(), detail: safeText(2000) }).strict(),
                )
                .max(50),
            })
            .strict(),
          response: {
            200: z.object({
              drill_id: z.string(),
              passed: z.boolean(),
              report: z.record(z.string(), z.unknown()),
            }),
            ...responses,
          },
        },
      },
      async (request) => {
        const result = await service().recordDrill(
          request.params.id,
          handleOf(request.headers),
          request.body.checks,
          originOf(request),
        );
        return { drill_id: result.id, passed: result.passed, report: result.report };
      },
    );

    app.post(
      '/break-glass/activations/:id/review',
      {
        schema: {
          summary:
            'Record the review of an ended activation (signed-in admin or reviewer, not a participant)',
          tags: ['break-glass'],
          params: idParam,
          body: z.object({ notes: safeText(4000) }).strict(),
          response: { 200: activationView, ...responses },
        },
      },
      async (request) =>
        toActivationView(
          await service().review(
            request.params.id,
            principalOf(request),
            request.body.notes,
            originOf(request),
          ),
        ),
    );

    app.get(
      '/break-glass/accounts',
      {
        schema: {
          summary: 'Emergency accounts: enrolment, drills (overdue flagged), reviews and rotations owed',
          tags: ['break-glass'],
          response: {
            200: z.object({
              accounts: z.array(
                z.object({
                  account: z.string(),
                  resource: z.string(),
                  roles: z.array(z.string()),
                  custodians: z.array(z.string()),
                  enrolled: z.array(z.string()),
                  security_keys: z.record(z.string(), z.number()),
                  quorum: z.number(),
                  sealed: z.boolean(),
                  seal_ready: z.boolean(),
                  last_drill_at: z.string().nullable(),
                  last_drill_passed: z.boolean().nullable(),
                  last_passed_drill_at: z.string().nullable(),
                  drill_overdue: z.boolean(),
                  open_activations: z.number(),
                  awaiting_review: z.number(),
                  rotation_owed: z.number(),
                }),
              ),
            }),
            ...responses,
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        if (!service().mayReview(principal))
          throw new PortcullisError(
            'forbidden',
            'Only admins or break-glass reviewers may list emergency accounts',
          );
        const accounts = await service().overview();
        return {
          accounts: accounts.map((a) => ({
            account: a.accountId,
            resource: a.resourceId,
            roles: [...a.roles],
            custodians: [...a.custodians],
            enrolled: [...a.enrolled],
            security_keys: { ...a.securityKeys },
            quorum: a.quorum,
            sealed: a.sealed,
            seal_ready: a.sealReady,
            last_drill_at: iso(a.lastDrillAt),
            last_drill_passed: a.lastDrillPassed,
            last_passed_drill_at: iso(a.lastPassedDrillAt),
            drill_overdue: a.drillOverdue,
            open_activations: a.openActivations,
            awaiting_review: a.awaitingReview,
            rotation_owed: a.rotationOwed,
          })),
        };
      },
    );

    const securityKeyView = z.object({
      credential_id: z.string(),
      custodian: z.string(),
      aaguid: z.string(),
      backed_up: z.boolean(),
      transports: z.array(z.string()),
      created_at: z.string(),
    });
    const toKeyView = (k: EnrolledSecurityKey): z.infer<typeof securityKeyView> => ({
      credential_id: k.credentialId,
      custodian: k.custodianId,
      aaguid: k.aaguid,
      backed_up: k.backedUp,
      transports: [...k.transports],
      created_at: iso(k.createdAt) as string,
    });

    app.get(
      '/break-glass/accounts/:account/security-keys',
      {
        schema: {
          summary: "The security keys enrolled for an emergency account's custodians (admins)",
          tags: ['break-glass'],
          params: z.object({ account: configId }),
          response: { 200: z.object({ security_keys: z.array(securityKeyView) }), ...responses },
        },
      },
      async (request) => ({
        security_keys: (await service().listSecurityKeys(principalOf(request), request.params.account)).map(
          toKeyView,
        ),
      }),
    );

    app.post(
      '/break-glass/accounts/:account/security-keys/:credential/revoke',
      {
        schema: {
          summary: "Revoke a custodian's security key (admins); audited and alerted",
          tags: ['break-glass'],
          params: z.object({
            account: configId,
            credential: z.string().regex(/^[A-Za-z0-9_-]{1,1024}$/, 'must be a base64url credential id'),
          }),
          response: { 200: securityKeyView, ...responses },
        },
      },
      async (request) =>
        toKeyView(
          await service().revokeSecurityKey(
            principalOf(request),
            request.params.account,
            request.params.credential,
            originOf(request),
          ),
        ),
    );
  };
}
