/**
 * The `postgres` provisioner: each grant gets its own PostgreSQL login role.
 *
 * **Apply** (one transaction, so a crash leaves all or nothing): create the login planned for the
 * grant — random name, 32-byte random password sent as a SCRAM verifier, `VALID UNTIL` the grant's
 * end, the resource's `CONNECTION LIMIT` — or, on a retry, refresh it with a new password; mark it
 * with `COMMENT ON ROLE` (grant and resource ids); grant it the roles the Portcullis role maps to
 * and `CONNECT` on the target database. The requester gets a connection string; the grant keeps
 * `{ login, database, login_oid }` — the role's OID, read in the same transaction.
 *
 * **Revoke** (each step idempotent, so a retry after any failure converges):
 * 1. `ALTER ROLE … NOLOGIN`, so no new session can start;
 * 2. `pg_terminate_backend` for every session of the login, waiting (bounded) until none is left —
 *    `VALID UNTIL` and `NOLOGIN` only stop new logins, an open session would run on;
 * 3. objects the login created are kept, not lost: in every database where it owns or holds
 *    something, `REASSIGN OWNED BY login TO <reassignOwnedTo>` then `DROP OWNED BY login`
 *    (which now only revokes privileges granted to it);
 * 4. `DROP ROLE IF EXISTS`, then one more termination pass, by OID, for a session that raced step 2.
 * PostgreSQL lets a role be dropped while a session of it still runs (the backend keeps its
 * `usesysid`), so a role that is already gone (a retry, a concurrent revoker) is success only once
 * no session with the grant's recorded `login_oid` is left: those are terminated, with the same
 * bounded wait as step 2. That pass, like step 4's, acts only while no role holds the OID: a role
 * that holds it again and whose comment does not name this grant is someone else's and is left
 * alone; one whose comment names this grant (the login, renamed) is refused. A grant applied before
 * `login_oid` was recorded has none: for it a role that is gone is success, as before.
 * A role found by name whose comment names another grant is refused.
 * INVARIANT: revoke only ever acts on a login Portcullis created for that very grant.
 *
 * Errors are PortcullisError `provisioning_failed`; messages never contain a password.
 * See docs/provisioners.md for the admin account's privileges.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ProvisionContext, Provisioner, ProvisionResult } from '../app/ports.js';
import type { PostgresTarget } from '../config/load.js';
import type { TargetHolding } from '../core/drift.js';
import { isPortcullisError, PortcullisError } from '../core/errors.js';
import type { Artefacts, Grant } from '../core/grant.js';
import type { ResourceDefinition } from '../core/resource.js';
import { type StandingAccess, unacknowledgedStanding } from '../core/standing-access.js';
import { GuardedClient, guardedPoolSettings } from '../postgres/guarded-client.js';
import {
  alterLoginRoleSql,
  commentOnLoginRoleSql,
  createLoginRoleSql,
  disableLoginSql,
  dropLoginRoleSql,
  dropOwnedSql,
  grantConnectSql,
  grantLoginToAdminSql,
  grantRoleSql,
  isLoginRoleName,
  isLoginRoleOid,
  loginRolePrefix,
  newLoginRoleName,
  parseLoginRoleComment,
  reassignOwnedSql,
} from './postgres-login-role.js';
import { adminUrlForDatabase, postgresTargetOf, requesterConnectionString } from './postgres-target.js';
import { scramSha256Verifier } from './scram-verifier.js';

export interface PostgresProvisionerOptions {
  /** This Portcullis installation (`Store.installationId`), written on every login it makes. */
  readonly installation: string;
  /** Admin connections kept per resource (default 2). */
  readonly poolSize?: number;
  /** How long revoke waits for terminated sessions to exit before failing (default 5000 ms). */
  readonly sessionEndTimeoutMs?: number;
  /** Limit for each admin statement, so a lock cannot stall a revocation forever (default 15000 ms). */
  readonly statementTimeoutMs?: number;
  /** Limit for opening an admin connection (default 5000 ms). */
  readonly connectTimeoutMs?: number;
}

