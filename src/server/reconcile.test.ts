/**
 * Reconciliation end to end: a real Portcullis, the shared PostgreSQL server as the target, and
 * drift made by hand on it the way it happens in practice — a login left by a grant Portcullis lost
 * (storage restored from an older backup), a revoked login re-created, an active login dropped, and
 * another installation's login that must be left alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { loginRoleComment, newLoginRoleName } from '../provisioners/postgres-login-role.js';

describe('reconciliation against a real target', () => {
  let h: Harness;
  let skip: string | undefined;
  let superuser: pg.Client;
  let installation: string;
  const madeByHand: string[] = [];

  before(async () => {
    skip = await postgresSkipReason();
    if (skip) return;
    superuser = new pg.Client({ connectionString: sharedPostgresAdminUrl });
    await superuser.connect();
    // The shared server's own superusers and role creators (`root` here) are the machine's,
    // accepted as an operator would accept them; anything else holding the mapped roles is standing access.
    const machineSuperusers = await superuser.query<{ rolname: string }>(
      'select rolname from pg_roles where (rolsuper or rolcreaterole) and rolcanlogin and rolname <> current_user',
    );
    h = await startHarness({
      storage: 'sqlite',
      targetAdminUrl: sharedPostgresAdminUrl,
      targetPostgresOverrides: { standing_allowed: machineSuperusers.rows.map((r) => r.rolname) },
    });
    installation = await h.portcullis.store.installationId();
  });
  after(async () => {
    for (const login of madeByHand) await superuser?.query(`drop role if exists ${login}`);
    await superuser?.end();
    await h?.close();
  });

  const roleExists = async (login: string) =>
    ((await superuser.query('select 1 from pg_roles where rolname = $1', [login])).rowCount ?? 0) > 0;

  /** A login marked as this resource's, the way the provisioner marks one, made behind Portcullis' back. */
  async function loginBehindTheBack(grant: string, options: { installation?: string; login?: string } = {}) {
    const login = options.login ?? newLoginRoleName();
    madeByHand.push(login);
    await superuser.query(`create role ${login} login`);
    await superuser.query(`grant app_readonly to ${login}`);
    const comment = loginRoleComment({
      grant,
      resource: 'demo-db',
      installation: options.installation ?? installation,
    });
    await superuser.query(`comment on role ${login} is ${pg.escapeLiteral(comment)}`);
    return login;
  }

  async function activeGrant(): Promise<{ grantId: string; login: string }> {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-db',
      role: 'readonly',
      duration: '30m',
      reason: 'reconciliation test',
    });
    const approved = await h.api(
      await h.login('bob'),
      'POST',
      `/api/v1/requests/${created.body.id}/approve`,
      {},
    );
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const grantId = approved.body.grant_id as string;
    const grant = await h.portcullis.store.grants.get(grantId);
    return { grantId, login: String(grant?.artefacts.login) };
  }

  async function reconcile() {
    const answer = await h.api(await h.login('dave'), 'POST', '/api/v1/reconcile', {});
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as {
      clean: boolean;
      resources: {
        resource_id: string;
        outcome: string;
        held: number;
        findings: { kind: string; grant_id: string; outcome: string; artefacts: Record<string, unknown> }[];
        standing: { holder: string; via: string; outcome: string }[];
      }[];
    };
  }

  const findingsFor = (report: Awaited<ReturnType<typeof reconcile>>, grantId: string) =>
    report.resources.flatMap((r) => r.findings).filter((f) => f.grant_id === grantId);

  test('a login for a grant Portcullis has no record of is taken back, its session ended, all audited first', async (t) => {
    if (skip) return t.skip(skip);
    const login = await loginBehindTheBack('grant-lost-in-a-restore');
    const asLogin = new URL(sharedPostgresAdminUrl);
    asLogin.username = login;
    asLogin.password = 'trust-auth-ignores-it';
    const session = new pg.Client({ connectionString: asLogin.toString() });
    session.on('error', () => {});
    await session.connect();
    const ended = new Promise<void>((resolve) => session.once('end', () => resolve()));

    const report = await reconcile();
    assert.equal(report.clean, false);
    assert.deepEqual(
      findingsFor(report, 'grant-lost-in-a-restore').map((f) => [f.kind, f.outcome, f.artefacts.login]),
      [['unknown_grant', 'taken_back', login]],
    );
    assert.equal(await roleExists(login), false);
    await ended;

    const events = await h.portcullis.store.auditLog.read(0, 100_000);
    const about = events.filter((e) => (e.data as { grant?: string }).grant === 'grant-lost-in-a-restore');
    assert.deepEqual(
      about.map((e) => [e.type, e.severity, (e.data as { action?: string }).action]),
      [
        ['reconcile.drift_found', 'high', 'taking_back'],
        ['reconcile.taken_back', 'high', undefined],
      ],
    );
    const summary = events.findLast((e) => e.type === 'reconcile.completed');
    assert.equal(summary?.actor, 'demo:dave');
    assert.equal(summary?.severity, 'high');
  });

  test('a revoked grant whose login is back gets it taken back again', async (t) => {
    if (skip) return t.skip(skip);
    const { grantId, login } = await activeGrant();
    const released = await h.api(await h.login('alice'), 'POST', `/api/v1/grants/${grantId}/revoke`, {
      reason: 'done',
    });
    assert.equal(released.body.status, 'revoked', JSON.stringify(released.body));
    assert.equal(await roleExists(login), false);

    await loginBehindTheBack(grantId, { login });
    const report = await reconcile();
    assert.deepEqual(
      findingsFor(report, grantId).map((f) => [f.kind, f.outcome]),
      [['present_after_revocation', 'taken_back']],
    );
    assert.equal(await roleExists(login), false);
  });

  test('an active grant whose login was dropped by hand is reported once, not re-created', async (t) => {
    if (skip) return t.skip(skip);
    const { grantId, login } = await activeGrant();
    // Dropped the way an admin would: what it owns and was granted goes first.
    await superuser.query(`drop owned by ${login}`);
    await superuser.query(`drop role ${login}`);

    const first = await reconcile();
    assert.deepEqual(
      findingsFor(first, grantId).map((f) => [f.kind, f.outcome]),
      [['missing_at_target', 'reported']],
    );
    const second = await reconcile();
    assert.deepEqual(
      findingsFor(second, grantId).map((f) => [f.kind, f.outcome]),
      [['missing_at_target', 'reported_before']],
    );
    assert.equal(await roleExists(login), false, 'nothing is re-created behind the requester');
    const reported = (await h.portcullis.store.auditLog.read(0, 100_000)).filter(
      (e) => e.type === 'reconcile.drift_found' && e.grantId === grantId,
    );
    assert.equal(reported.length, 1);
    assert.equal((await h.portcullis.store.grants.get(grantId))?.status, 'active');
  });

  test('logins of live grants and of another installation are left alone; a token resource is not applicable', async (t) => {
    if (skip) return t.skip(skip);
    const { grantId, login } = await activeGrant();
    const theirs = await loginBehindTheBack('grant-of-another-installation', { installation: 'another-one' });

    const report = await reconcile();
    assert.deepEqual(findingsFor(report, grantId), []);
    assert.deepEqual(findingsFor(report, 'grant-of-another-installation'), []);
    assert.equal(await roleExists(login), true);
    assert.equal(await roleExists(theirs), true);
    const byResource = new Map(report.resources.map((r) => [r.resource_id, r]));
    assert.equal(byResource.get('demo-db')?.outcome, 'checked');
    assert.ok((byResource.get('demo-db')?.held ?? 0) >= 1);
    assert.equal(byResource.get('demo-api')?.outcome, 'not_applicable');
  });

  test('only administrators may run it; a refusal is audited', async (t) => {
    if (skip) return t.skip(skip);
    const answer = await h.api(await h.login('alice'), 'POST', '/api/v1/reconcile', {});
    assert.equal(answer.status, 403);
    assert.equal(answer.body.code, 'forbidden');
    const refusal = (await h.portcullis.store.auditLog.read(0, 100_000)).findLast(
      (e) => e.type === 'security.denied',
    );
    assert.equal(refusal?.actor, 'demo:alice');
    assert.match(String(refusal?.reason), /reconcile/);
  });

  test('a login that holds a mapped role without any grant is standing access: reported, audited, left alone', async (t) => {
    if (skip) return t.skip(skip);
    const holder = `standing_${Date.now().toString(36)}`;
    madeByHand.push(holder);
    await superuser.query(`create role ${holder} login`);
    await superuser.query(`grant app_readwrite to ${holder}`);
    const first = await reconcile();
    const standing = first.resources.find((r) => r.resource_id === 'demo-db')?.standing ?? [];
    assert.deepEqual(
      standing.filter((s) => s.holder === holder),
      [{ holder, via: 'app_readwrite', outcome: 'reported' }],
    );
    assert.equal(first.clean, false);
    assert.ok(await roleExists(holder), 'never taken back: Portcullis did not make it');
    const again = await reconcile();
    assert.equal(
      again.resources.find((r) => r.resource_id === 'demo-db')?.standing.find((s) => s.holder === holder)
        ?.outcome,
      'reported_before',
    );
    const events = (await h.portcullis.store.auditLog.read(0, 100_000)).filter(
      (e) => e.type === 'reconcile.standing_found' && e.data?.holder === holder,
    );
    assert.equal(events.length, 1);
    assert.equal(events[0]?.severity, 'high');
    const metrics = await fetch(`${h.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /portcullis_standing_access\{resource="demo-db"\} [1-9]/);
    await superuser.query(`drop role ${holder}`);
  });

  test('`portcullis reconcile` exits 10 while drift remains and 0 once every target matches', async (t) => {
    if (skip) return t.skip(skip);
    const home = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
    try {
      const cli = (args: string[], input?: string) =>
        runCliProcess(args, { PORTCULLIS_HOME: home, PORTCULLIS_SERVER: h.url }, input);
      const login = await cli(
        ['login', '--username', 'dave', '--password-stdin', '--no-browser'],
        'dave-demo-password\n',
      );
      assert.equal(login.code, 0, login.stderr);

      // The grant whose login was dropped by hand is still active: its finding stands.
      const drift = await cli(['reconcile']);
      assert.equal(drift.code, 10, drift.stderr);
      assert.match(drift.stdout, /missing_at_target .*: reported before/);

      const dave = await h.login('dave');
      const active = await h.api(dave, 'GET', '/api/v1/grants?scope=all&status=active');
      for (const grant of (active.body.grants ?? []) as { id: string }[]) {
        const revoked = await h.api(dave, 'POST', `/api/v1/grants/${grant.id}/revoke`, {
          reason: 'test over',
        });
        assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      }
      const clean = await cli(['reconcile', '--json']);
      assert.equal(clean.code, 0, clean.stdout);
      assert.equal(JSON.parse(clean.stdout).clean, true);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
