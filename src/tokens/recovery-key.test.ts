import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompactSign } from 'jose';
import { PortcullisError } from '../core/errors.js';
import {
  generateRecoveryKey,
  parseRecoveryPrivateKey,
  type RotationStatement,
  recoveryKeyId,
  recoveryKeyRow,
  signRotationStatement,
  verifyRotationStatement,
} from './recovery-key.js';

const now = Date.UTC(2026, 10, 23, 12, 0);
const statement: RotationStatement = {
  purpose: 'token',
  retire: ['old-1', 'old-2'],
  install: 'new-1',
  operator: 'operator:root',
  reason: 'INC-7',
};

async function setup() {
  const pair = await generateRecoveryKey();
  const key = parseRecoveryPrivateKey(pair.privateKeyPem);
  return { pair, key, rows: [recoveryKeyRow(pair, now)] };
}

const refused = (error: unknown) => error instanceof PortcullisError && error.code === 'recovery_key_refused';

describe('recovery key', () => {
  it('a fresh pair: PEM private key, thumbprint kid, stored row without private half', async () => {
    const { pair, key } = await setup();
    assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(await recoveryKeyId(key), pair.kid);
    const row = recoveryKeyRow(pair, now);
    assert.equal(row.purpose, 'recovery');
    assert.equal(row.sealedPrivateJwk, '');
    assert.ok(!row.publicJwk.includes('"d"'));
  });

  it('verifies a statement that describes exactly this rotation (retire order does not matter)', async () => {
    const { pair, key, rows } = await setup();
    const jws = await signRotationStatement(key, statement, now);
    const proof = await verifyRotationStatement(
      jws,
      rows,
      { ...statement, retire: ['old-2', 'old-1'] },
      now + 1000,
    );
    assert.equal(proof.recoveryKid, pair.kid);
    assert.ok(proof.jti.length > 10);
  });

  it('refuses another key, a replaced key, a stale or tampered statement, or one about another rotation', async () => {
    const { pair, key, rows } = await setup();
    const jws = await signRotationStatement(key, statement, now);
    const other = parseRecoveryPrivateKey(
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    );
    await assert.rejects(
      verifyRotationStatement(await signRotationStatement(other, statement, now), rows, statement, now),
      refused,
    );
    await assert.rejects(
      verifyRotationStatement(jws, [{ ...rows[0], active: false } as (typeof rows)[0]], statement, now),
      refused,
    );
    await assert.rejects(verifyRotationStatement(jws, rows, statement, now + 301_000), refused);
    await assert.rejects(verifyRotationStatement(jws, rows, statement, now - 60_000), refused);
    for (const changed of [
      { install: 'attacker-key' },
      { retire: ['old-1'] },
      { retire: ['old-1', 'old-2', 'old-3'] },
      { reason: 'other' },
      { operator: 'operator:mallory' },
    ]) {
      await assert.rejects(
        verifyRotationStatement(jws, rows, { ...statement, ...changed }, now),
        refused,
        JSON.stringify(changed),
      );
    }
    const [header, payload, signature] = jws.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()), install: 'x' }),
    ).toString('base64url');
    await assert.rejects(
      verifyRotationStatement(`${header}.${forged}.${signature}`, rows, { ...statement, install: 'x' }, now),
      refused,
    );
    // Signed by the right key, but not a rotation statement (another typ).
    const wrongType = await new CompactSign(
      new TextEncoder().encode(Buffer.from(payload ?? '', 'base64url').toString()),
    )
      .setProtectedHeader({ alg: 'EdDSA', kid: pair.kid, typ: 'JWT' })
      .sign(key);
    await assert.rejects(verifyRotationStatement(wrongType, rows, statement, now), refused);
  });

  it('accepts only Ed25519 PEM private keys', () => {
    assert.throws(() => parseRecoveryPrivateKey('not a key'), /not a PEM private key/);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    assert.throws(() => parseRecoveryPrivateKey(p256.toString()), /not an Ed25519 key/);
  });
});
