/**
 * Expiry → access gone, measured on grants the real expiry loop ends. Creates `grants` active
 * `postgres` grants (service level: request + approval, which provisions a real login) whose
 * deadlines are spread evenly over `spreadSeconds`, starting `leadSeconds` after creation began;
 * a few of them get an open session as the requester. Then it waits for the loop and reads, per
 * grant, `revoked_at − expires_at` (login disabled, sessions ended, role dropped) and when the loop
 * marked the request expired (its `updated_at − expires_at`; tokens, introspection and credentials
 * are refused from `expires_at` on regardless, by comparing with the clock). Finally it
 * checks on the target that every login is gone and every held session was closed.
 */
import pg from 'pg';
import type { Principal } from '../src/core/principal.js';
import type { RunningPortcullis } from '../src/server/start.js';
import { type LatencySummary, runConcurrently, sleep, summarize } from './bench-support.js';

export interface ExpiryLagFigures {
  readonly grants: number;
  readonly spreadSeconds: number;
  readonly leadSeconds: number;
  /** How long creating (requesting, approving, provisioning) all grants took. */
  readonly creationSeconds: number;
  /** Grants whose deadline passed while others were still being created (the loop then competed with creation). */
  readonly expiredDuringCreation: number;
  /** `revoked_at − expires_at`: the login is gone in the target. */
  readonly revokedLag: LatencySummary;
  /** Request `updated_at − expires_at` of the expire transition: when the loop picked the grant up. */
  readonly expiredLag: LatencySummary;
  readonly lateOverOneSecond: number;
  /** Grants not `revoked` when the wait ended (status → count). */
  readonly notRevoked: Record<string, number>;
  readonly loginsLeft: number;
  readonly heldSessions: number;
  readonly heldSessionsStillOpen: number;
}

export interface ExpiryLagOptions {
  readonly portcullis: RunningPortcullis;
  readonly targetAdminUrl: string;
  readonly grants: number;
  readonly spreadSeconds: number;
  readonly leadSeconds: number;
  readonly creators: number;
  readonly heldSessions: number;
  /** Extra wait after the last deadline before giving up on unfinished revocations. */
  readonly graceSeconds: number;
}

const origin = { sourceIp: '127.0.0.1', userAgent: 'portcullis-bench', channel: 'api' };
const requester: Principal = {
  id: 'bench:expiry-requester',
  idp: 'bench',
  subject: 'expiry-requester',
  displayName: 'Expiry bench requester',
  email: null,
  groups: ['engineering'],
};
const approver: Principal = {
  id: 'bench:expiry-approver',
  idp: 'bench',
  subject: 'expiry-approver',
  displayName: 'Expiry bench approver',
  email: null,
  groups: ['sre'],
};

interface CreatedGrant {
  readonly grantId: string;
  readonly requestId: string;
  readonly login: string;
  readonly expiresAt: number;
}

