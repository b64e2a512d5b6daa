import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PortcullisError } from '../../core/errors.js';
import type { HttpDependencies } from '../context.js';

const params = z.object({ resource: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/) }).strict();

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
  };
}
