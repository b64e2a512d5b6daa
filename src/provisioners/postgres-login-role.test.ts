import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  alterLoginRoleSql,
  commentOnLoginRoleSql,
  createLoginRoleSql,
  grantConnectSql,
  grantRoleSql,
  isLoginRoleName,
  isLoginRoleOid,
  loginRoleComment,
  newLoginRoleName,
  parseLoginRoleComment,
  reassignOwnedSql,
} from './postgres-login-role.js';

const settings = {
  login: 'pc_abcdefghijklmnopqrst',
  passwordVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy',
  validUntil: Date.UTC(2030, 0, 2, 3, 4, 5, 678),
  connectionLimit: 5,
};

describe('postgres login roles', () => {
  it('names logins pc_ + 20 random lowercase base32 characters', () => {
    const names = new Set(Array.from({ length: 200 }, () => newLoginRoleName()));
    assert.equal(names.size, 200);
    for (const name of names) assert.ok(isLoginRoleName(name), name);
    assert.equal(
      newLoginRoleName(() => Buffer.alloc(13, 0)),
      `pc_${'a'.repeat(20)}`,
    );
    assert.equal(
      newLoginRoleName(() => Buffer.alloc(13, 0xff)),
      `pc_${'7'.repeat(20)}`,
    );
  });

  it('recognises only names it can produce', () => {
    for (const name of [
      'postgres',
      'pc_short',
      'pc_ABCDEFGHIJKLMNOPQRST',
      'pc_abcdefghijklmnopqrs1',
      42,
      null,
    ]) {
      assert.equal(isLoginRoleName(name), false, String(name));
    }
  });

  it('accepts as a login OID only the decimal text of an OID a created role can have', () => {
    for (const oid of ['16384', '24601', '4294967295']) assert.equal(isLoginRoleOid(oid), true, oid);
    for (const oid of ['10', '16383', '4294967296', '016384', '16384 ', '-16384', '1e5', '', 16384, null]) {
      assert.equal(isLoginRoleOid(oid), false, String(oid));
    }
  });

  it('round-trips the grant and resource through the role comment', () => {
    const owner = { grant: 'g-1\'"', resource: 'prod-db' };
    assert.deepEqual(parseLoginRoleComment(loginRoleComment(owner)), owner);
    const marked = { ...owner, installation: '0b6d2f4e-installation' };
    assert.deepEqual(parseLoginRoleComment(loginRoleComment(marked)), marked);
    for (const other of [
      null,
      undefined,
      '',
      'hand made',
      'portcullis:{',
      'portcullis:{"grant":1}',
      'portcullis:{"grant":"g","resource":"r","installation":7}',
    ]) {
      assert.equal(parseLoginRoleComment(other), undefined, String(other));
    }
  });

  it('creates a login with explicit NO… attributes, the limit, the verifier and the expiry', () => {
    assert.equal(
      createLoginRoleSql(settings),
      'CREATE ROLE "pc_abcdefghijklmnopqrst" WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ' +
        "INHERIT LOGIN CONNECTION LIMIT 5 PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy' " +
        "VALID UNTIL '2030-01-02T03:04:05.678Z'",
    );
    assert.match(
      alterLoginRoleSql(settings),
      /^ALTER ROLE "pc_abcdefghijklmnopqrst" WITH LOGIN CONNECTION LIMIT 5 /,
    );
  });

  it('refuses a connection limit or expiry that is not a plain value', () => {
    assert.throws(() => createLoginRoleSql({ ...settings, connectionLimit: 0 }), RangeError);
    assert.throws(() => createLoginRoleSql({ ...settings, connectionLimit: 1.5 }), RangeError);
    assert.throws(() => createLoginRoleSql({ ...settings, validUntil: Number.NaN }), RangeError);
  });

  it('quotes identifiers and literals', () => {
    assert.equal(grantRoleSql('odd "role"; drop', 'pc_x'), 'GRANT "odd ""role""; drop" TO "pc_x"');
    assert.equal(grantConnectSql('my "db"', 'pc_x'), 'GRANT CONNECT ON DATABASE "my ""db""" TO "pc_x"');
    assert.equal(reassignOwnedSql('pc_x', 'Owner'), 'REASSIGN OWNED BY "pc_x" TO "Owner"');
    assert.equal(
      commentOnLoginRoleSql('pc_x', { grant: "it's", resource: 'r' }),
      `COMMENT ON ROLE "pc_x" IS 'portcullis:{"grant":"it''s","resource":"r"}'`,
    );
  });
});