export async function runExpiryLagBench(options: ExpiryLagOptions): Promise<ExpiryLagFigures> {
  const { access, store } = options.portcullis;
  const created: CreatedGrant[] = [];
  const sessions: pg.Client[] = [];
  const holdEvery =
    options.heldSessions > 0 ? Math.max(1, Math.floor(options.grants / options.heldSessions)) : 0;
  const firstDeadline = Date.now() + options.leadSeconds * 1000;

  try {
    // As a sign-in would: the approval re-checks each request with the requester's stored groups.
    await store.principals.upsert(requester, Date.now());
    const creationStarted = performance.now();
    await runConcurrently(options.creators, options.grants, async (index) => {
      const deadline = firstDeadline + (options.spreadSeconds * 1000 * index) / options.grants;
      // Durations are whole seconds from activation, so deadlines land within ±0.5 s of the plan.
      const durationSeconds = Math.max(1, Math.round((deadline - Date.now()) / 1000));
      const request = await access.createRequest(
        requester,
        {
          resourceId: 'demo-db',
          role: 'readonly',
          durationSeconds,
          reason: `expiry lag ${index}`,
          ticket: null,
        },
        origin,
      );
      const active = await access.review(approver, request.id, 'approve', 'bench', origin);
      if (active.state !== 'active' || active.expiresAt === null)
        throw new Error(`grant for request ${request.id} is ${active.state}`);
      const grantId = await access.grantIdOf(request.id);
      const grant = grantId ? await store.grants.get(grantId) : undefined;
      if (!grant) throw new Error(`request ${request.id} has no grant`);
      created.push({
        grantId: grant.id,
        requestId: request.id,
        login: String(grant.artefacts.login),
        expiresAt: grant.expiresAt,
      });
      if (holdEvery > 0 && index % holdEvery === 0 && sessions.length < options.heldSessions) {
        const credentials = await access.credentials(requester, grant.id, origin);
        const session = new pg.Client({
          connectionString: credentials.connection_string,
          connectionTimeoutMillis: 5000,
        });
        // The server terminating this session at expiry is what we expect.
        session.on('error', () => {});
        await session.connect();
        await session.query('select 1');
        sessions.push(session);
      }
    });
    const creationEnded = Date.now();
    const creationSeconds = (performance.now() - creationStarted) / 1000;

    const lastDeadline = Math.max(...created.map((g) => g.expiresAt));
    const ids = new Set(created.map((g) => g.grantId));
    const giveUpAt = lastDeadline + options.graceSeconds * 1000;
    await sleep(Math.max(0, lastDeadline - Date.now() + 500));
    // One cheap query a second, so watching does not load the storage the loop works on.
    while (Date.now() < giveUpAt) {
      const open = await store.grants.list({ statuses: ['active', 'revoking', 'revoke_failed'], limit: 500 });
      if (!open.some((g) => ids.has(g.id))) break;
      await sleep(1000);
    }

    const revokedLags: number[] = [];
    const expiredLags: number[] = [];
    const notRevoked: Record<string, number> = {};
    for (const item of created) {
      const grant = await store.grants.get(item.grantId);
      const request = await store.requests.get(item.requestId);
      if (grant?.status === 'revoked' && grant.revokedAt !== null)
        revokedLags.push(grant.revokedAt - grant.expiresAt);
      else notRevoked[grant?.status ?? 'missing'] = (notRevoked[grant?.status ?? 'missing'] ?? 0) + 1;
      if (request?.state === 'expired' && request.expiresAt !== null)
        expiredLags.push(request.updatedAt - request.expiresAt);
    }

    const target = new pg.Client({ connectionString: options.targetAdminUrl });
    await target.connect();
    let loginsLeft: number;
    try {
      const { rows } = await target.query<{ left: string }>(
        'select count(*) as left from pg_roles where rolname = any($1::text[])',
        [created.map((g) => g.login)],
      );
      loginsLeft = Number(rows[0]?.left ?? 0);
    } finally {
      await target.end();
    }
    let stillOpen = 0;
    for (const session of sessions) {
      try {
        await session.query('select 1');
        stillOpen++;
      } catch {
        // Terminated by the revocation, as it should be.
      }
    }

    return {
      grants: created.length,
      spreadSeconds: options.spreadSeconds,
      leadSeconds: options.leadSeconds,
      creationSeconds,
      expiredDuringCreation: created.filter((g) => g.expiresAt < creationEnded).length,
      revokedLag: summarize(revokedLags),
      expiredLag: summarize(expiredLags),
      lateOverOneSecond:
        revokedLags.filter((lag) => lag > 1000).length + (created.length - revokedLags.length),
      notRevoked,
      loginsLeft,
      heldSessions: sessions.length,
      heldSessionsStillOpen: stillOpen,
    };
  } finally {
    await Promise.all(sessions.map((session) => session.end().catch(() => {})));
  }
}
