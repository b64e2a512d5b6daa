/**
 * The reconciler over a real store (SQLite and PostgreSQL): the schedule and its lease across
 * replicas, a target that cannot be read, a take-back that fails, and failing closed when the audit
 * log cannot be written. The provisioner here is scripted; the real PostgreSQL target is proven in
 * src/server/reconcile.test.ts.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import { ManualClock } from '../core/clock.js';
import type { DriftKind, TargetHolding } from '../core/drift.js';
import type { ResourceDefinition } from '../core/resource.js';
import type { StandingAccess } from '../core/standing-access.js';
import { testEpoch, testGrant, testRequest } from '../storage/test-fixtures.js';
import type { ProvisionContext, Provisioner, Store } from './ports.js';
import { type ReconcileMetrics, Reconciler } from './reconciler.js';

class ScriptedProvisioner implements Provisioner {
  readonly kind = 'scripted';
  readonly activatesInProcess = false;
  holdings: TargetHolding[] = [];
  inspectError: Error | undefined;
  revokeError: Error | undefined;
  /** Undefined: the kind cannot tell (no `standing`); null: this resource's target is not asked. */
  standingAccess: StandingAccess[] | Error | null | undefined;
  readonly revoked: string[] = [];

  plan() {
    return {};
  }
  async apply() {
    return { artefacts: {} };
  }
  async revoke(context: ProvisionContext): Promise<void> {
    if (this.revokeError) throw this.revokeError;
    this.revoked.push(context.grant.id);
    this.holdings = this.holdings.filter((h) => h.grantId !== context.grant.id);
  }
  async inspect(): Promise<readonly TargetHolding[]> {
    if (this.inspectError) throw this.inspectError;
    return this.holdings;
  }
  get standing(): Provisioner['standing'] {
    const answer = this.standingAccess;
    if (answer === undefined) return undefined;
    return async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    };
  }
  async close() {}
}

class CountingMetrics implements ReconcileMetrics {
  readonly drift: [string, DriftKind][] = [];
  readonly inspectFailures: string[] = [];
  readonly standing: [string, number][] = [];
  runs = 0;
  standingAccess(resourceId: string, count: number) {
    this.standing.push([resourceId, count]);
  }
  driftFound(resourceId: string, kind: DriftKind) {
    this.drift.push([resourceId, kind]);
  }
  inspectFailed(resourceId: string) {
    this.inspectFailures.push(resourceId);
  }
  runCompleted() {
    this.runs++;
  }
}

function resource(id: string): ResourceDefinition {
  return {
    id,
    kind: 'scripted',
    description: '',
    sensitivity: 'high',
    labels: {},
    owners: [],
    roles: new Map([['readonly', { name: 'readonly', description: '', grants: [] }]]),
  };
}

const minute = 60_000;

function reconciler(
  store: Store,
  provisioner: ScriptedProvisioner,
  options: { owner?: string; clock?: ManualClock; metrics?: CountingMetrics; resources?: string[] } = {},
) {
  let ids = 0;
  return new Reconciler({
    store,
    provisioners: { get: () => provisioner },
    resources: new Map((options.resources ?? ['orders-db']).map((id) => [id, resource(id)])),
    clock: options.clock ?? new ManualClock(testEpoch),
    metrics: options.metrics ?? new CountingMetrics(),
    newId: () => `id-${++ids}`,
    intervalMs: 10 * minute,
    owner: options.owner ?? 'replica-a',
    isAdmin: () => true,
    onError: (error) => {
      throw error;
    },
  });
}

const system = { sourceIp: null, userAgent: null, channel: 'system' };

