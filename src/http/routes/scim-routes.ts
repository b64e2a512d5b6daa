/**
 * SCIM 2.0 at /scim/v2 (RFC 7644): Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas.
 * Bodies and answers are `application/scim+json` (plain `application/json` is accepted too);
 * errors are SCIM error documents that also carry Portcullis's stable `code`. Every route needs
 * a SCIM client's bearer secret. Left out of openapi.json on purpose: the SCIM protocol is
 * specified by the RFCs, and its clients (Okta, Entra ID) are configured, not generated.
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ScimClient, ScimService } from '../../app/scim-service.js';
import { type ErrorCode, errorCatalogue, PortcullisError } from '../../core/errors.js';
import { scimContentType, scimError, scimUrn } from '../../scim/scim-protocol.js';
import { originOf } from '../context.js';

export const scimPrefix = '/scim/v2';

declare module 'fastify' {
  interface FastifyRequest {
    scimClient: ScimClient | null;
  }
}

const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
};

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type(scimContentType).send(body);
}

const idPattern = /^[A-Za-z0-9._~-]{1,128}$/;

function idOf(request: FastifyRequest): string {
  const { id } = request.params as { id: string };
  if (!idPattern.test(id)) throw new PortcullisError('not_found', 'No such resource');
  return id;
}

function client(request: FastifyRequest): ScimClient {
  if (!request.scimClient) throw new PortcullisError('unauthenticated');
  return request.scimClient;
}

function listQuery(request: FastifyRequest): { filter?: string; startIndex?: string; count?: string } {
  const q = request.query as Record<string, unknown>;
  const one = (name: string) => {
    const value = q[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string')
      throw new PortcullisError('scim_invalid_value', `"${name}" must be given once`, { attribute: name });
    return value;
  };
  return { filter: one('filter'), startIndex: one('startIndex'), count: one('count') };
}

/** Members are left out when `excludedAttributes` names them, or `attributes` does not. */
function withMembers(request: FastifyRequest): boolean {
  const q = request.query as Record<string, unknown>;
  const names = (value: unknown) =>
    typeof value === 'string' ? value.split(',').map((s) => s.trim().toLowerCase().split(':').pop()) : [];
  if (names(q.excludedAttributes).includes('members')) return false;
  if (typeof q.attributes === 'string') return names(q.attributes).includes('members');
  return true;
}

function serviceProviderConfig(base: string): Record<string, unknown> {
  return {
    schemas: [scimUrn.serviceProviderConfig],
    documentationUri: 'https://portcullis.dev/docs/scim',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: 200 },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer secret',
        description: 'A per-identity-provider secret in the Authorization header',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

function resourceTypes(base: string): Record<string, unknown>[] {
  return [
    {
      schemas: [scimUrn.resourceType],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      schema: scimUrn.user,
      schemaExtensions: [{ schema: scimUrn.enterpriseUser, required: false }],
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` },
    },
    {
      schemas: [scimUrn.resourceType],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      schema: scimUrn.group,
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/Group` },
    },
  ];
}

const attribute = (
  name: string,
  type: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  name,
  type,
  multiValued: false,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...extra,
});

/** The attributes Portcullis keeps; the others of the core schemas are accepted and dropped. */
function schemas(base: string): Record<string, unknown>[] {
  return [
    {
      schemas: [scimUrn.schema],
      id: scimUrn.user,
      name: 'User',
      description: 'User account (Portcullis keeps userName, externalId and active)',
      attributes: [
        attribute('userName', 'string', { required: true, uniqueness: 'server' }),
        attribute('externalId', 'string', { caseExact: true }),
        attribute('active', 'boolean'),
      ],
      meta: { resourceType: 'Schema', location: `${base}/Schemas/${scimUrn.user}` },
    },
    {
      schemas: [scimUrn.schema],
      id: scimUrn.group,
      name: 'Group',
      description: 'Group (Portcullis keeps displayName, externalId and members)',
      attributes: [
        attribute('displayName', 'string', { required: true }),
        attribute('externalId', 'string', { caseExact: true }),
        attribute('members', 'complex', {
          multiValued: true,
          subAttributes: [attribute('value', 'string', { mutability: 'immutable' })],
        }),
      ],
      meta: { resourceType: 'Schema', location: `${base}/Schemas/${scimUrn.group}` },
    },
  ];
}

