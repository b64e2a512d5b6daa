/**
 * Helpers for the database gateway's end-to-end tests: a live `demo-db` grant for alice (requested
 * by alice, approved by bob) with an access token, node-postgres clients through the gateway, and
 * a look at the target's pg_stat_activity.
 */
import pg from 'pg';
import type { Harness } from './portcullis-harness.js';

export interface GatewayGrant {
  readonly grantId: string;
  readonly requestId: string;
  readonly token: string;
  /** The grant's PostgreSQL login (an artefact, not a secret). */
  readonly login: string;
  readonly expiresAt: number;
}

/**
 * Alice asks for `demo-db/readonly` for `durationSeconds` and bob approves; or, for `readwrite`,
 * she names a ticket and bob and carol approve (the e2e policies want two approvers). She then
 * takes an access token.
 */
export async function liveGrant(
  h: Harness,
  sessions: Readonly<Record<string, string>>,
  durationSeconds = 600,
  role: 'readonly' | 'readwrite' = 'readonly',
): Promise<GatewayGrant> {
  const created = await h.api(sessions.alice ?? '', 'POST', '/api/v1/requests', {
    resource: 'demo-db',
    role,
    duration: durationSeconds,
    reason: 'gateway test',
    ...(role === 'readwrite' && { ticket: 'OPS-1' }),
  });
  if (created.status !== 201) throw new Error(`request: ${created.status} ${JSON.stringify(created.body)}`);
  const requestId = created.body.id as string;
  const approvers = role === 'readwrite' ? ['bob', 'carol'] : ['bob'];
  let approved: Awaited<ReturnType<Harness['api']>> | undefined;
  for (const approver of approvers) {
    approved = await h.api(sessions[approver] ?? '', 'POST', `/api/v1/requests/${requestId}/approve`, {});
    if (approved.status !== 200)
      throw new Error(`approve (${approver}): ${approved.status} ${JSON.stringify(approved.body)}`);
  }
  const grantId = approved?.body.grant_id as string;
  const issued = await h.api(sessions.alice ?? '', 'POST', `/api/v1/grants/${grantId}/token`);
  if (issued.status !== 200) throw new Error(`token: ${issued.status} ${JSON.stringify(issued.body)}`);
  const grant = await h.api(sessions.alice ?? '', 'GET', `/api/v1/grants/${grantId}`);
  const artefacts = grant.body.artefacts as Record<string, string>;
  return {
    grantId,
    requestId,
    token: issued.body.access_token as string,
    login: artefacts.login ?? '',
    expiresAt: Date.parse(approved?.body.expires_at as string),
  };
}

/** Connection settings for node-postgres through the gateway. */
export function viaGateway(
  h: Harness,
  user: string,
  password: string,
  database = 'demo-db',
): pg.ClientConfig {
  const gateway = h.portcullis.gateway;
  if (!gateway) throw new Error('the harness runs without the gateway');
  return { host: '127.0.0.1', port: gateway.port, user, password, database, connectionTimeoutMillis: 5000 };
}

/** A connected node-postgres client through the gateway (errors after connect are swallowed). */
export async function connectViaGateway(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Backends of `login` on the target, as the superuser sees them. */
export async function backendsOf(adminUrl: string, login: string): Promise<number> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const result = await admin.query('select count(*)::int as n from pg_stat_activity where usename = $1', [
      login,
    ]);
    return (result.rows[0] as { n: number }).n;
  } finally {
    await admin.end();
  }
}

/**
 * The statements the gateway recorded, one entry per statement, flattened from its
 * `gateway.statements` batches (one per grant and flush, a run per session, with the batch's
 * grant, resource and actor), in chain order.
 */
export async function recordedStatements(h: Harness) {
  const batches = await gatewayEvents(h, 'gateway.statements');
  return batches.flatMap((batch) =>
    (
      batch.data.sessions as { from: number; session: string; statements: Record<string, unknown>[] }[]
    ).flatMap((run) =>
      run.statements.map((statement, i) => ({
        actor: batch.actor,
        grantId: batch.grantId,
        resourceId: batch.resourceId,
        requestId: batch.requestId,
        number: run.from + i,
        data: { session: run.session, ...statement } as Record<string, unknown>,
      })),
    ),
  );
}

/** Audit events of the given type, after the gateway has written what it queued. */
export async function gatewayEvents(h: Harness, type: string) {
  await h.portcullis.gateway?.flushRecords();
  const events = await h.portcullis.store.auditLog.read(0, 100_000);
  return events
    .filter((event) => event.type === type)
    .map((event) => ({ ...event, data: (event.data ?? {}) as Record<string, unknown> }));
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(
  promise: Promise<unknown>,
): Promise<Error & { code?: string; severity?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
