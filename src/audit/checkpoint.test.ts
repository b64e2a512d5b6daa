import assert from 'node:assert/strict';
import { generateKeyPairSync, KeyObject, webcrypto } from 'node:crypto';
import { after, beforeEach, describe, it } from 'node:test';
import type { Store } from '../app/ports.js';
import { openStore } from '../storage/open-store.js';
import { appendTestEvents, auditTestEpoch, testAuditKey } from './audit-test-support.js';
import {
  AuditCheckpointer,
  checkpointSignatureValid,
  checkpointSigningInput,
  ed25519PublicKey,
  signCheckpoint,
} from './checkpoint.js';

describe('checkpoint signatures', () => {
  const key = testAuditKey('audit-1');
  const privateKey = key.privateKey as KeyObject;
  const checkpoint = signCheckpoint({ seq: 7, hash: 'ab'.repeat(32) }, auditTestEpoch, {
    kid: 'audit-1',
    privateKey,
  });

  it('signs the canonical body {at, head_hash, kid, seq}', () => {
    assert.equal(
      checkpointSigningInput(checkpoint).toString('utf8'),
      `{"at":${auditTestEpoch},"head_hash":"${'ab'.repeat(32)}","kid":"audit-1","seq":7}`,
    );
    assert.equal(Buffer.from(checkpoint.signature, 'base64url').length, 64);
  });

  it('is a raw Ed25519 signature that WebCrypto verifies from the public JWK', async () => {
    const publicKey = await webcrypto.subtle.importKey('jwk', key.publicJwk, { name: 'Ed25519' }, false, [
      'verify',
    ]);
    const valid = await webcrypto.subtle.verify(
      { name: 'Ed25519' },
      publicKey,
      Buffer.from(checkpoint.signature, 'base64url'),
      checkpointSigningInput(checkpoint),
    );
    assert.equal(valid, true);
  });

  it('verifies only under the right key and for the signed values', () => {
    const publicKey = ed25519PublicKey(key.publicJwk);
    assert.equal(checkpointSignatureValid(checkpoint, publicKey), true);
    assert.equal(checkpointSignatureValid({ ...checkpoint, seq: 8 }, publicKey), false);
    assert.equal(checkpointSignatureValid({ ...checkpoint, headHash: 'cd'.repeat(32) }, publicKey), false);
    assert.equal(checkpointSignatureValid({ ...checkpoint, kid: 'audit-2' }, publicKey), false);
    assert.equal(checkpointSignatureValid({ ...checkpoint, signature: 'AAAA' }, publicKey), false);
    assert.equal(checkpointSignatureValid(checkpoint, ed25519PublicKey(testAuditKey().publicJwk)), false);
  });

  it('refuses public keys that are not Ed25519', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    assert.throws(() => ed25519PublicKey(ec), /not an Ed25519 public key/);
  });
});

describe('AuditCheckpointer', () => {
  let store: Store;
  const key = testAuditKey('audit-1');

  beforeEach(async () => {
    await store?.close();
    store = await openStore('sqlite::memory:');
  });
  after(() => store.close());

  it('writes nothing for an empty chain', async () => {
    const checkpointer = new AuditCheckpointer(store.auditLog, key);
    assert.equal(await checkpointer.checkpointIfDue(auditTestEpoch), undefined);
    assert.equal(await checkpointer.checkpointNow(auditTestEpoch), undefined);
  });

  it('checkpoints at once the first time, then every N events or T seconds', async () => {
    const checkpointer = new AuditCheckpointer(store.auditLog, key, { everyEvents: 5, everySeconds: 60 });
    await appendTestEvents(store, 1, 2);
    const first = await checkpointer.checkpointIfDue(auditTestEpoch);
    assert.equal(first?.seq, 2);
    assert.equal(first?.headHash, (await store.auditLog.head()).hash);
    assert.equal(await checkpointer.checkpointIfDue(auditTestEpoch + 1000), undefined, 'nothing new');

    await appendTestEvents(store, 3, 6);
    assert.equal(await checkpointer.checkpointIfDue(auditTestEpoch + 1000), undefined, '4 new, 1 s');
    await appendTestEvents(store, 7, 7);
    assert.equal((await checkpointer.checkpointIfDue(auditTestEpoch + 2000))?.seq, 7, '5 new');

    await appendTestEvents(store, 8, 8);
    assert.equal(await checkpointer.checkpointIfDue(auditTestEpoch + 61_000), undefined, '1 new, 59 s');
    assert.equal((await checkpointer.checkpointIfDue(auditTestEpoch + 62_000))?.seq, 8, '1 new, 60 s');

    await appendTestEvents(store, 9, 9);
    assert.equal((await checkpointer.checkpointNow(auditTestEpoch + 62_001))?.seq, 9);
    assert.deepEqual(
      (await store.auditLog.checkpoints()).map((c) => c.seq),
      [2, 7, 8, 9],
    );
    const publicKey = ed25519PublicKey(key.publicJwk);
    for (const checkpoint of await store.auditLog.checkpoints()) {
      assert.equal(checkpointSignatureValid(checkpoint, publicKey), true);
    }
  });

  it('accepts a non-extractable WebCrypto private key, as the key store holds it', async () => {
    const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const publicJwk = { ...(await webcrypto.subtle.exportKey('jwk', pair.publicKey)), kid: 'web' };
    await appendTestEvents(store, 1, 1);
    const checkpoint = await new AuditCheckpointer(store.auditLog, {
      kid: 'web',
      privateKey: pair.privateKey,
      publicJwk: publicJwk as never,
    }).checkpointNow(auditTestEpoch);
    assert.ok(checkpoint);
    assert.equal(checkpointSignatureValid(checkpoint, KeyObject.from(pair.publicKey)), true);
  });

  it('refuses a non-extractable WebCrypto key that does not match its public JWK, writing nothing', async () => {
    const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    await appendTestEvents(store, 1, 1);
    const before = (await store.auditLog.checkpoints()).length;
    const checkpointer = new AuditCheckpointer(store.auditLog, {
      kid: 'web-mismatch',
      privateKey: pair.privateKey,
      publicJwk: testAuditKey().publicJwk,
    });
    await assert.rejects(checkpointer.checkpointNow(auditTestEpoch), /does not match/);
    assert.equal((await store.auditLog.checkpoints()).length, before);
  });

  it('refuses a key pair that does not match, or is not Ed25519', () => {
    assert.throws(
      () => new AuditCheckpointer(store.auditLog, { ...key, publicJwk: testAuditKey().publicJwk }),
      /does not match/,
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(
      () => new AuditCheckpointer(store.auditLog, { ...key, privateKey: ec.privateKey }),
      /not an Ed25519 private key/,
    );
    assert.throws(() => new AuditCheckpointer(store.auditLog, key, { everyEvents: 0 }), /positive/);
  });
});
