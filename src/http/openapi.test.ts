import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { openApiDocument, serialiseOpenApi } from './openapi.js';

test('the checked-in openapi.json matches the routes (run `npm run openapi` after changing them)', async () => {
  const checkedIn = readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8');
  const generated = serialiseOpenApi(await openApiDocument());
  assert.equal(generated, checkedIn);
});

test('every API operation documents its problem responses', async () => {
  const document = (await openApiDocument()) as {
    paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  };
  for (const [path, operations] of Object.entries(document.paths)) {
    if (!path.startsWith('/api/v1/') || path === '/api/v1/introspect') continue;
    for (const [method, operation] of Object.entries(operations)) {
      assert.ok(
        operation.responses?.['401'] || path.startsWith('/api/v1/auth/'),
        `${method} ${path} documents 401`,
      );
    }
  }
});