interface LoginRoleRow {
  /** The role's oid as text (oids can exceed a signed 32-bit integer). */
  readonly oid: string;
  readonly comment: string | null;
}

type Queryable = Pick<pg.ClientBase, 'query'>;

/** PostgreSQL error codes met when two applies of one grant race to create the same role. */
const raceCodes = new Set(['42710', '23505']);
const passwordBytes = 32;

/** `tuple concurrently updated` (XX000) and serialisation/deadlock failures: safe to retry. */
function concurrentCatalogueUpdate(error: unknown): boolean {
  const state = sqlState(error);
  return (
    state === '40001' ||
    state === '40P01' ||
    (state === 'XX000' && /concurrently (updated|deleted)/.test(error instanceof Error ? error.message : ''))
  );
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Predefined roles whose members read or write every table, or the server's files and programs. */
const dataPredefinedRoles = [
  'pg_read_all_data',
  'pg_write_all_data',
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_execute_server_program',
];

/**
 * Standing access (see {@link PostgresProvisioner.standing}); $1 the mapped roles, $2 the
 * predefined data roles. Run in the resource's database: its tables and their privileges are its
 * own. What an extension's script set up (its objects' owners, and the privileges it granted,
 * recorded in pg_init_privs) is left out, so `pg_stat_statements` or PostGIS granting SELECT to
 * everyone is not a finding, while a later grant on the same objects is. `via` names the role and
 * never the objects, so creating a table does not make a new finding of an old one.
 */
const standingAccessQuery = `
  with recursive
    objects as (
      select c.oid, c.relowner, c.relacl,
             exists (select from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e') as of_extension
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
         and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    ),
    granted(object_oid, column_number, acl) as (
      select oid, 0, relacl from objects where relacl is not null
      union all
      select a.attrelid, a.attnum, a.attacl
        from pg_attribute a join objects o on o.oid = a.attrelid
       where a.attacl is not null and a.attnum > 0 and not a.attisdropped
    ),
    privileged(role_oid) as (
      select e.grantee
        from granted g, aclexplode(g.acl) e
       where not exists (
               select from pg_init_privs ip, aclexplode(ip.initprivs) ie
                where ip.classoid = 'pg_class'::regclass and ip.objoid = g.object_oid
                  and ip.objsubid = g.column_number
                  and ie.grantee = e.grantee and ie.privilege_type = e.privilege_type)
      union
      select relowner from objects where not of_extension
      union
      select e.grantee
        from pg_default_acl d, aclexplode(d.defaclacl) e
       where e.grantee <> d.defaclrole
    ),
    seeds(role_oid, via) as (
      select oid, rolname::text from pg_roles where rolname = any($1::text[])
      union all
      select oid, 'superuser' from pg_roles where rolsuper
      union all
      select oid, 'createrole' from pg_roles
       where rolcreaterole and not rolsuper
         and current_setting('server_version_num')::int < 160000
      union all
      select oid, 'replication' from pg_roles where rolreplication and not rolsuper
      union all
      select oid, rolname::text from pg_roles where rolname = any($2::text[])
      union all
      select datdba, 'database owner' from pg_database where datname = current_database()
      union all
      select p.role_oid, 'privileges of ' || coalesce(r.rolname::text, 'public')
        from privileged p left join pg_roles r on r.oid = p.role_oid
       where p.role_oid = 0
          or (not r.rolsuper and r.rolname <> current_user and not r.rolname = any($1::text[]))
    ),
    holds(member, via) as (
      select role_oid, via from seeds
      union
      select am.member, h.via from pg_auth_members am join holds h on am.roleid = h.member
    )
  select m.rolname::text as holder, h.via, shobj_description(m.oid, 'pg_authid') as comment
    from holds h join pg_roles m on m.oid = h.member
   where m.rolcanlogin and m.rolname <> current_user
  union
  select 'public', via, null from seeds where role_oid = 0`;

/** Makes per-grant PostgreSQL logins; see the module comment for what apply and revoke do. */
export class PostgresProvisioner implements Provisioner {
  readonly kind = 'postgres';
  readonly activatesInProcess = false;
  readonly #pools = new Map<string, pg.Pool>();
  readonly #poolSize: number;
  readonly #sessionEndTimeoutMs: number;
  readonly #statementTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  #closed = false;

  readonly #installation: string;

  constructor(options: PostgresProvisionerOptions) {
    this.#installation = options.installation;
    this.#poolSize = options.poolSize ?? 2;
    this.#sessionEndTimeoutMs = options.sessionEndTimeoutMs ?? 5000;
    this.#statementTimeoutMs = options.statementTimeoutMs ?? 15_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  }

  /** `{ login, database }`: a fresh random login name, stored by the caller before apply. */
  plan(_grant: Pick<Grant, 'id'>, resource: ResourceDefinition): Artefacts {
    return { login: newLoginRoleName(), database: postgresTargetOf(resource).database };
  }

  async apply(context: ProvisionContext): Promise<ProvisionResult> {
    const { grant, resource, role } = context;
    const target = postgresTargetOf(resource);
    const login = grant.artefacts.login;
    if (!isLoginRoleName(login)) {
      throw new PortcullisError(
        'provisioning_failed',
        `Grant ${grant.id} has no planned PostgreSQL login (plan() must run and be stored before apply())`,
      );
    }
    const password = randomBytes(passwordBytes).toString('base64url');
    // Built first: a target we cannot describe to the requester must not get a login nobody can use.
    const connectionString = requesterConnectionString(target, login, password);
    const settings = {
      login,
      passwordVerifier: await scramSha256Verifier(password),
      validUntil: grant.expiresAt,
      connectionLimit: target.connectionLimit,
    };
    const owner = { grant: grant.id, resource: resource.id, installation: this.#installation };

    const loginOid = await this.#run(
      `create login ${login} for grant ${grant.id} on ${resource.id}`,
      async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await this.#inTransaction(this.#pool(resource), async (client) => {
              const existing = await findLoginRole(client, login);
              if (existing) {
                assertMadeForGrant(existing, login, grant.id);
                await client.query(alterLoginRoleSql(settings));
              } else {
                await client.query(createLoginRoleSql(settings));
              }
              await client.query(commentOnLoginRoleSql(login, owner));
              for (const mappedRole of role.grants) await client.query(grantRoleSql(mappedRole, login));
              await client.query(grantConnectSql(target.database, login));
              // Kept in the grant: revoke finds a session that outlived the role by this OID.
              const oid = (await findLoginRole(client, login))?.oid;
              if (!isLoginRoleOid(oid)) throw new Error(`Role ${login} has no readable OID`);
              return oid;
            });
          } catch (error) {
            // A concurrent apply of the same grant created the role first: the retry refreshes it.
            if (attempt >= 2 || !raceCodes.has(sqlState(error) ?? '')) throw error;
          }
        }
      },
    );

    return {
      artefacts: { login, database: target.database, login_oid: loginOid },
      credentials: {
        connection_string: connectionString,
        username: login,
        password,
      },
    };
  }

  async revoke(context: ProvisionContext): Promise<void> {
    const { grant, resource } = context;
    const login = grant.artefacts.login;
    if (login === undefined || login === null) return; // never planned, so nothing was created
    if (!isLoginRoleName(login)) {
      throw new PortcullisError(
        'provisioning_failed',
        `Grant ${grant.id} names ${JSON.stringify(login)}, which is not a Portcullis login; refusing to drop it`,
      );
    }
    const target = postgresTargetOf(resource);

    await this.#run(`revoke login ${login} of grant ${grant.id} on ${resource.id}`, async () => {
      const pool = this.#pool(resource);
      const existing = await findLoginRole(pool, login);
      if (!existing) {
        // Gone already (an earlier attempt, a concurrent revoker, never created) — but a session
        // terminated by that attempt may not have exited yet: the role can be dropped under it.
        const recordedOid = recordedLoginOid(grant);
        if (recordedOid !== undefined) {
          await this.#endSessionsOfDroppedLogin(pool, recordedOid, login, grant.id);
        }
        return;
      }
      assertMadeForGrant(existing, login, grant.id);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#takeBack(pool, target, login, existing.oid);
          break;
        } catch (error) {
          // A concurrent revocation of the same grant may have dropped the role under us. A role
          // that is gone owns nothing any more, so once its sessions are gone that is success.
          if (!(await findLoginRole(pool, login))) break;
          // Two revokers changing the same catalogue row at once: the loser retries (idempotent).
          if (attempt >= 3 || !concurrentCatalogueUpdate(error)) throw error;
          await delay(20 * attempt);
        }
      }
      // A session that authenticated just before NOLOGIN may have appeared after the first pass.
      await this.#endSessionsOfDroppedLogin(pool, existing.oid, login, grant.id);
      // An earlier incarnation of the login (recorded OID differs) may have left sessions too.
      const recordedOid = recordedLoginOid(grant);
      if (recordedOid !== undefined && recordedOid !== existing.oid) {
        await this.#endSessionsOfDroppedLogin(pool, recordedOid, login, grant.id);
      }
    });
  }

  async #takeBack(pool: pg.Pool, target: PostgresTarget, login: string, roleOid: string): Promise<void> {
    await pool.query(disableLoginSql(login));
    await this.#endSessions(pool, roleOid);

    const { rows } = await pool.query<{ can_act: boolean }>(
      `select pg_has_role(current_user, $1::oid, 'USAGE') as can_act`,
      [roleOid],
    );
    if (!rows[0]?.can_act) await pool.query(grantLoginToAdminSql(login));

    for (const database of await databasesWithDependencies(pool, roleOid)) {
      await this.#inOtherDatabase(target, database, async (client) => {
        await client.query(reassignOwnedSql(login, target.reassignOwnedTo));
        await client.query(dropOwnedSql(login));
      });
    }
    await this.#inTransaction(pool, async (client) => {
      await client.query(reassignOwnedSql(login, target.reassignOwnedTo));
      await client.query(dropOwnedSql(login));
      await client.query(dropLoginRoleSql(login));
    });
  }

  /**
   * This resource's Portcullis logins made by this installation (or before installations were
   * named), by the grant their comment names, with the artefacts `revoke` needs (for
   * reconciliation). A `pc_` role whose comment names no grant of this resource, or another
   * installation, is not listed: nothing ties it to a grant this installation may act for.
   */
  async inspect(resource: ResourceDefinition): Promise<readonly TargetHolding[]> {
    const database = postgresTargetOf(resource).database;
    return this.#run(`inspect ${resource.id}`, async () => {
      const { rows } = await this.#pool(resource).query<{
        rolname: string;
        oid: string;
        comment: string | null;
      }>(
        `select rolname, oid::text as oid, shobj_description(oid, 'pg_authid') as comment
           from pg_roles where starts_with(rolname, $1) order by rolname`,
        [loginRolePrefix],
      );
      return rows.flatMap((row) => {
        const owner = parseLoginRoleComment(row.comment);
        if (!isLoginRoleName(row.rolname) || owner?.resource !== resource.id) return [];
        if (owner.installation !== undefined && owner.installation !== this.#installation) return [];
        return [{ grantId: owner.grant, artefacts: { login: row.rolname, database, login_oid: row.oid } }];
      });
    });
  }

  /**
   * Logins that hold access to this resource's database without a grant: every login that is —
   * directly or through other roles, whatever its INHERIT, since it can SET ROLE — a member of
   * - a role the resource's roles map to (the mapped role itself when it can log in);
   * - a superuser role, a REPLICATION role (it can copy every table), or (before PostgreSQL 16,
   *   where CREATEROLE may grant itself any role) a CREATEROLE role;
   * - a predefined role that reads or writes all data or the server's files and programs;
   * - the role that owns the database;
   * - a role that owns, or was granted a privilege on, a table, view, materialized view, foreign
   *   table or sequence of the database or one of its columns, or that default privileges will give
   *   one (`privileges of <role>`); for a privilege granted to everyone, the holder is `public`.
   * Portcullis' own logins (any installation's) and the admin account itself are left out.
   */
  async standing(resource: ResourceDefinition): Promise<readonly StandingAccess[]> {
    const allowed = postgresTargetOf(resource).standingAllowed;
    const mapped = [...new Set([...resource.roles.values()].flatMap((role) => role.grants))];
    return this.#run(`read standing access on ${resource.id}`, async () => {
      // In the resource's database: roles are the server's, but tables and their privileges are its own.
      const { rows } = await this.#pool(resource, true).query<{
        holder: string;
        via: string;
        comment: string | null;
      }>(standingAccessQuery, [mapped, dataPredefinedRoles]);
      const found = rows
        .filter((row) => !(isLoginRoleName(row.holder) && parseLoginRoleComment(row.comment)))
        .map((row) => ({ holder: row.holder, via: row.via }));
      return unacknowledgedStanding(found, allowed);
    });
  }

  /** Ends every admin pool; the provisioner cannot be used afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }

  /**
   * The admin account's pool: in admin_url's own database (roles are the server's), or with
   * `inTargetDatabase` in the resource's database (its tables and their privileges are that
   * database's alone).
   */
  #pool(resource: ResourceDefinition, inTargetDatabase = false): pg.Pool {
    if (this.#closed)
      throw new PortcullisError('provisioning_failed', 'The PostgreSQL provisioner is closed');
    const key = inTargetDatabase ? `${resource.id}\0target` : resource.id;
    let pool = this.#pools.get(key);
    if (!pool) {
      const target = postgresTargetOf(resource);
      pool = new pg.Pool({
        ...guardedPoolSettings(
          inTargetDatabase ? adminUrlForDatabase(target, target.database) : target.adminUrl.reveal(),
          `resource ${resource.id}'s postgres.admin_url`,
        ),
        max: this.#poolSize,
        idleTimeoutMillis: 30_000,
        connectionTimeoutMillis: this.#connectTimeoutMs,
        statement_timeout: this.#statementTimeoutMs,
        application_name: 'portcullis-provisioner',
      });
      // An admin connection that drops (server restart) must not crash the process; the operation
      // using it fails with its own error and the next one opens a new connection. The pool only
      // listens while a connection is idle, so each gets a listener for its whole life: one cut
      // while checked out between two statements would otherwise be an uncaught 'error'.
      pool.on('connect', (client) => {
        client.on('error', () => {});
      });
      pool.on('error', () => {});
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async #inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** A short-lived admin connection to another database of the same server. */
  async #inOtherDatabase(
    target: PostgresTarget,
    database: string,
    work: (client: pg.Client) => Promise<void>,
  ) {
    const client = new GuardedClient({
      connectionString: adminUrlForDatabase(target, database),
      urlSource: `the admin URL for database ${database}`,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      statement_timeout: this.#statementTimeoutMs,
      application_name: 'portcullis-provisioner',
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * The sessions left by the grant's login once its role is dropped: terminated and waited for
   * (bounded) while no role holds `roleOid`. If a role holds it again, its sessions are its own —
   * left alone, unless its comment names this grant (the login under another name): refused.
   */
  async #endSessionsOfDroppedLogin(
    pool: pg.Pool,
    roleOid: string,
    login: string,
    grantId: string,
  ): Promise<void> {
    const { rows } = await pool.query<{ rolname: string; comment: string | null }>(
      `select rolname, shobj_description(oid, 'pg_authid') as comment from pg_roles where oid = $1::oid`,
      [roleOid],
    );
    const holder = rows[0];
    if (holder) {
      if (parseLoginRoleComment(holder.comment)?.grant !== grantId) return; // another role: not ours
      throw new PortcullisError(
        'provisioning_failed',
        `Login ${login} of grant ${grantId} still exists as role ${JSON.stringify(holder.rolname)} (OID ${roleOid}); not counting it as revoked`,
      );
    }
    await this.#endSessions(pool, roleOid, { onlyWhileNoRoleHasOid: true });
  }

  /**
   * Terminates the role's sessions and waits until none is left (bounded). With
   * `onlyWhileNoRoleHasOid`, each pass checks, in the same statement, that no role holds the OID,
   * so a role created with a reused OID meanwhile is never touched.
   */
  async #endSessions(
    pool: pg.Pool,
    roleOid: string,
    { onlyWhileNoRoleHasOid = false }: { readonly onlyWhileNoRoleHasOid?: boolean } = {},
  ): Promise<void> {
    const deadline = Date.now() + this.#sessionEndTimeoutMs;
    const guard = onlyWhileNoRoleHasOid ? 'and not exists (select 1 from pg_roles where oid = $1::oid)' : '';
    for (;;) {
      const { rows } = await pool.query<{ pid: number }>(
        `select pid, pg_terminate_backend(pid) from pg_stat_activity
          where usesysid = $1::oid and pid <> pg_backend_pid() ${guard}`,
        [roleOid],
      );
      if (rows.length === 0) return;
      if (Date.now() >= deadline) {
        throw new PortcullisError(
          'provisioning_failed',
          `${rows.length} session(s) still running after ${this.#sessionEndTimeoutMs} ms`,
        );
      }
      await delay(25);
    }
  }

  async #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'provisioning_failed') {
        throw new PortcullisError(
          'provisioning_failed',
          `Could not ${action}: ${error.message}`,
          {},
          {
            cause: error,
          },
        );
      }
      throw new PortcullisError(
        'provisioning_failed',
        `Could not ${action}: ${describe(error)}`,
        {},
        {
          cause: error,
        },
      );
    }
  }
}

