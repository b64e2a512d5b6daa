import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testAuditKey } from './audit-test-support.js';
import { loadPublicKeys, parsePublicKeys } from './public-keys.js';

describe('parsePublicKeys', () => {
  const key = testAuditKey('audit-1');
  const publicOnly = { kty: 'OKP', crv: 'Ed25519', x: key.publicJwk.x, kid: 'audit-1' };

  it('reads a JWK, a JWK Set and PEM blocks', () => {
    assert.deepEqual(parsePublicKeys(JSON.stringify({ ...key.publicJwk, use: 'sig', alg: 'EdDSA' })), [
      publicOnly,
    ]);
    const other = testAuditKey('audit-2');
    assert.deepEqual(
      parsePublicKeys(JSON.stringify({ keys: [key.publicJwk, other.publicJwk] })).map((jwk) => jwk.kid),
      ['audit-1', 'audit-2'],
    );
    const pair = generateKeyPairSync('ed25519');
    const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const [fromPem] = parsePublicKeys(`\n${pem}\n${pem}`);
    assert.deepEqual(fromPem, { kty: 'OKP', crv: 'Ed25519', x: pair.publicKey.export({ format: 'jwk' }).x });
  });

  it('refuses private keys, other key types and other content', () => {
    const pair = generateKeyPairSync('ed25519');
    assert.throws(
      () => parsePublicKeys(JSON.stringify(pair.privateKey.export({ format: 'jwk' }))),
      /private key; pass the public key only/,
    );
    assert.throws(
      () => parsePublicKeys(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
      /expected PUBLIC KEY PEM blocks, found PRIVATE KEY/,
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    assert.throws(() => parsePublicKeys(JSON.stringify(ec.export({ format: 'jwk' }))), /not an Ed25519/);
    assert.throws(
      () => parsePublicKeys(ec.export({ type: 'spki', format: 'pem' }).toString()),
      /not an Ed25519/,
    );
    assert.throws(() => parsePublicKeys('{"keys":[]}'), /no keys found/);
    assert.throws(() => parsePublicKeys('ssh-ed25519 AAAA'), /not JSON/);
  });

  it('takes P-256 keys as token keys (ES256), never as audit keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'token-es256', alg: 'ES256', use: 'sig' };
    const ed = { ...key.publicJwk, kid: 'token-eddsa' };
    const set = JSON.stringify({ keys: [jwk, ed] });
    assert.deepEqual(parsePublicKeys(set, 'token'), [
      { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: 'token-es256' },
      { kty: 'OKP', crv: 'Ed25519', x: key.publicJwk.x, kid: 'token-eddsa' },
    ]);
    assert.throws(() => parsePublicKeys(set, 'audit'), /token-es256 is not an Ed25519 public key/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    assert.throws(
      () => parsePublicKeys(JSON.stringify(p384), 'token'),
      /not an Ed25519 \(kty OKP\) or P-256/,
    );
    assert.throws(
      () => parsePublicKeys(JSON.stringify(ec.privateKey.export({ format: 'jwk' })), 'token'),
      /private key; pass the public key only/,
    );
  });

  it('names the file in errors', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'portcullis-keys-'));
    try {
      const path = join(directory, 'audit.pub');
      await writeFile(path, 'nonsense');
      await assert.rejects(loadPublicKeys(path), (error: Error) => error.message.startsWith(`${path}: `));
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
