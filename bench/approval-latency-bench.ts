/**
 * Approval → usable access for the `postgres` provisioner, through the real HTTP API with real
 * session tokens: the clock starts when the approver's POST …/approve is sent and stops when the
 * requester, holding the credentials from GET …/credentials, has connected to the target with a
 * real pg client and `select 1` answered. Each grant is released afterwards (also timed), so
 * logins do not pile up on the target.
 */
import pg from 'pg';
import type { Harness } from '../test-support/portcullis-harness.js';
import { type LatencySummary, summarize } from './bench-support.js';

export interface ApprovalLatencyFigures {
  readonly samples: number;
  /** approve sent → `select 1` answered with the issued credentials. */
  readonly approveToUsable: LatencySummary;
  /** The approve call alone (policy, state change, provisioning the login, activation). */
  readonly approveCall: LatencySummary;
  /** GET …/credentials (decrypt, audit event). */
  readonly credentialsCall: LatencySummary;
  /** New connection (authentication) + `select 1` as the new login. */
  readonly connectAndSelect: LatencySummary;
  /** The requester's release call: login disabled, sessions ended, role dropped. */
  readonly releaseCall: LatencySummary;
}

export interface ApprovalLatencyOptions {
  readonly harness: Harness;
  readonly requesterToken: string;
  readonly approverToken: string;
  readonly samples: number;
  readonly warmup: number;
}

function expectStatus(
  what: string,
  response: { status: number; body: Record<string, unknown> },
  status: number,
) {
  if (response.status !== status) {
    const code = typeof response.body.code === 'string' ? response.body.code : '';
    throw new Error(`${what} answered ${response.status} ${code} (expected ${status})`);
  }
}

export async function runApprovalLatencyBench(
  options: ApprovalLatencyOptions,
): Promise<ApprovalLatencyFigures> {
  const { harness: h, requesterToken, approverToken } = options;
  const total: number[] = [];
  const approve: number[] = [];
  const credentials: number[] = [];
  const connect: number[] = [];
  const release: number[] = [];

  for (let i = 0; i < options.warmup + options.samples; i++) {
    const created = await h.api(requesterToken, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '10m',
      reason: `approval latency sample ${i}`,
    });
    expectStatus('POST /requests', created, 201);
    const requestId = created.body.id as string;

    const started = performance.now();
    const approved = await h.api(approverToken, 'POST', `/api/v1/requests/${requestId}/approve`, {});
    const approvedAt = performance.now();
    expectStatus('POST /requests/:id/approve', approved, 200);
    if (approved.body.state !== 'active')
      throw new Error(`approved request is ${String(approved.body.state)}`);
    const grantId = approved.body.grant_id as string;

    const shown = await h.api(requesterToken, 'GET', `/api/v1/grants/${grantId}/credentials`);
    const shownAt = performance.now();
    expectStatus('GET /grants/:id/credentials', shown, 200);
    const connectionString = (shown.body.credentials as Record<string, string>).connection_string;
    if (!connectionString) throw new Error('the credentials carry no connection_string');

    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.query('select 1');
    } finally {
      const usableAt = performance.now();
      await client.end();
      if (i >= options.warmup) {
        total.push(usableAt - started);
        approve.push(approvedAt - started);
        credentials.push(shownAt - approvedAt);
        connect.push(usableAt - shownAt);
      }
    }

    const releaseStarted = performance.now();
    const released = await h.api(requesterToken, 'POST', `/api/v1/grants/${grantId}/revoke`, {
      reason: 'benchmark sample done',
    });
    expectStatus('POST /grants/:id/revoke', released, 200);
    if (released.body.status !== 'revoked')
      throw new Error(`released grant is ${String(released.body.status)}`);
    if (i >= options.warmup) release.push(performance.now() - releaseStarted);
  }

  return {
    samples: total.length,
    approveToUsable: summarize(total),
    approveCall: summarize(approve),
    credentialsCall: summarize(credentials),
    connectAndSelect: summarize(connect),
    releaseCall: summarize(release),
  };
}
