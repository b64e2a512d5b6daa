/**
 * Access requests in tests: one made through the HTTP API of a harness (and a token for it), and
 * the audit events of a request.
 */
import assert from 'node:assert/strict';
import type { Store } from '../src/app/ports.js';
import type { Harness } from './portcullis-harness.js';

/** A 10-minute request for `role` on `demo-api` by the holder of `session`; asserts 201, returns the body. */
export async function requestDemoApi(
  h: Harness,
  session: string,
  role: string,
  reason: string,
): Promise<Record<string, unknown>> {
  const created = await h.api(session, 'POST', '/api/v1/requests', {
    resource: 'demo-api',
    role,
    duration: 600,
    reason,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}

/** An access token for a new auto-approved `reader` grant on `demo-api`; asserts each step. */
export async function demoApiAccessToken(h: Harness, session: string, reason: string): Promise<string> {
  const created = await requestDemoApi(h, session, 'reader', reason);
  const issued = await h.api(session, 'POST', `/api/v1/grants/${created.grant_id as string}/token`);
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  return issued.body.access_token as string;
}

/** The audit events of one request, oldest first (of the first 10,000 in the log). */
export async function eventsOfRequest(store: Store, requestId: string) {
  return (await store.auditLog.read(0, 10_000)).filter((e) => e.requestId === requestId);
}
