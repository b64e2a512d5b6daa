import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { errorCatalogue } from '../core/errors.js';
import { ApiClient, errorFromResponse, exitCodeForStatus, normalizeServerUrl } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';

const problem = (status: number, code: string, detail: string, extra: Record<string, unknown> = {}) =>
  new Response(
    JSON.stringify({
      type: `https://portcullis.dev/errors/${code}`,
      title: 't',
      status,
      code,
      detail,
      instance: '/x',
      ...extra,
    }),
    {
      status,
      headers: { 'content-type': 'application/problem+json; charset=utf-8' },
    },
  );

describe('problem responses → exit codes', () => {
  it('maps every code of the server catalogue to a documented exit code', () => {
    const expected: Record<number, number> = {
      400: exitCodes.usage,
      401: exitCodes.unauthenticated,
      403: exitCodes.forbidden,
      404: exitCodes.notFound,
      409: exitCodes.conflict,
      413: exitCodes.usage,
      415: exitCodes.usage,
      429: exitCodes.unavailable,
      500: exitCodes.unavailable,
      502: exitCodes.unavailable,
      503: exitCodes.unavailable,
    };
    for (const [code, { status }] of Object.entries(errorCatalogue)) {
      const exit = exitCodeForStatus(status, code);
      if (code === 'login_failed') assert.equal(exit, exitCodes.unauthenticated, code);
      else assert.equal(exit, expected[status], `${code} (${status})`);
    }
  });

  it('keeps the server code and detail, names the deciding policies, and hints at login on 401', async () => {
    const denied = await errorFromResponse(
      problem(403, 'policy_denied', 'Requests for prod-db need a ticket', {
        policyIds: ['prod-needs-ticket'],
      }),
    );
    assert.equal(denied.code, 'policy_denied');
    assert.equal(denied.exitCode, exitCodes.forbidden);
    assert.equal(denied.message, 'Requests for prod-db need a ticket (policy: prod-needs-ticket)');
    assert.deepEqual(denied.details, { policyIds: ['prod-needs-ticket'] });

    const expired = await errorFromResponse(
      problem(401, 'invalid_token', 'The token has expired'),
      'run `portcullis login --profile bob`',
    );
    assert.equal(expired.exitCode, exitCodes.unauthenticated);
    assert.equal(expired.hint, 'run `portcullis login --profile bob`');

    const state = await errorFromResponse(problem(409, 'invalid_transition', 'The request is approved'));
    assert.equal(state.exitCode, exitCodes.conflict);
  });

  it('copes with error bodies that are not problems', async () => {
    const html = await errorFromResponse(
      new Response('<h1>Bad gateway</h1>', {
        status: 502,
        statusText: 'Bad Gateway',
        headers: { 'content-type': 'text/html' },
      }),
    );
    assert.equal(html.code, 'http_502');
    assert.equal(html.exitCode, exitCodes.unavailable);
    assert.match(html.message, /HTTP 502 Bad Gateway/);
  });
});

describe('server URLs', () => {
  it('are canonicalised, and anything odd is a usage error', () => {
    assert.equal(normalizeServerUrl('https://access.example.com/'), 'https://access.example.com');
    assert.equal(normalizeServerUrl('http://127.0.0.1:8080/portcullis/'), 'http://127.0.0.1:8080/portcullis');
    for (const bad of ['access.example.com', 'ftp://x', 'https://u:p@x', 'https://x/?a=1', 'https://x/#f']) {
      assert.throws(() => normalizeServerUrl(bad), { exitCode: exitCodes.usage }, bad);
    }
  });
});

describe('ApiClient against a real HTTP server', () => {
  let server: Server;
  let base: string;
  let seen: { method?: string; url?: string; headers?: IncomingHttpHeaders; body?: string } = {};

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        seen = { method: request.method, url: request.url, headers: request.headers, body };
        if (request.url === '/redirect') {
          response.writeHead(302, { location: 'https://elsewhere.example/' }).end();
        } else if (request.url === '/html') {
          response.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
        } else if (request.url?.startsWith('/api/v1/requests')) {
          response.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"r1"}');
        } else {
          response
            .writeHead(404, { 'content-type': 'application/problem+json' })
            .end(JSON.stringify({ code: 'not_found', detail: `No route ${request.url}`, status: 404 }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the bearer token, the CLI marker and JSON', async () => {
    const client = new ApiClient({ server: base, token: 'tok.en.x' });
    assert.deepEqual(await client.post('/api/v1/requests', { resource: 'db' }), { id: 'r1' });
    assert.equal(seen.method, 'POST');
    assert.equal(seen.headers?.authorization, 'Bearer tok.en.x');
    assert.equal(seen.headers?.['x-portcullis-client'], 'cli');
    assert.equal(seen.headers?.['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seen.body ?? ''), { resource: 'db' });
    await client.get('/api/v1/requests', { scope: 'all', state: undefined });
    assert.equal(seen.url, '/api/v1/requests?scope=all');
  });

  it('turns problems into CliErrors', async () => {
    await assert.rejects(new ApiClient({ server: base }).get('/api/v1/nope'), {
      code: 'not_found',
      exitCode: exitCodes.notFound,
    });
  });

  it('does not follow redirects with the token', async () => {
    await assert.rejects(new ApiClient({ server: base, token: 't' }).get('/redirect'), (error: unknown) => {
      assert.ok(error instanceof CliError);
      assert.equal(error.code, 'unexpected_redirect');
      assert.match(error.message, /elsewhere\.example/);
      return true;
    });
  });

  it('says so when the server is not Portcullis', async () => {
    await assert.rejects(new ApiClient({ server: base }).get('/html'), {
      code: 'unexpected_response',
      exitCode: exitCodes.unexpected,
    });
  });

  it('reports a refused connection as unavailable (exit 7)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      new ApiClient({ server: `http://127.0.0.1:${port}` }).get('/api/v1/me'),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.exitCode, exitCodes.unavailable);
        assert.match(
          error.message,
          /Cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\)/,
        );
        return true;
      },
    );
  });
});
