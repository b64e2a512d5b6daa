/**
 * Request + approve throughput. One operation is one request for the `demo-api/operator` token
 * role (a policy needing one approval) followed by its approval, ending with an active grant: two
 * API calls, two storage transactions (a token role activates in its approval's transaction) and
 * four hash-chained audit events. Token resources cost nothing to provision, so this measures
 * Portcullis and its storage.
 *
 * - service: `AccessService.createRequest` + `review` called directly, synthetic principals;
 * - http: POST /api/v1/requests + POST …/approve with real session tokens (client in the same
 *   process, so its cost is included);
 * - baseline: the same database without Portcullis — INSERT of a request row, then an UPDATE of
 *   that row (two autocommit statements), as many workers — the ceiling the storage itself sets.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Principal } from '../src/core/principal.js';
import type { RunningPortcullis } from '../src/server/start.js';
import BetterSqlite3 from '../src/storage/better-sqlite3.js';
import type { Harness } from '../test-support/portcullis-harness.js';
import { type LatencySummary, runConcurrently, summarize } from './bench-support.js';

export interface ThroughputFigures {
  readonly operations: number;
  readonly workers: number;
  readonly seconds: number;
  readonly opsPerSecond: number;
  /** Per operation (request + approve), as one worker sees it. */
  readonly latency: LatencySummary;
}

const origin = { sourceIp: '127.0.0.1', userAgent: 'portcullis-bench', channel: 'api' };
const approver: Principal = {
  id: 'bench:approver',
  idp: 'bench',
  subject: 'approver',
  displayName: 'Bench approver',
  email: null,
  groups: ['sre'],
};

function requesterFor(worker: number): Principal {
  return {
    id: `bench:requester-${worker}`,
    idp: 'bench',
    subject: `requester-${worker}`,
    displayName: `Bench requester ${worker}`,
    email: null,
    groups: ['engineering'],
  };
}

async function measure(
  options: ThroughputOptions,
  operation: (index: number, worker: number) => Promise<void>,
): Promise<ThroughputFigures> {
  await runConcurrently(options.workers, options.warmup, operation);
  const latencies: number[] = [];
  const { elapsedMs, completed } = await runConcurrently(
    options.workers,
    options.operations,
    async (index, worker) => {
      const started = performance.now();
      await operation(index, worker);
      latencies.push(performance.now() - started);
    },
    performance.now() + options.maxSeconds * 1000,
  );
  return {
    operations: completed,
    workers: options.workers,
    seconds: elapsedMs / 1000,
    opsPerSecond: completed / (elapsedMs / 1000),
    latency: summarize(latencies),
  };
}

export interface ThroughputOptions {
  readonly workers: number;
  /** At most this many operations… */
  readonly operations: number;
  /** …and none started after this many seconds (the run then reports what it completed). */
  readonly maxSeconds: number;
  readonly warmup: number;
}

export async function runServiceThroughput(
  portcullis: RunningPortcullis,
  options: ThroughputOptions,
): Promise<ThroughputFigures> {
  const requesters = Array.from({ length: options.workers }, (_, worker) => requesterFor(worker));
  // As a sign-in would: the approval re-checks each request with the requester's stored groups.
  for (const requester of requesters) await portcullis.store.principals.upsert(requester, Date.now());
  return measure(options, async (index, worker) => {
    const requester = requesters[worker] as Principal;
    const request = await portcullis.access.createRequest(
      requester,
      {
        resourceId: 'demo-api',
        role: 'operator',
        durationSeconds: 3600,
        reason: `throughput ${index}`,
        ticket: null,
      },
      origin,
    );
    const approved = await portcullis.access.review(approver, request.id, 'approve', 'bench', origin);
    if (approved.state !== 'active') throw new Error(`approved request is ${approved.state}`);
  });
}

