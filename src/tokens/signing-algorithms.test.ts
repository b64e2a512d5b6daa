import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { JWK } from 'jose';
import {
  publicKeyMembersFor,
  publicKeyMembersForPurpose,
  samePublicKey,
  signingAlgorithmsFor,
} from './signing-algorithms.js';

const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as JWK;
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JWK;

describe('signing algorithms', () => {
  it('ties each algorithm to one kind of key', () => {
    assert.deepEqual(publicKeyMembersFor('EdDSA', { ...ed25519, kid: 'k', d: 'secret' }), {
      kty: 'OKP',
      crv: 'Ed25519',
      x: ed25519.x,
    });
    assert.deepEqual(publicKeyMembersFor('ES256', p256), { kty: 'EC', crv: 'P-256', x: p256.x, y: p256.y });
    assert.equal(publicKeyMembersFor('EdDSA', p256), null);
    assert.equal(publicKeyMembersFor('ES256', ed25519), null);
    assert.deepEqual(signingAlgorithmsFor('token'), ['EdDSA', 'ES256']);
    assert.deepEqual(signingAlgorithmsFor('audit'), ['EdDSA']);
    assert.equal(publicKeyMembersForPurpose('token', ed25519)?.kty, 'OKP');
    assert.equal(publicKeyMembersForPurpose('token', p256)?.kty, 'EC');
    assert.equal(publicKeyMembersForPurpose('audit', ed25519)?.kty, 'OKP');
    assert.equal(publicKeyMembersForPurpose('audit', p256), null);
  });

  it('refuses keys with missing or malformed coordinates and other curves', () => {
    assert.equal(publicKeyMembersFor('ES256', { ...p256, y: undefined }), null);
    assert.equal(publicKeyMembersFor('ES256', { ...p256, x: 'not base64url!' }), null);
    assert.equal(publicKeyMembersFor('EdDSA', { ...ed25519, x: '' }), null);
    assert.equal(publicKeyMembersFor('EdDSA', { ...ed25519, crv: 'Ed448' }), null);
    assert.equal(publicKeyMembersForPurpose('token', { ...p256, crv: 'P-384' }), null);
    assert.equal(publicKeyMembersForPurpose('token', { kty: 'RSA', n: 'AQAB', e: 'AQAB' }), null);
  });

  it('compares public keys by their identifying members only', () => {
    const members = publicKeyMembersFor('ES256', p256);
    assert.ok(members);
    assert.ok(samePublicKey(members, { ...p256, d: 'private half', kid: 'x' }));
    assert.ok(!samePublicKey(members, { ...p256, y: ed25519.x }));
    assert.ok(!samePublicKey(members, ed25519));
  });
});