forEachDialect('Reconciler', (ctx) => {
  it('runs on schedule: the clock starts at the first tick, then once per interval', async () => {
    const clock = new ManualClock(testEpoch);
    const r = reconciler(ctx.store, new ScriptedProvisioner(), { clock });
    assert.equal(await r.runIfDue(clock.now()), undefined, 'a new installation has nothing to compare yet');
    clock.advance(10 * minute - 1);
    assert.equal(await r.runIfDue(clock.now()), undefined);
    clock.advance(1);
    const report = await r.runIfDue(clock.now());
    assert.equal(report?.trigger, 'schedule');
    assert.equal(await r.runIfDue(clock.now()), undefined, 'not twice in one interval');
    const summaries = (await ctx.store.auditLog.read(0, 100)).filter((e) => e.type === 'reconcile.completed');
    assert.deepEqual(
      summaries.map((e) => [e.actor, e.severity, (e.data as { trigger: string }).trigger]),
      [['system', 'info', 'schedule']],
    );
  });

  it('one replica runs each scheduled pass; another takes over once it stops', async () => {
    const clock = new ManualClock(testEpoch);
    const a = reconciler(ctx.store, new ScriptedProvisioner(), { clock, owner: 'replica-a' });
    const b = reconciler(await ctx.openStore(), new ScriptedProvisioner(), { clock, owner: 'replica-b' });
    await a.runIfDue(clock.now());
    clock.advance(10 * minute);
    const reports = [await a.runIfDue(clock.now()), await b.runIfDue(clock.now())];
    assert.deepEqual(
      reports.map((r) => r?.trigger),
      ['schedule', undefined],
    );
    await a.stop();
    clock.advance(10 * minute);
    assert.equal((await b.runIfDue(clock.now()))?.trigger, 'schedule');
  });

  it('a target that cannot be read is reported, and the other resources are still compared', async () => {
    const provisioner = new ScriptedProvisioner();
    provisioner.inspectError = new Error('connect ECONNREFUSED 10.0.0.7:5432 as portcullis_admin');
    const metrics = new CountingMetrics();
    const r = reconciler(ctx.store, provisioner, { metrics, resources: ['orders-db'] });
    const report = await r.run('system', system, 'request');
    const [orders] = report.resources;
    assert.equal(orders?.outcome, 'inspect_failed');
    assert.match(orders?.reference ?? '', /^[0-9a-z]{1,12}$/);
    assert.deepEqual(metrics.inspectFailures, ['orders-db']);
    const summary = (await ctx.store.auditLog.read(0, 100)).find((e) => e.type === 'reconcile.completed');
    assert.equal(summary?.severity, 'warning');
  });

  it('a take-back that fails is recorded with its reference, and the access stays reported', async () => {
    const provisioner = new ScriptedProvisioner();
    provisioner.holdings = [{ grantId: 'ghost', artefacts: { login: 'pc_ghost' } }];
    provisioner.revokeError = new Error('permission denied to drop role');
    const report = await reconciler(ctx.store, provisioner).run('system', system, 'request');
    const finding = report.resources[0]?.findings[0];
    assert.equal(finding?.outcome, 'take_back_failed');
    assert.equal(finding?.error, 'permission denied to drop role');
    const types = (await ctx.store.auditLog.read(0, 100)).map((e) => e.type);
    assert.deepEqual(types, ['reconcile.drift_found', 'reconcile.take_back_failed', 'reconcile.completed']);
  });

  it('fails closed: when the finding cannot be audited, nothing is taken back', async () => {
    const provisioner = new ScriptedProvisioner();
    provisioner.holdings = [{ grantId: 'ghost', artefacts: { login: 'pc_ghost' } }];
    const unwritable: Store = {
      ...ctx.store,
      transaction: async () => {
        throw new Error('audit log unavailable');
      },
    };
    await assert.rejects(
      reconciler(unwritable, provisioner).run('system', system, 'request'),
      /audit log unavailable/,
    );
    assert.deepEqual(provisioner.revoked, []);
  });

  it('a grant that is active and held is no drift; a revoked one held again is taken back', async () => {
    const provisioner = new ScriptedProvisioner();
    const live = testGrant('g-live', testRequest('r-live', { resourceId: 'orders-db' }));
    const ended = {
      ...testGrant('g-ended', testRequest('r-ended', { resourceId: 'orders-db' })),
      status: 'revoked' as const,
      revokedAt: testEpoch - minute,
    };
    await ctx.store.transaction(async (tx) => {
      for (const g of [live, ended]) {
        await tx.requests.insert(testRequest(g.requestId, { resourceId: 'orders-db' }));
        await tx.grants.insert(g);
      }
    });
    provisioner.holdings = [
      { grantId: live.id, artefacts: live.artefacts },
      { grantId: ended.id, artefacts: { login: 'pc_back_again' } },
    ];
    const report = await reconciler(ctx.store, provisioner).run('system', system, 'request');
    assert.deepEqual(
      report.resources[0]?.findings.map((f) => [f.kind, f.grantId, f.outcome]),
      [['present_after_revocation', ended.id, 'taken_back']],
    );
    assert.deepEqual(provisioner.revoked, [ended.id]);
  });
  it('standing access is reported (high), once a day while it lasts, never taken back', async () => {
    const clock = new ManualClock(testEpoch);
    const metrics = new CountingMetrics();
    const target = new ScriptedProvisioner();
    target.standingAccess = [
      { holder: 'dev_bob', via: 'app_readwrite' },
      { holder: 'root', via: 'superuser' },
    ];
    const r = reconciler(ctx.store, target, { clock, metrics });
    const first = await r.run('system', system, 'request');
    assert.deepEqual(
      first.resources[0]?.standing.map((s) => [s.holder, s.via, s.outcome]),
      [
        ['dev_bob', 'app_readwrite', 'reported'],
        ['root', 'superuser', 'reported'],
      ],
    );
    clock.advance(10 * minute);
    const again = await r.run('system', system, 'request');
    assert.deepEqual(
      again.resources[0]?.standing.map((s) => s.outcome),
      ['reported_before', 'reported_before'],
    );
    clock.advance(24 * 60 * minute);
    const nextDay = await r.run('system', system, 'request');
    assert.deepEqual(
      nextDay.resources[0]?.standing.map((s) => s.outcome),
      ['reported', 'reported'],
    );
    assert.deepEqual(target.revoked, []);
    const events = await ctx.store.auditLog.read(0, 100);
    const found = events.filter((e) => e.type === 'reconcile.standing_found');
    assert.equal(found.length, 4);
    assert.deepEqual(
      [found[0]?.severity, found[0]?.resourceId, found[0]?.data],
      ['high', 'orders-db', { run: first.id, holder: 'dev_bob', via: 'app_readwrite' }],
    );
    const summaries = events.filter((e) => e.type === 'reconcile.completed');
    assert.ok(summaries.every((e) => e.severity === 'high'));
    assert.deepEqual(metrics.standing, [
      ['orders-db', 2],
      ['orders-db', 2],
      ['orders-db', 2],
    ]);
  });

  it('a target not asked about standing access reports none and sets no gauge', async () => {
    const target = new ScriptedProvisioner();
    target.standingAccess = null;
    const metrics = new CountingMetrics();
    const report = await reconciler(ctx.store, target, { metrics }).run('system', system, 'request');
    assert.deepEqual([report.resources[0]?.outcome, report.resources[0]?.standing], ['checked', []]);
    assert.deepEqual(metrics.standing, []);
  });

  it('standing access that cannot be read makes the resource inspect_failed, its drift still handled', async () => {
    const target = new ScriptedProvisioner();
    target.standingAccess = new Error('permission denied for table pg_authid');
    const report = await reconciler(ctx.store, target).run('system', system, 'request');
    assert.equal(report.resources[0]?.outcome, 'inspect_failed');
    assert.match(String(report.resources[0]?.error), /permission denied/);
  });
});
