/**
 * The PostgreSQL provisioner against a real scram-sha-256 cluster started for this file, through
 * real node-postgres connections made with the credentials the provisioner hands out.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { fakePostgresServer } from '../../test-support/fake-postgres-server.js';
import { startScramClusterOrSkip } from '../../test-support/scram-cluster.js';
import type { ProvisionContext, ProvisionResult } from '../app/ports.js';
import type { ConfiguredResource, PostgresTarget } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { isPortcullisError } from '../core/errors.js';
import { type Grant, markApplied, newGrant } from '../core/grant.js';
import type { RoleDefinition } from '../core/resource.js';
import { loginRoleComment, newLoginRoleName } from './postgres-login-role.js';
import { PostgresProvisioner } from './postgres-provisioner.js';

const started = await startScramClusterOrSkip();

const targetDatabase = 'portcullis "target" db';
const oddRole = 'odd "role"; drop role app_owner; --';
const limitedAdminPassword = 'limited-admin-pw';
const installation = 'installation-under-test';

describe('PostgresProvisioner', { skip: started.skip }, () => {
  const cluster = started.cluster;
  const provisioner = new PostgresProvisioner({ installation, connectTimeoutMs: 3000 });
  const openClients: pg.Client[] = [];
  let admin: pg.Client;
  let adminUrl: URL;

  function urlFor(database: string, user = 'postgres', password?: string): string {
    const url = new URL(adminUrl);
    url.pathname = `/${encodeURIComponent(database)}`;
    url.username = user;
    if (password !== undefined) url.password = password;
    return url.toString();
  }

  function resource(
    id: string,
    target: Partial<PostgresTarget> = {},
    roles: Record<string, string[]> = {},
  ): ConfiguredResource {
    const definitions: Record<string, string[]> = {
      readonly: ['app_readonly'],
      readwrite: ['app_readwrite'],
      ...roles,
    };
    return {
      id,
      kind: 'postgres',
      description: '',
      sensitivity: 'high',
      labels: {},
      owners: [],
      roles: new Map(
        Object.entries(definitions).map(([name, grants]): [string, RoleDefinition] => [
          name,
          { name, description: '', grants },
        ]),
      ),
      postgres: {
        adminUrl: new Secret(adminUrl.toString(), 'test admin url'),
        database: targetDatabase,
        publicHost: undefined,
        publicPort: undefined,
        connectionLimit: 2,
        gatewayOnly: false,
        gatewayUpstreamAuth: ['scram-sha-256'],
        reassignOwnedTo: 'app_owner',
        standingAllowed: [],
        ...target,
      },
    };
  }

  let prodDb: ConfiguredResource;

  function plannedGrant(on: ConfiguredResource, role: string, lifetimeMs = 60 * 60_000): Grant {
    const id = `grant-${randomUUID()}`;
    return newGrant({
      id,
      requestId: `request-${id}`,
      principalId: 'okta:alice',
      resourceId: on.id,
      role,
      notBefore: Date.now(),
      expiresAt: Date.now() + lifetimeMs,
      artefacts: provisioner.plan({ id }, on),
    });
  }

  function contextFor(grant: Grant, on: ConfiguredResource = prodDb): ProvisionContext {
    const role = on.roles.get(grant.role);
    assert.ok(role, `role ${grant.role} is defined`);
    return { grant, resource: on, role };
  }

  async function connect(connectionString: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    client.on('error', () => {}); // a terminated session also reports here; the tests look at query errors
    openClients.push(client);
    await client.connect();
    return client;
  }

  /** The SQLSTATE of a failed login, or undefined when the login succeeds. */
  async function loginError(connectionString: string): Promise<string | undefined> {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return undefined;
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async function queryError(client: pg.Client, sql: string): Promise<string | undefined> {
    try {
      await client.query(sql);
      return undefined;
    } catch (error) {
      return (error as { code?: string }).code ?? (error as Error).message;
    }
  }

  function withPassword(connectionString: string, password: string): string {
    const url = new URL(connectionString);
    url.password = password;
    return url.toString();
  }

  async function roleExists(name: string): Promise<boolean> {
    const { rows } = await admin.query('select 1 from pg_roles where rolname = $1', [name]);
    return rows.length === 1;
  }

  async function roleOid(name: string): Promise<string | undefined> {
    const { rows } = await admin.query('select oid::text as oid from pg_roles where rolname = $1', [name]);
    return rows[0]?.oid;
  }

  async function sessionsOf(oid: string): Promise<number> {
    const { rows } = await admin.query(
      'select count(*)::int as n from pg_stat_activity where usesysid = $1::oid',
      [oid],
    );
    return rows[0]?.n;
  }

  /** The role dropped behind Portcullis' back while `session` of it still runs. */
  async function dropRoleUnderSession(
    login: string,
    session: pg.Client,
    grantor = 'postgres',
  ): Promise<void> {
    // Only its grantor can revoke the CONNECT that apply granted; then nothing depends on the role.
    await admin.query(
      `set role ${grantor}; revoke connect on database ${pg.escapeIdentifier(targetDatabase)} from ${login}; reset role`,
    );
    await admin.query(`drop role ${login}`);
    assert.equal(await roleExists(login), false);
    assert.deepEqual(
      (await session.query('select 1 as still')).rows,
      [{ still: 1 }],
      'PostgreSQL lets a role be dropped while a session of it runs on',
    );
  }

  function limitedResource(): ConfiguredResource {
    return resource('limited-db', {
      adminUrl: new Secret(urlFor('postgres', 'portcullis_admin', limitedAdminPassword), 'limited admin url'),
    });
  }

  async function apply(
    grant: Grant,
    on: ConfiguredResource = prodDb,
  ): Promise<ProvisionResult & { cs: string }> {
    const result = await provisioner.apply(contextFor(grant, on));
    const cs = result.credentials?.connection_string;
    assert.ok(cs, 'a connection string is handed out');
    return { ...result, cs };
  }

  before(async () => {
    assert.ok(cluster);
    adminUrl = new URL(cluster.adminUrl);
    admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    const db = pg.escapeIdentifier(targetDatabase);
    await admin.query(`create database ${db}`);
    await admin.query(`revoke connect on database ${db} from public`);
    for (const role of ['app_readonly', 'app_readwrite', 'app_owner', oddRole]) {
      await admin.query(`create role ${pg.escapeIdentifier(role)} nologin`);
    }
    // A least-privileged admin account, as docs/provisioners.md describes it.
    await admin.query(
      `create role portcullis_admin login createrole password ${pg.escapeLiteral(limitedAdminPassword)}`,
    );
    await admin.query('grant pg_signal_backend, app_owner to portcullis_admin');
    await admin.query(`grant connect on database ${db} to portcullis_admin with grant option`);

    const target = new pg.Client({ connectionString: urlFor(targetDatabase) });
    await target.connect();
    try {
      await target.query(`
        create table items (id serial primary key, name text not null);
        insert into items (name) values ('seed');
        grant select on items to app_readonly;
        grant select, insert on items to app_readwrite;
        grant usage on sequence items_id_seq to app_readwrite;
        grant create on schema public to app_readwrite;
        create table odd_things (x int);
        grant select on odd_things to ${pg.escapeIdentifier(oddRole)};
      `);
    } finally {
      await target.end();
    }
    prodDb = resource('prod-db', {}, { odd: [oddRole] });
  });

  afterEach(async () => {
    await Promise.all(openClients.splice(0).map((client) => client.end().catch(() => {})));
  });

  after(async () => {
    await provisioner.close();
    await admin?.end();
    await cluster?.stop();
  });

  it('allows no login before apply: the planned role does not exist', async () => {
    const grant = plannedGrant(prodDb, 'readonly');
    const login = String(grant.artefacts.login);
    assert.match(login, /^pc_[a-z2-7]{20}$/);
    assert.equal(await roleExists(login), false);
    assert.equal(await loginError(urlFor(targetDatabase, login, 'anything')), '28P01');
  });

  it('gives a login with exactly the mapped permissions, its password only, until the grant ends', async () => {
    const grant = plannedGrant(prodDb, 'readonly');
    const { artefacts, credentials, cs } = await apply(grant);
    const login = String(grant.artefacts.login);
    const oid = await roleOid(login);
    assert.match(oid ?? '', /^[1-9][0-9]+$/);
    assert.deepEqual(artefacts, { login, database: targetDatabase, login_oid: oid });
    assert.deepEqual(Object.keys(credentials ?? {}).sort(), ['connection_string', 'password', 'username']);
    assert.equal(credentials?.username, login);
    assert.match(credentials?.password ?? '', /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.equal(
      cs,
      `postgres://${login}:${credentials?.password}@127.0.0.1:${cluster?.port}/${encodeURIComponent(targetDatabase)}`,
    );

    assert.equal(await loginError(withPassword(cs, 'wrong-password')), '28P01');
    const session = await connect(cs);
    const { rows } = await session.query('select current_user as who, current_database() as db');
    assert.deepEqual(rows, [{ who: login, db: targetDatabase }]);
    assert.equal((await session.query('select name from items order by id')).rows[0]?.name, 'seed');
    assert.equal(await queryError(session, "insert into items (name) values ('nope')"), '42501');
    assert.equal(await queryError(session, 'create table mine (x int)'), '42501');
    assert.equal(await queryError(session, 'select * from odd_things'), '42501');

    const memberships = await admin.query(
      `select g.rolname from pg_auth_members m
         join pg_roles g on g.oid = m.roleid join pg_roles u on u.oid = m.member
        where u.rolname = $1`,
      [login],
    );
    assert.deepEqual(
      memberships.rows.map((r) => r.rolname),
      ['app_readonly'],
    );
    const attributes = await admin.query(
      `select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolcanlogin,
              rolconnlimit, rolvaliduntil, starts_with(rolpassword, 'SCRAM-SHA-256$') as scram
         from pg_authid where rolname = $1`,
      [login],
    );
    assert.deepEqual(attributes.rows[0], {
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolbypassrls: false,
      rolinherit: true,
      rolcanlogin: true,
      rolconnlimit: 2,
      rolvaliduntil: new Date(grant.expiresAt),
      scram: true,
    });
  });

  it('lets readwrite insert; objects its login created survive revoke, owned by reassignOwnedTo', async () => {
    const grant = plannedGrant(prodDb, 'readwrite');
    const { cs } = await apply(grant);
    const session = await connect(cs);
    await session.query("insert into items (name) values ('written by a grant')");
    await session.query("create table scratch (note text); insert into scratch values ('keep me')");
    await session.end();

    await provisioner.revoke(contextFor(grant));

    assert.equal(await roleExists(String(grant.artefacts.login)), false);
    const target = await connect(urlFor(targetDatabase));
    const owner = await target.query(
      "select tableowner from pg_tables where schemaname = 'public' and tablename = 'scratch'",
    );
    assert.deepEqual(owner.rows, [{ tableowner: 'app_owner' }]);
    assert.deepEqual((await target.query('select note from scratch')).rows, [{ note: 'keep me' }]);
    const written = await target.query(
      "select count(*)::int as n from items where name = 'written by a grant'",
    );
    assert.equal(written.rows[0]?.n, 1);
  });

  it('enforces the connection limit', async () => {
    const grant = plannedGrant(prodDb, 'readonly');
    const { cs } = await apply(grant);
    await connect(cs);
    await connect(cs);
    assert.equal(await loginError(cs), '53300');
    await provisioner.revoke(contextFor(grant));
  });

  it('refuses new logins after VALID UNTIL even before revoke; revoke then kills the session left open', async () => {
    const grant = plannedGrant(prodDb, 'readonly', 2000);
    const { cs } = await apply(grant);
    const leftOpen = await connect(cs);

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, grant.expiresAt - Date.now()) + 300));
    assert.equal(await loginError(cs), '28P01', 'VALID UNTIL refuses the expired password');
    assert.deepEqual(
      (await leftOpen.query('select 1 as still')).rows,
      [{ still: 1 }],
      'an open session outlives VALID UNTIL, which is why revoke terminates sessions',
    );

    await provisioner.revoke(contextFor(grant));
    assert.notEqual(await queryError(leftOpen, 'select 1'), undefined);
    assert.equal(await roleExists(String(grant.artefacts.login)), false);
    assert.equal(await loginError(cs), '28P01');
  });

  it('revoke terminates a session in the middle of a query and refuses later logins', async () => {
    const grant = plannedGrant(prodDb, 'readonly');
    const { cs } = await apply(grant);
    const session = await connect(cs);
    const sleeping = session.query('select pg_sleep(30)');
    const outcome = sleeping.then(
      () => 'finished',
      (error: { code?: string }) => error.code ?? 'connection lost',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));

    const startedAt = Date.now();
    await provisioner.revoke(contextFor(grant));
    assert.ok(Date.now() - startedAt < 2000, 'revocation is quick');
    assert.equal(await outcome, '57P01'); // admin_shutdown: terminated by pg_terminate_backend
    assert.equal(await loginError(cs), '28P01');
    const sessions = await admin.query('select count(*)::int as n from pg_stat_activity where usename = $1', [
      grant.artefacts.login,
    ]);
    assert.equal(sessions.rows[0]?.n, 0);
  });

  it('revokes idempotently: twice, never applied, never planned', async () => {
    const applied = plannedGrant(prodDb, 'readonly');
    await apply(applied);
    await provisioner.revoke(contextFor(applied));
    await provisioner.revoke(contextFor(applied));

    await provisioner.revoke(contextFor(plannedGrant(prodDb, 'readonly')));
    await provisioner.revoke(contextFor({ ...plannedGrant(prodDb, 'readonly'), artefacts: {} }));
  });

  for (const adminKind of ['a superuser', 'the least-privileged'] as const) {
    it(`ends a session that outlived its dropped login on a later revoke (${adminKind} admin)`, async () => {
      const on = adminKind === 'a superuser' ? prodDb : limitedResource();
      const planned = plannedGrant(on, 'readonly');
      const result = await apply(planned, on);
      const grant = markApplied(planned, result.artefacts);
      const login = String(grant.artefacts.login);
      const oid = String(grant.artefacts.login_oid);
      const session = await connect(result.cs);
      // What a revocation that dropped the role before this session exited leaves behind.
      await dropRoleUnderSession(
        login,
        session,
        adminKind === 'a superuser' ? 'postgres' : 'portcullis_admin',
      );
      assert.equal(await sessionsOf(oid), 1);

      await provisioner.revoke(contextFor(grant, on));

      const error = await queryError(session, 'select 1');
      assert.ok(error === '57P01' || /terminat|connection/i.test(String(error)), String(error));
      assert.equal(await sessionsOf(oid), 0);
      await provisioner.revoke(contextFor(grant, on)); // nothing left: a no-op success
    });
  }

  it('fails while a terminated session of the dropped login has not exited, ends it on a retry', async () => {
    const quick = new PostgresProvisioner({ installation, sessionEndTimeoutMs: 300 });
    const planned = plannedGrant(prodDb, 'readonly');
    const result = await apply(planned);
    const grant = markApplied(planned, result.artefacts);
    const session = await connect(result.cs);
    const pid = Number((await session.query('select pg_backend_pid() as pid')).rows[0]?.pid);
    await dropRoleUnderSession(String(grant.artefacts.login), session);
    // A backend that cannot act on its termination yet (stopped): the case the bounded wait exists for.
    process.kill(pid, 'SIGSTOP');
    try {
      for (let attempt = 1; attempt <= 2; attempt++) {
        await assert.rejects(quick.revoke(contextFor(grant)), (error: unknown) => {
          assert.ok(isPortcullisError(error));
          assert.equal(error.code, 'provisioning_failed');
          assert.match(error.message, /1 session\(s\) still running after 300 ms/);
          return true;
        });
      }
    } finally {
      process.kill(pid, 'SIGCONT');
      await quick.close();
    }
    await provisioner.revoke(contextFor(grant));
    assert.notEqual(await queryError(session, 'select 1'), undefined);
    assert.equal(await sessionsOf(String(grant.artefacts.login_oid)), 0);
  });

  it('keeps the old behaviour for a grant applied before its login OID was recorded', async () => {
    const planned = plannedGrant(prodDb, 'readonly');
    const result = await apply(planned);
    const { login_oid: oid, ...older } = markApplied(planned, result.artefacts).artefacts;
    const grant = { ...planned, artefacts: older };
    const session = await connect(result.cs);
    await dropRoleUnderSession(String(grant.artefacts.login), session);

    await provisioner.revoke(contextFor(grant)); // success: nothing says which sessions were its own
    assert.equal(await queryError(session, 'select 1'), undefined, 'the documented limit');
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where usesysid = $1::oid', [
      oid,
    ]);
  });

  it('never touches a role that now holds the recorded OID but was not made for the grant', async () => {
    const handMade = 'someone_else';
    await admin.query(`create role ${handMade} login password 'someone-else-pw'`);
    await admin.query(`grant connect on database ${pg.escapeIdentifier(targetDatabase)} to ${handMade}`);
    const handMadeSession = await connect(urlFor(targetDatabase, handMade, 'someone-else-pw'));
    const other = plannedGrant(prodDb, 'readonly');
    const otherResult = await apply(other);
    const otherSession = await connect(otherResult.cs);
    try {
      for (const [holder, session] of [
        [handMade, handMadeSession],
        [String(other.artefacts.login), otherSession],
      ] as const) {
        // A grant whose login is gone and whose recorded OID another role holds now (OID reuse).
        const grant = markApplied(plannedGrant(prodDb, 'readonly'), {
          login_oid: String(await roleOid(holder)),
        });
        await provisioner.revoke(contextFor(grant));
        assert.equal(await roleExists(holder), true);
        assert.deepEqual((await session.query('select 1 as alive')).rows, [{ alive: 1 }], holder);
      }
    } finally {
      await provisioner.revoke(contextFor(other));
      await handMadeSession.end();
      await admin.query(`drop owned by ${handMade}`);
      await admin.query(`drop role ${handMade}`);
    }
  });

  it('refuses to count a login renamed behind its back as revoked', async () => {
    const planned = plannedGrant(prodDb, 'readonly');
    const result = await apply(planned);
    const grant = markApplied(planned, result.artefacts);
    const session = await connect(result.cs);
    const renamed = 'pc_renamed_by_hand';
    await admin.query(`alter role ${String(grant.artefacts.login)} rename to ${renamed}`);
    try {
      await assert.rejects(
        provisioner.revoke(contextFor(grant)),
        /still exists as role "pc_renamed_by_hand"/,
      );
      assert.equal(await roleExists(renamed), true);
    } finally {
      await session.end();
      await admin.query(`alter role ${renamed} rename to ${String(grant.artefacts.login)}`);
      await provisioner.revoke(contextFor(grant));
    }
  });

  it('refuses a recorded login OID that is not a role OID', async () => {
    for (const recorded of ['10', '0', 'abc', '16384; drop role postgres', '4294967296', 16384, true]) {
      const planned = plannedGrant(prodDb, 'readonly');
      const grant = { ...planned, artefacts: { ...planned.artefacts, login_oid: recorded } };
      await assert.rejects(provisioner.revoke(contextFor(grant)), /not a role OID/, String(recorded));
    }
  });

  it('applies idempotently: the second apply succeeds and only its password works', async () => {
    const grant = plannedGrant(prodDb, 'readonly');
    const first = await apply(grant);
    const second = await apply(grant);
    assert.equal(second.credentials?.username, first.credentials?.username);
    assert.equal(second.artefacts.login_oid, first.artefacts.login_oid, 'the same role, refreshed');
    assert.notEqual(second.credentials?.password, first.credentials?.password);
    assert.equal(await loginError(first.cs), '28P01');
    assert.equal(await loginError(second.cs), undefined);
    await provisioner.revoke(contextFor(grant));
  });

  it('survives two replicas applying, then revoking, the same grant at once', async () => {
    const replica = new PostgresProvisioner({ installation });
    try {
      const grant = plannedGrant(prodDb, 'readwrite');
      const results = await Promise.all([
        provisioner.apply(contextFor(grant)),
        replica.apply(contextFor(grant)),
      ]);
      const working = [];
      for (const result of results) {
        if ((await loginError(result.credentials?.connection_string ?? '')) === undefined)
          working.push(result);
      }
      assert.equal(working.length, 1, 'exactly one of the two passwords is the current one');
      const session = await connect(working[0]?.credentials?.connection_string ?? '');
      await session.query('create table made_during_race (x int)');

      await Promise.all([provisioner.revoke(contextFor(grant)), replica.revoke(contextFor(grant))]);
      assert.equal(await roleExists(String(grant.artefacts.login)), false);
      assert.notEqual(await queryError(session, 'select 1'), undefined);
    } finally {
      await replica.close();
    }
  });

  it('keeps overlapping grants of the same role to the same person independent', async () => {
    const first = plannedGrant(prodDb, 'readonly');
    const second = plannedGrant(prodDb, 'readonly');
    const firstCredentials = await apply(first);
    const secondCredentials = await apply(second);
    const secondSession = await connect(secondCredentials.cs);

    await provisioner.revoke(contextFor(first));

    assert.equal(await loginError(firstCredentials.cs), '28P01');
    assert.equal((await secondSession.query('select count(*)::int as n from items')).rows[0]?.n > 0, true);
    const fresh = await connect(secondCredentials.cs);
    assert.equal((await fresh.query('select name from items order by id limit 1')).rows[0]?.name, 'seed');
    await provisioner.revoke(contextFor(second));
  });

  it('inspect lists the applied grants of this resource, not revoked ones nor other resources', async () => {
    const otherDb = resource('other-db');
    const kept = plannedGrant(prodDb, 'readonly');
    const revoked = plannedGrant(prodDb, 'readonly');
    const elsewhere = plannedGrant(otherDb, 'readonly');
    await apply(kept);
    await apply(revoked);
    await apply(elsewhere, otherDb);
    await provisioner.revoke(contextFor(revoked));

    const grantIdsOf = async (r: typeof prodDb) => (await provisioner.inspect(r)).map((h) => h.grantId);
    const found = await grantIdsOf(prodDb);
    assert.ok(found.includes(kept.id));
    assert.ok(!found.includes(revoked.id));
    assert.ok(!found.includes(elsewhere.id));
    assert.deepEqual(await grantIdsOf(otherDb), [elsewhere.id]);
    // What revoke needs, read from the target alone: a grant Portcullis lost can still be taken back.
    const holding = (await provisioner.inspect(prodDb)).find((h) => h.grantId === kept.id);
    const keptRow = await admin.query<{ oid: string }>(
      `select oid::text as oid from pg_roles where rolname = $1`,
      [kept.artefacts.login],
    );
    assert.deepEqual(holding?.artefacts, {
      login: kept.artefacts.login,
      database: kept.artefacts.database,
      login_oid: keptRow.rows[0]?.oid,
    });

    await provisioner.revoke(contextFor(kept));
    await provisioner.revoke(contextFor(elsewhere, otherDb));
    assert.ok(!(await grantIdsOf(prodDb)).includes(kept.id));
  });

  it('standing: logins holding a mapped role without a grant, and superusers; never grants, the admin or the accepted', async () => {
    const made = [
      'standing_dev',
      'standing_nested',
      'standing_root',
      'standing_service',
      'standing_team',
      'standing_su_member',
      'standing_su_group',
      'standing_creator',
      'standing_mapped',
      'standing_direct',
      'standing_legacy',
      'standing_legacy_member',
      'standing_reader',
      'standing_owner',
      'standing_column',
      'standing_replicator',
      'standing_future',
    ];
    const target = new pg.Client({ connectionString: urlFor(targetDatabase) });
    await target.connect();
    try {
      await admin.query('create role standing_dev login');
      await admin.query('grant app_readonly to standing_dev');
      await admin.query('create role standing_team nologin');
      await admin.query('grant app_readwrite to standing_team');
      await admin.query('create role standing_nested login in role standing_team');
      await admin.query('create role standing_root login superuser');
      await admin.query('create role standing_service login in role app_readwrite');
      // Superuser power through a NOLOGIN superuser group (SET ROLE), and CREATEROLE on PostgreSQL 15.
      await admin.query('create role standing_su_group nologin superuser');
      await admin.query('create role standing_su_member login noinherit in role standing_su_group');
      await admin.query('create role standing_creator login createrole');
      // A mapped role that can itself log in.
      await admin.query('create role standing_mapped login');
      // Privileges outside the mapped roles: granted to a login, to an unmapped role it is a member
      // of, to everyone (PUBLIC); a table's owner; and a predefined role that reads all data.
      await admin.query('create role standing_direct login');
      await target.query('grant select on items to standing_direct');
      await admin.query('create role standing_legacy nologin');
      await target.query('grant update on items to standing_legacy');
      await target.query('grant usage on items_id_seq to standing_legacy');
      await admin.query('create role standing_legacy_member login in role standing_legacy');
      await admin.query('create role standing_reader login in role pg_read_all_data');
      await admin.query('create role standing_owner login');
      await target.query('create table standing_owned (x int)');
      await target.query('alter table standing_owned owner to standing_owner');
      // What an extension's script grants (pg_stat_statements: SELECT to everyone) is not standing access.
      await target.query('create extension if not exists pg_stat_statements');
      assert.deepEqual(
        (await provisioner.standing(prodDb)).filter((s) => s.holder === 'public'),
        [],
      );
      await target.query('create table standing_open (x int)');
      await target.query('grant select on standing_open to public');
      // A single column, REPLICATION (copies every table), and default privileges for tables to come.
      await admin.query('create role standing_column login');
      await target.query('grant select (name) on items to standing_column');
      await admin.query('create role standing_replicator login replication');
      await admin.query('create role standing_future login');
      await target.query(
        'alter default privileges in schema public grant select on tables to standing_future',
      );

      const granted = plannedGrant(prodDb, 'readwrite');
      await apply(granted);

      const accepting = resource(
        prodDb.id,
        { standingAllowed: ['standing_service'] },
        { direct: ['standing_mapped'] },
      );
      const found = (await provisioner.standing(accepting)).filter((s) => s.holder.startsWith('standing_'));
      const version = Number((await admin.query('show server_version_num')).rows[0]?.server_version_num);
      assert.deepEqual(found, [
        { holder: 'standing_column', via: 'privileges of standing_column' },
        ...(version < 160000 ? [{ holder: 'standing_creator', via: 'createrole' }] : []),
        { holder: 'standing_dev', via: 'app_readonly' },
        { holder: 'standing_direct', via: 'privileges of standing_direct' },
        { holder: 'standing_future', via: 'privileges of standing_future' },
        { holder: 'standing_legacy_member', via: 'privileges of standing_legacy' },
        { holder: 'standing_mapped', via: 'standing_mapped' },
        { holder: 'standing_nested', via: 'app_readwrite' },
        { holder: 'standing_owner', via: 'privileges of standing_owner' },
        { holder: 'standing_reader', via: 'pg_read_all_data' },
        { holder: 'standing_replicator', via: 'replication' },
        { holder: 'standing_root', via: 'superuser' },
        { holder: 'standing_su_member', via: 'superuser' },
      ]);
      assert.deepEqual(
        (await provisioner.standing(accepting)).filter((s) => s.holder === 'public'),
        [{ holder: 'public', via: 'privileges of public' }],
      );
      const all = await provisioner.standing(accepting);
      assert.ok(!all.some((s) => s.holder === granted.artefacts.login), 'a grant is not standing access');
      assert.ok(!all.some((s) => s.holder === 'postgres'), 'the admin account is Portcullis itself');
      // Not accepted: the service's login is reported too.
      assert.ok(
        (await provisioner.standing(prodDb)).some(
          (s) => s.holder === 'standing_service' && s.via === 'app_readwrite',
        ),
      );
      await provisioner.revoke(contextFor(granted));
    } finally {
      await target.query('drop table if exists standing_owned, standing_open');
      await target.query('drop extension if exists pg_stat_statements');
      await target.query(`do $$ begin if exists (select from pg_roles where rolname = 'standing_future') then
        alter default privileges in schema public revoke select on tables from standing_future; end if; end $$`);
      await target.query(`do $$ begin if exists (select from pg_roles where rolname = 'standing_column') then
        revoke all on items from standing_column; end if; end $$`);
      for (const role of ['standing_direct', 'standing_legacy'])
        await target.query(`do $$ begin if exists (select from pg_roles where rolname = '${role}') then
          revoke all on items from ${role}; revoke all on items_id_seq from ${role}; end if; end $$`);
      await target.end();
      for (const role of made) await admin.query(`drop role if exists ${role}`);
    }
  });

  it('inspect leaves out logins another installation made, and keeps those made before installations were named', async () => {
    const theirs = newLoginRoleName();
    const older = newLoginRoleName();
    await admin.query(`create role ${theirs} nologin`);
    await admin.query(`create role ${older} nologin`);
    try {
      await admin.query(
        `comment on role ${theirs} is ${pg.escapeLiteral(loginRoleComment({ grant: 'g-theirs', resource: prodDb.id, installation: 'another-installation' }))}`,
      );
      await admin.query(
        `comment on role ${older} is ${pg.escapeLiteral(loginRoleComment({ grant: 'g-older', resource: prodDb.id }))}`,
      );
      const found = (await provisioner.inspect(prodDb)).map((h) => h.grantId);
      assert.ok(!found.includes('g-theirs'));
      assert.ok(found.includes('g-older'));
    } finally {
      await admin.query(`drop role if exists ${theirs}`);
      await admin.query(`drop role if exists ${older}`);
    }
  });

  it('quotes mapped role names with odd characters safely', async () => {
    const grant = plannedGrant(prodDb, 'odd');
    const { cs } = await apply(grant);
    const session = await connect(cs);
    assert.deepEqual((await session.query('select count(*)::int as n from odd_things')).rows, [{ n: 0 }]);
    assert.equal(await roleExists('app_owner'), true);
    assert.equal(await roleExists(oddRole), true);
    await provisioner.revoke(contextFor(grant));
    assert.equal(await roleExists(String(grant.artefacts.login)), false);
  });

  it('rolls a failed apply back completely and keeps secrets out of the error', async () => {
    const broken = resource('broken-db', {}, { readonly: ['app_readonly', 'no_such_role'] });
    const grant = plannedGrant(broken, 'readonly');
    await assert.rejects(provisioner.apply(contextFor(grant, broken)), (error: unknown) => {
      assert.ok(isPortcullisError(error));
      assert.equal(error.code, 'provisioning_failed');
      assert.match(error.message, /no_such_role/);
      assert.doesNotMatch(error.message, /SCRAM-SHA-256|PASSWORD/i);
      assert.ok(!error.message.includes(adminUrl.password));
      return true;
    });
    assert.equal(await roleExists(String(grant.artefacts.login)), false);
  });

  it('reports an unreachable server as provisioning_failed without the admin password', async () => {
    const unreachable = resource('unreachable-db', {
      adminUrl: new Secret('postgres://postgres:hunter2-secret@127.0.0.1:1/postgres', 'unreachable'),
    });
    await assert.rejects(
      provisioner.apply(contextFor(plannedGrant(unreachable, 'readonly'), unreachable)),
      (error) => {
        assert.ok(isPortcullisError(error));
        assert.equal(error.code, 'provisioning_failed');
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
  });

  it('never gives the admin password to a server that asks for it in cleartext', async () => {
    const phisher = await fakePostgresServer({ login: 'cleartext' });
    try {
      const phishing = resource('phishing-db', {
        adminUrl: new Secret(
          `postgres://postgres:hunter2-secret@127.0.0.1:${phisher.port}/postgres`,
          'phisher',
        ),
      });
      await assert.rejects(
        provisioner.apply(contextFor(plannedGrant(phishing, 'readonly'), phishing)),
        (error) => {
          assert.ok(isPortcullisError(error));
          assert.equal(error.code, 'provisioning_failed');
          assert.match(
            error.message,
            /Refused to log in to PostgreSQL: the server asks for the password in cleartext/,
          );
          return true;
        },
      );
      assert.equal(phisher.received().includes('hunter2-secret'), false);
      assert.equal(phisher.received().length, 0);
    } finally {
      await phisher.close();
    }
  });

  it('refuses to revoke a role Portcullis did not make for the grant', async () => {
    const impostor = 'pc_aaaaaaaaaaaaaaaaaaaa';
    await admin.query(`create role ${impostor} login`);
    const grant = {
      ...plannedGrant(prodDb, 'readonly'),
      artefacts: { login: impostor, database: targetDatabase },
    };
    await assert.rejects(provisioner.revoke(contextFor(grant)), /not made by Portcullis/);
    assert.equal(await roleExists(impostor), true);

    const foreign = { ...grant, artefacts: { login: 'postgres', database: targetDatabase } };
    await assert.rejects(provisioner.revoke(contextFor(foreign)), /not a Portcullis login/);
    await admin.query(`drop role ${impostor}`);
  });

  it('refuses to apply a grant whose login was never planned', async () => {
    const grant = { ...plannedGrant(prodDb, 'readonly'), artefacts: {} };
    await assert.rejects(provisioner.apply(contextFor(grant)), /no planned PostgreSQL login/);
  });

  it('works through a non-superuser admin with CREATEROLE and pg_signal_backend', async () => {
    const limited = limitedResource();
    const grant = plannedGrant(limited, 'readwrite');
    const { cs } = await apply(grant, limited);
    const session = await connect(cs);
    await session.query('create table made_under_limited_admin (x int)');

    await provisioner.revoke(contextFor(grant, limited));

    assert.notEqual(await queryError(session, 'select 1'), undefined);
    assert.equal(await roleExists(String(grant.artefacts.login)), false);
    const target = await connect(urlFor(targetDatabase));
    const owner = await target.query(
      "select tableowner from pg_tables where tablename = 'made_under_limited_admin'",
    );
    assert.deepEqual(owner.rows, [{ tableowner: 'app_owner' }]);
  });

  it('cannot be used after close', async () => {
    const closing = new PostgresProvisioner({ installation });
    await closing.inspect(prodDb);
    await closing.close();
    await assert.rejects(closing.inspect(prodDb), /closed/);
  });
});
