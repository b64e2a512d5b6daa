/**
 * The per-grant PostgreSQL login role: its random name, the comment that marks it as made by
 * Portcullis for one grant, and the SQL that creates, refreshes and removes it. Pure: no I/O.
 * Every identifier and literal goes through pg's escapeIdentifier/escapeLiteral.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const loginRolePrefix = 'pc_';
const base32Alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
const loginNameLength = 20;
const loginRolePattern = /^pc_[a-z2-7]{20}$/;
const commentPrefix = 'portcullis:';

/** `pc_` + 20 lowercase base32 characters (100 random bits): unguessable and needs no quoting. */
export function newLoginRoleName(random: (size: number) => Buffer = randomBytes): string {
  const bytes = random(Math.ceil((loginNameLength * 5) / 8));
  let bits = 0;
  let value = 0;
  let name = '';
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff; // never more than 12 pending bits
    bits += 8;
    while (bits >= 5 && name.length < loginNameLength) {
      name += base32Alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return loginRolePrefix + name;
}

/** True for names newLoginRoleName can produce; revoke refuses to touch any other role. */
export function isLoginRoleName(name: unknown): name is string {
  return typeof name === 'string' && loginRolePattern.test(name);
}

/** OIDs below this are PostgreSQL's own (FirstNormalObjectId): never a role Portcullis made. */
const firstNormalObjectId = 16384;
const maxObjectId = 4294967295;

/**
 * True for the decimal text of an OID a created role can have (16384 … 2^32−1). The OID of a grant's
 * login is kept in its artefacts so revoke can find sessions that outlive the role.
 */
export function isLoginRoleOid(value: unknown): value is string {
  if (typeof value !== 'string' || !/^[1-9][0-9]{4,9}$/.test(value)) return false;
  const oid = Number(value);
  return oid >= firstNormalObjectId && oid <= maxObjectId;
}

export interface LoginRoleOwner {
  readonly grant: string;
  readonly resource: string;
  /**
   * The Portcullis installation that made it (`Store.installationId`). Absent on logins made before
   * installations were named: those count as every installation's.
   */
  readonly installation?: string;
}

/** The `COMMENT ON ROLE` text that ties a login role to its grant, resource and installation. */
export function loginRoleComment(owner: LoginRoleOwner): string {
  return (
    commentPrefix +
    JSON.stringify({
      grant: owner.grant,
      resource: owner.resource,
      ...(owner.installation === undefined ? {} : { installation: owner.installation }),
    })
  );
}

/** Reads a comment written by loginRoleComment; undefined for anything else. */
export function parseLoginRoleComment(comment: string | null | undefined): LoginRoleOwner | undefined {
  if (!comment?.startsWith(commentPrefix)) return undefined;
  try {
    const parsed: unknown = JSON.parse(comment.slice(commentPrefix.length));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { grant, resource, installation } = parsed as Record<string, unknown>;
    if (typeof grant !== 'string' || typeof resource !== 'string') return undefined;
    if (installation === undefined) return { grant, resource };
    return typeof installation === 'string' ? { grant, resource, installation } : undefined;
  } catch {
    return undefined;
  }
}

export interface LoginRoleSettings {
  readonly login: string;
  /** A SCRAM verifier (see scram-verifier.ts), never the password itself. */
  readonly passwordVerifier: string;
  /** Epoch milliseconds; becomes `VALID UNTIL`. */
  readonly validUntil: number;
  readonly connectionLimit: number;
}

const id = (name: string) => pg.escapeIdentifier(name);
const literal = (value: string) => pg.escapeLiteral(value);

function loginOptions(settings: LoginRoleSettings): string {
  if (!Number.isInteger(settings.connectionLimit) || settings.connectionLimit < 1) {
    throw new RangeError(`connection limit must be a positive integer, not ${settings.connectionLimit}`);
  }
  const validUntil = new Date(settings.validUntil);
  if (Number.isNaN(validUntil.getTime())) throw new RangeError('valid-until is not a valid time');
  return (
    `LOGIN CONNECTION LIMIT ${settings.connectionLimit} ` +
    `PASSWORD ${literal(settings.passwordVerifier)} VALID UNTIL ${literal(validUntil.toISOString())}`
  );
}

/**
 * Creates the login. The NO… attributes are PostgreSQL's defaults, spelled out so that a changed
 * default can never hand a grant more than its mapped roles; INHERIT makes the mapped roles'
 * privileges apply without `SET ROLE`.
 */
export function createLoginRoleSql(settings: LoginRoleSettings): string {
  return `CREATE ROLE ${id(settings.login)} WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT ${loginOptions(settings)}`;
}

/** Refreshes an existing login (a retried apply): new password, same expiry and limit. */
export function alterLoginRoleSql(settings: LoginRoleSettings): string {
  return `ALTER ROLE ${id(settings.login)} WITH ${loginOptions(settings)}`;
}

export function commentOnLoginRoleSql(login: string, owner: LoginRoleOwner): string {
  return `COMMENT ON ROLE ${id(login)} IS ${literal(loginRoleComment(owner))}`;
}

export function grantRoleSql(mappedRole: string, login: string): string {
  return `GRANT ${id(mappedRole)} TO ${id(login)}`;
}

export function grantConnectSql(database: string, login: string): string {
  return `GRANT CONNECT ON DATABASE ${id(database)} TO ${id(login)}`;
}

export function disableLoginSql(login: string): string {
  return `ALTER ROLE ${id(login)} WITH NOLOGIN`;
}

/** Lets a non-superuser admin act for the login (REASSIGN/DROP OWNED need its privileges). */
export function grantLoginToAdminSql(login: string): string {
  return `GRANT ${id(login)} TO CURRENT_USER`;
}

export function reassignOwnedSql(login: string, newOwner: string): string {
  return `REASSIGN OWNED BY ${id(login)} TO ${id(newOwner)}`;
}

export function dropOwnedSql(login: string): string {
  return `DROP OWNED BY ${id(login)}`;
}

export function dropLoginRoleSql(login: string): string {
  return `DROP ROLE IF EXISTS ${id(login)}`;
}