async function findLoginRole(client: Queryable, login: string): Promise<LoginRoleRow | undefined> {
  const { rows } = await client.query<LoginRoleRow>(
    `select oid::text as oid, shobj_description(oid, 'pg_authid') as comment
       from pg_roles where rolname = $1`,
    [login],
  );
  return rows[0];
}

/**
 * The login's OID recorded at apply; undefined for a grant applied before it was recorded (or
 * never applied). Anything else there is refused rather than guessed at.
 */
function recordedLoginOid(grant: Grant): string | undefined {
  const recorded = grant.artefacts.login_oid;
  if (recorded === undefined || recorded === null) return undefined;
  if (!isLoginRoleOid(recorded)) {
    throw new PortcullisError(
      'provisioning_failed',
      `Grant ${grant.id} records ${JSON.stringify(recorded)} as its login's OID, which is not a role OID; refusing to act on it`,
    );
  }
  return recorded;
}

function assertMadeForGrant(role: LoginRoleRow, login: string, grantId: string): void {
  const owner = parseLoginRoleComment(role.comment);
  if (owner?.grant !== grantId) {
    throw new PortcullisError(
      'provisioning_failed',
      `Role ${login} exists but was not made by Portcullis for grant ${grantId}; leaving it untouched`,
    );
  }
}

/** Databases, other than the admin connection's, where the role owns objects or holds privileges. */
async function databasesWithDependencies(client: Queryable, roleOid: string): Promise<string[]> {
  const { rows } = await client.query<{ datname: string }>(
    `select distinct d.datname from pg_shdepend s join pg_database d on d.oid = s.dbid
      where s.refclassid = 'pg_authid'::regclass and s.refobjid = $1::oid
        and d.datname <> current_database()
      order by d.datname`,
    [roleOid],
  );
  return rows.map((row) => row.datname);
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The server's message (never the statement, which could hold a password verifier). */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = sqlState(error);
    return code && /^[0-9A-Z]{5}$/.test(code) ? `${error.message} (SQLSTATE ${code})` : error.message;
  }
  return String(error);
}
