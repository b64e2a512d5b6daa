/**
 * Renders every error as RFC 9457 `application/problem+json` with a stable `code`. Internal faults
 * are logged and shown only as `internal`, never with their message.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { type ErrorCode, errorCatalogue, PortcullisError } from '../core/errors.js';

export const problemContentType = 'application/problem+json; charset=utf-8';

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  code: ErrorCode,
  detail: string,
  /** Extension members; they can never replace the standard members. */
  extra: Record<string, unknown> = {},
): FastifyReply {
  const { status, title } = errorCatalogue[code];
  return reply
    .code(status)
    .type(problemContentType)
    .send({
      type: `https://portcullis.dev/errors/${code}`,
      title,
      status,
      code,
      detail,
      instance: request.url,
      ...extra,
    });
}

const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
};

export function installProblemHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, request, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`);
  });
  app.setErrorHandler((error: FastifyError | PortcullisError | Error, request, reply) => {
    if (error instanceof PortcullisError) {
      if (!error.expose) request.log.error({ err: error }, 'request failed');
      const detail = error.expose ? error.message : errorCatalogue[error.code].title;
      return sendProblem(reply, request, error.code, detail, error.expose ? { ...error.details } : {});
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => ({
        path: `${error.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`,
        message: v.message ?? 'invalid',
      }));
      return sendProblem(
        reply,
        request,
        'validation_failed',
        issues.map((i) => `${i.path}: ${i.message}`).join('; '),
        {
          issues,
        },
      );
    }
    const fastifyError = error as FastifyError;
    const mapped = fastifyError.code ? fastifyCodes[fastifyError.code] : undefined;
    if (mapped) return sendProblem(reply, request, mapped, fastifyError.message);
    if (fastifyError.statusCode && fastifyError.statusCode < 500) {
      return sendProblem(reply, request, 'validation_failed', fastifyError.message);
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, request, 'internal', 'Internal error');
  });
}
