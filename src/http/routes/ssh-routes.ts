import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HostSessionEvent } from '../../app/ssh-session-reports.js';
import { PortcullisError } from '../../core/errors.js';
import { type HttpDependencies, originOf } from '../context.js';
import { problemView } from '../views.js';

const params = z.object({ resource: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/) }).strict();

const sessionFacts = {
  grant_id: z.string().min(1).max(128),
  serial: z.string().regex(/^[1-9][0-9]{0,19}$/, 'a certificate serial, decimal'),
  account: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'an account name'),
  pid: z.number().int().min(1).max(4_194_304),
  connection_start: z
    .string()
    .regex(/^\d{1,20}$/, 'clock ticks since boot')
    .optional()
    .describe(
      "The connection's start (clock ticks since the host's boot): with `pid` it names the login, and a report sent again is recorded once",
    ),
  at: z.iso.datetime({ offset: true }),
};

/** One report of `portcullis ssh-guard`: what happened to certificate logins on one host. */
const sessionReport = z
  .object({
    host: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, 'a host name')
      .describe("The reporting host's name, as its guard knows it (a claim, recorded as such)"),
    events: z
      .array(
        z.discriminatedUnion('type', [
          z.object({ type: z.literal('started'), ...sessionFacts }).strict(),
          z.object({ type: z.literal('closed'), ...sessionFacts }).strict(),
          z
            .object({
              type: z.literal('ended'),
              ...sessionFacts,
              reason: z.enum(['expired', 'revoked']),
              connection_open: z.boolean(),
              processes: z.number().int().min(0).max(1_000_000),
            })
            .strict(),
        ]),
      )
      .min(1)
      .max(100),
  })
  .strict();

function hostEvent(event: z.infer<typeof sessionReport>['events'][number]): HostSessionEvent {
  const facts = {
    grantId: event.grant_id,
    serial: event.serial,
    account: event.account,
    pid: event.pid,
    ...(event.connection_start !== undefined ? { connectionStart: event.connection_start } : {}),
    at: Date.parse(event.at),
  };
  return event.type === 'ended'
    ? {
        ...facts,
        type: 'ended',
        reason: event.reason,
        connectionOpen: event.connection_open,
        processes: event.processes,
      }
    : { ...facts, type: event.type };
}

/**
 * What hosts of an `ssh` resource fetch, without credentials (docs/provisioners.md#ssh): the
 * certificate authority's public key for `TrustedUserCAKeys`, and the revocation list of
 * certificates whose grants ended early for `RevokedKeys`. Both are public by nature: the list
 * names serial numbers only.
 */
export function sshRoutes(deps: HttpDependencies): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/ssh/:resource/ca.pub',
      {
        schema: {
          summary: "The SSH certificate authority's public key of an ssh resource (sshd TrustedUserCAKeys)",
          tags: ['ssh'],
          params,
        },
      },
      async (request, reply) => {
        const line = deps.ssh?.caPublicKey(request.params.resource);
        if (line === undefined) throw new PortcullisError('not_found');
        return reply
          .type('text/plain; charset=utf-8')
          .header('cache-control', 'public, max-age=300')
          .send(`${line}\n`);
      },
    );

    app.get(
      '/ssh/:resource/revoked.krl',
      {
        schema: {
          summary: 'Key revocation list of the certificates of grants that ended early (sshd RevokedKeys)',
          tags: ['ssh'],
          params,
        },
      },
      async (request, reply) => {
        const list = await deps.ssh?.revocationList(request.params.resource);
        if (list === undefined) throw new PortcullisError('not_found');
        return reply.type('application/octet-stream').send(list);
      },
    );

    app.post(
      '/ssh/:resource/session-events',
      {
        // The secret before the body: a stranger learns nothing from how a report is checked.
        preValidation: async (request) => {
          if (!deps.sshReports)
            throw new PortcullisError('not_found', 'No ssh resource takes session reports');
          const { resource } = request.params as { resource?: string };
          await deps.sshReports.authenticate(
            String(resource),
            request.headers.authorization,
            originOf(request),
          );
        },
        schema: {
          summary:
            "ssh-guard's report of certificate logins on a host: started, closed by themselves, ended by the guard (audited per grant)",
          tags: ['ssh'],
          params,
          body: sessionReport,
          response: {
            200: z.object({
              recorded: z.number().int(),
              duplicates: z
                .number()
                .int()
                .describe(
                  'Events already recorded from an earlier report (same login, same kind): not recorded again',
                ),
              rejected: z.array(
                z.object({
                  index: z.number().int(),
                  code: z.enum(['unknown_grant', 'serial_mismatch']),
                  detail: z.string(),
                }),
              ),
            }),
            400: problemView,
            401: problemView,
            404: problemView,
            503: problemView,
          },
        },
      },
      async (request, reply) => {
        const from = originOf(request);
        const outcome = await (deps.sshReports as NonNullable<HttpDependencies['sshReports']>).record(
          request.params.resource,
          request.body.host,
          request.body.events.map(hostEvent),
          from,
        );
        return reply.header('cache-control', 'no-store').send(outcome);
      },
    );
  };
}
