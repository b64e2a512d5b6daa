import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from './protocol-error.js';
import { createScramKeyCache, startScram } from './scram-client.js';

// RFC 7677 section 3: user "user", password "pencil".
const rfc = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcExchange() {
  return startScram(rfc.password, { clientNonce: rfc.clientNonce, username: 'user' });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof ProtocolError && error.code === code);
}

describe('SCRAM-SHA-256 client', () => {
  it('reproduces the RFC 7677 example exchange', async () => {
    const scram = rfcExchange();
    assert.equal(scram.clientFirstMessage, rfc.clientFirst);
    const final = await scram.next(Buffer.from(rfc.serverFirst));
    assert.equal(final.clientFinalMessage, rfc.clientFinal);
    final.verify(Buffer.from(rfc.serverFinal));
  });

  it('refuses a wrong server signature: the server is not proven', async () => {
    const final = await rfcExchange().next(rfc.serverFirst);
    const forged = Buffer.from('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=', 'base64');
    forged[0] = (forged[0] as number) ^ 1;
    assert.throws(
      () => final.verify(`v=${forged.toString('base64')}`),
      (error: unknown) => error instanceof ProtocolError && error.code === 'scram_server_signature_mismatch',
    );
    assert.throws(
      () => final.verify('v=AAAA'),
      (error: unknown) => error instanceof ProtocolError && error.code === 'scram_server_signature_mismatch',
    );
  });

  it('reports a server error and a malformed server-final-message', async () => {
    const final = await rfcExchange().next(rfc.serverFirst);
    assert.throws(
      () => final.verify('e=invalid-proof'),
      (error: unknown) => error instanceof ProtocolError && error.code === 'scram_server_error',
    );
    for (const bad of ['', 'x', 'v=not base64!', 'r=abc'])
      assert.throws(
        () => final.verify(bad),
        (error: unknown) => error instanceof ProtocolError && error.code === 'scram_malformed',
        bad,
      );
  });

  it('refuses a server nonce that does not extend the client nonce', async () => {
    await rejectsWith(
      rfcExchange().next('r=somethingElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
      'scram_nonce_mismatch',
    );
    await rejectsWith(
      rfcExchange().next(`r=${rfc.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`),
      'scram_nonce_mismatch',
    );
  });

  it('refuses iteration counts below 4096 or above the cap', async () => {
    const nonce = `${rfc.clientNonce}xyz`;
    await rejectsWith(
      rfcExchange().next(`r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095`),
      'scram_iterations_out_of_range',
    );
    await rejectsWith(
      startScram('p', { clientNonce: rfc.clientNonce, maxIterations: 10_000 }).next(
        `r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10001`,
      ),
      'scram_iterations_out_of_range',
    );
  });

  it('refuses malformed server-first-messages', async () => {
    const nonce = `${rfc.clientNonce}xyz`;
    for (const bad of [
      '',
      'garbage',
      `r=${nonce}`,
      `s=W22ZaJ0SNY7soEsUEjb6gQ==,r=${nonce},i=4096`,
      `r=${nonce},s=***,i=4096`,
      `r=${nonce},s=,i=4096`,
      `r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096.5`,
      `r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1`,
      `m=ext,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`,
    ])
      await rejectsWith(rfcExchange().next(bad), 'scram_malformed');
  });

  it('uses a fresh random nonce and an empty user name by default', () => {
    const a = startScram('secret').clientFirstMessage;
    const b = startScram('secret').clientFirstMessage;
    assert.match(a, /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    assert.notEqual(a, b);
  });

  it('passes the derivation to an injected (e.g. cached) key function', async () => {
    const calls: number[] = [];
    const final = await startScram(rfc.password, {
      clientNonce: rfc.clientNonce,
      username: 'user',
      deriveKey: async (password, salt, iterations) => {
        calls.push(iterations);
        const { pbkdf2Sync } = await import('node:crypto');
        return pbkdf2Sync(password, salt, iterations, 32, 'sha256');
      },
    }).next(rfc.serverFirst);
    assert.deepEqual(calls, [4096]);
    assert.equal(final.clientFinalMessage, rfc.clientFinal);
  });

  it('a key cache derives once for repeated and concurrent logins with the same salt', async () => {
    const deriveKey = createScramKeyCache(2);
    const password = Buffer.from('pencil');
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const [a, b] = [deriveKey(password, salt, 4096), deriveKey(password, salt, 4096)];
    assert.equal(a, b);
    const final = await startScram(rfc.password, {
      clientNonce: rfc.clientNonce,
      username: 'user',
      deriveKey,
    }).next(rfc.serverFirst);
    assert.equal(final.clientFinalMessage, rfc.clientFinal);
    assert.notEqual(deriveKey(Buffer.from('other'), salt, 4096), a);
    assert.equal(deriveKey(password, salt, 4096), a);
    deriveKey(password, salt, 5000);
    deriveKey(Buffer.from('third'), salt, 4096);
    assert.notEqual(deriveKey(password, salt, 4096), a, 'the least recently used entry was evicted');
  });
});