/** The SCIM routes, registered with prefix {@link scimPrefix}. */
export function scimRoutes(scim: ScimService, baseUrl: string): FastifyPluginAsync {
  return async (app) => {
    app.addContentTypeParser(
      'application/scim+json',
      { parseAs: 'string' },
      app.getDefaultJsonParser('error', 'error'),
    );
    app.decorateRequest('scimClient', null);
    app.addHook('onRequest', async (request) => {
      request.scimClient = await scim.authenticate(request.headers.authorization, originOf(request));
    });

    app.setNotFoundHandler((request, reply) => {
      send(
        reply,
        404,
        scimError('not_found', 404, `No SCIM endpoint ${request.method} ${request.url.split('?')[0]}`),
      );
    });
    app.setErrorHandler(async (error: FastifyError | PortcullisError | Error, request, reply) => {
      let failure: PortcullisError;
      if (error instanceof PortcullisError) failure = error;
      else {
        const fastifyError = error as FastifyError;
        const mapped = fastifyError.code ? fastifyCodes[fastifyError.code] : undefined;
        if (!mapped && !(fastifyError.statusCode && fastifyError.statusCode < 500)) {
          request.log.error({ err: error }, 'SCIM request failed');
          return send(reply, 500, scimError('internal', 500, 'Internal error'));
        }
        failure = new PortcullisError(mapped ?? 'validation_failed', fastifyError.message);
      }
      if (!failure.expose) {
        request.log.error({ err: failure }, 'SCIM request failed');
        return send(
          reply,
          failure.status,
          scimError(failure.code, failure.status, errorCatalogue[failure.code].title),
        );
      }
      // Authentication failures were audited when they happened; other refusals are audited here.
      if (failure.code !== 'unauthenticated' && failure.code !== 'invalid_token') {
        await scim
          .recordRejection(
            request.scimClient,
            originOf(request),
            `${request.method} ${request.url.split('?')[0]}`,
            failure,
          )
          .catch((auditError: unknown) =>
            request.log.error({ err: auditError }, 'SCIM rejection not audited'),
          );
      }
      if (failure.status === 401) reply.header('www-authenticate', 'Bearer realm="portcullis-scim"');
      return send(reply, failure.status, scimError(failure.code, failure.status, failure.message));
    });

    const hide = { schema: { hide: true } };

    app.get('/ServiceProviderConfig', hide, async (_request, reply) =>
      send(reply, 200, serviceProviderConfig(baseUrl)),
    );
    app.get('/ResourceTypes', hide, async (_request, reply) => {
      const types = resourceTypes(baseUrl);
      return send(reply, 200, {
        schemas: [scimUrn.listResponse],
        totalResults: types.length,
        startIndex: 1,
        itemsPerPage: types.length,
        Resources: types,
      });
    });
    app.get('/Schemas', hide, async (_request, reply) => {
      const all = schemas(baseUrl);
      return send(reply, 200, {
        schemas: [scimUrn.listResponse],
        totalResults: all.length,
        startIndex: 1,
        itemsPerPage: all.length,
        Resources: all,
      });
    });

    app.get('/Users', hide, async (request, reply) =>
      send(reply, 200, await scim.listUsers(client(request), listQuery(request))),
    );
    app.get('/Users/:id', hide, async (request, reply) =>
      send(reply, 200, await scim.getUser(client(request), idOf(request))),
    );
    app.post('/Users', hide, async (request, reply) => {
      const user = await scim.createUser(client(request), request.body, originOf(request));
      reply.header('location', (user.meta as { location: string }).location);
      return send(reply, 201, user);
    });
    app.put('/Users/:id', hide, async (request, reply) =>
      send(
        reply,
        200,
        await scim.replaceUser(client(request), idOf(request), request.body, originOf(request)),
      ),
    );
    app.patch('/Users/:id', hide, async (request, reply) =>
      send(reply, 200, await scim.patchUser(client(request), idOf(request), request.body, originOf(request))),
    );
    app.delete('/Users/:id', hide, async (request, reply) => {
      await scim.deleteUser(client(request), idOf(request), originOf(request));
      return reply.code(204).send();
    });

    app.get('/Groups', hide, async (request, reply) =>
      send(
        reply,
        200,
        await scim.listGroups(client(request), { ...listQuery(request), withMembers: withMembers(request) }),
      ),
    );
    app.get('/Groups/:id', hide, async (request, reply) =>
      send(reply, 200, await scim.getGroup(client(request), idOf(request), withMembers(request))),
    );
    app.post('/Groups', hide, async (request, reply) => {
      const group = await scim.createGroup(client(request), request.body, originOf(request));
      reply.header('location', (group.meta as { location: string }).location);
      return send(reply, 201, group);
    });
    app.put('/Groups/:id', hide, async (request, reply) =>
      send(
        reply,
        200,
        await scim.replaceGroup(client(request), idOf(request), request.body, originOf(request)),
      ),
    );
    app.patch('/Groups/:id', hide, async (request, reply) =>
      send(
        reply,
        200,
        await scim.patchGroup(client(request), idOf(request), request.body, originOf(request)),
      ),
    );
    app.delete('/Groups/:id', hide, async (request, reply) => {
      await scim.deleteGroup(client(request), idOf(request), originOf(request));
      return reply.code(204).send();
    });
  };
}
