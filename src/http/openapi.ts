/**
 * The OpenAPI document is generated from the route schemas themselves (no hand-written spec to
 * drift). `npm run openapi` writes it to openapi.json; a test fails when the checked-in file differs.
 */
import { buildHttpApp } from './app.js';
import type { HttpDependencies } from './context.js';

/** Builds the routes without any service behind them: only their schemas are read. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const unused = () => {
    throw new Error('not available while generating the OpenAPI document');
  };
  const inert = new Proxy({} as HttpDependencies, {
    get: (_target, property) => {
      if (property === 'bodyLimitBytes') return 65_536;
      if (property === 'trustProxy') return false;
      if (property === 'logger') return false;
      return unused;
    },
  });
  const app = await buildHttpApp(inert);
  try {
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}

export function serialiseOpenApi(document: Record<string, unknown>): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
