import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { scramSha256Verifier } from './scram-verifier.js';

// The SCRAM-SHA-256 exchange of RFC 7677, section 3: user "user", password "pencil".
const rfc7677 = {
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  authMessage: [
    'n=user,r=rOprNGfwEbeRWgbNEkqO',
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  ].join(','),
  clientProof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

describe('scramSha256Verifier', () => {
  it('produces keys that verify the RFC 7677 exchange', async () => {
    const verifier = await scramSha256Verifier('pencil', { salt: Buffer.from(rfc7677.salt, 'base64') });
    const match = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    assert.ok(match, verifier);
    const [, salt, storedKeyText, serverKeyText] = match;
    assert.equal(salt, rfc7677.salt);
    const storedKey = Buffer.from(storedKeyText ?? '', 'base64');
    const serverKey = Buffer.from(serverKeyText ?? '', 'base64');

    const serverSignature = createHmac('sha256', serverKey).update(rfc7677.authMessage).digest('base64');
    assert.equal(serverSignature, rfc7677.serverSignature);

    const clientSignature = createHmac('sha256', storedKey).update(rfc7677.authMessage).digest();
    const proof = Buffer.from(rfc7677.clientProof, 'base64');
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ (clientSignature[i] ?? 0)));
    assert.deepEqual(createHash('sha256').update(clientKey).digest(), storedKey);
  });

  it('salts every verifier differently', async () => {
    assert.notEqual(await scramSha256Verifier('same-password'), await scramSha256Verifier('same-password'));
  });

  it('refuses passwords SASLprep would change', async () => {
    await assert.rejects(scramSha256Verifier(''), TypeError);
    await assert.rejects(scramSha256Verifier('with space'), TypeError);
    await assert.rejects(scramSha256Verifier('pässword'), TypeError);
  });
});