export function runHttpThroughput(
  harness: Harness,
  tokens: { readonly requester: string; readonly approver: string },
  options: ThroughputOptions,
): Promise<ThroughputFigures> {
  return measure(options, async (index) => {
    const created = await harness.api(tokens.requester, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'operator',
      duration: 3600,
      reason: `http throughput ${index}`,
    });
    if (created.status !== 201) throw new Error(`POST /requests answered ${created.status}`);
    const approved = await harness.api(
      tokens.approver,
      'POST',
      `/api/v1/requests/${created.body.id}/approve`,
      {},
    );
    if (approved.status !== 200 || approved.body.state !== 'active')
      throw new Error(`approve answered ${approved.status} ${String(approved.body.state)}`);
  });
}

const route = JSON.stringify({
  policyId: 'bench-api-operator',
  approvalsRequired: 1,
  approverGroups: ['sre'],
  maxDurationSeconds: 7200,
});
const reviews = JSON.stringify([{ reviewerId: approver.id, verdict: 'approve', reason: 'bench', at: 0 }]);
const insertSql = `insert into access_requests
  (id, requester_id, resource_id, role, duration_seconds, reason, ticket, state, route, reviews,
   created_at, updated_at, activated_at, expires_at, ended_at, end_reason, version)
  values ($1, $2, 'demo-api', 'operator', 3600, $3, null, 'pending', $4, '[]', $5, $5, null, null, null, null, 1)`;
const updateSql = `update access_requests set state = 'approved', reviews = $2, updated_at = $3, version = 2
  where id = $1 and version = 1`;
const baselinePrefix = 'bench-baseline-';

/** Bare INSERT + UPDATE on the PostgreSQL database the store uses; its rows are deleted afterwards. */
export async function runPostgresBaseline(
  storageUrl: string,
  options: ThroughputOptions,
): Promise<ThroughputFigures> {
  const pool = new pg.Pool({ connectionString: storageUrl, max: options.workers });
  pool.on('error', () => {});
  try {
    return await measure(options, async (index, worker) => {
      const id = `${baselinePrefix}${randomUUID()}`;
      const now = Date.now();
      await pool.query(insertSql, [id, `bench:requester-${worker}`, `baseline ${index}`, route, now]);
      const updated = await pool.query(updateSql, [id, reviews, Date.now()]);
      if (updated.rowCount !== 1) throw new Error('baseline update changed no row');
    });
  } finally {
    await pool.query('delete from access_requests where id like $1', [`${baselinePrefix}%`]).catch(() => {});
    await pool.end();
  }
}

/**
 * Bare INSERT + UPDATE on the SQLite file the store uses, through a second better-sqlite3
 * connection (WAL, synchronous FULL as the store has it). Its calls are synchronous, so workers
 * beyond one only interleave; the figure is what one writer on this file can do.
 */
export async function runSqliteBaseline(
  path: string,
  options: ThroughputOptions,
): Promise<ThroughputFigures> {
  const db = new BetterSqlite3(path);
  try {
    db.pragma('busy_timeout = 5000');
    // The same statements with named parameters ($1 → @p1): better-sqlite3 has no numbered ones.
    const prepare = (sql: string) => {
      const statement = db.prepare(sql.replace(/\$(\d+)/g, '@p$1'));
      return (...values: unknown[]) =>
        statement.run(Object.fromEntries(values.map((value, i) => [`p${i + 1}`, value])));
    };
    const insert = prepare(insertSql);
    const update = prepare(updateSql);
    return await measure(options, async (index, worker) => {
      const id = `${baselinePrefix}${randomUUID()}`;
      const now = Date.now();
      insert(id, `bench:requester-${worker}`, `baseline ${index}`, route, now);
      if (update(id, reviews, Date.now()).changes !== 1) throw new Error('baseline update changed no row');
      // Yield, as a real request handler would between statements.
      await new Promise((resolve) => setImmediate(resolve));
    });
  } finally {
    db.prepare('delete from access_requests where id like ?').run(`${baselinePrefix}%`);
    db.close();
  }
}
