import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generate } from 'otplib';
import { PortcullisError } from '../core/errors.js';
import {
  type CustodianCredentials,
  enrolTotp,
  hashPassphrase,
  productionPassphraseParameters,
  verifyCustodian,
} from './credentials.js';
import { InMemoryUsedCodes } from './used-codes.js';

// Test-only lighter argon2id parameters; production uses productionPassphraseParameters.
const light = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const t0 = Date.UTC(2025, 0, 6, 3, 0, 0);
const passphrase = 'correct horse battery staple';

let stored: CustodianCredentials;
before(async () => {
  const { secret } = enrolTotp('ana');
  stored = {
    custodianId: 'ana',
    passphraseHash: await hashPassphrase(passphrase, light),
    totpSecret: secret,
  };
});

const codeAt = (now: number) => generate({ secret: stored.totpSecret, epoch: Math.floor(now / 1000) });
const wrongCode = async (now: number) => String((Number(await codeAt(now)) + 1) % 1_000_000).padStart(6, '0');

async function outcome(
  presented: { passphrase: string; totp: string },
  used = new InMemoryUsedCodes(),
  now = t0,
) {
  try {
    await verifyCustodian(stored, presented, used, now);
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof PortcullisError);
    assert.equal(error.message, 'The emergency credentials were not accepted', 'no hint which factor');
    assert.deepEqual(error.details, {});
    return error.code;
  }
}

describe('custodian credentials', () => {
  it('accepts the right passphrase and the right code', async () =>
    assert.equal(await outcome({ passphrase, totp: await codeAt(t0) }), 'ok'));
  it('refuses a wrong passphrase', async () =>
    assert.equal(
      await outcome({ passphrase: 'wrong horse battery staple', totp: await codeAt(t0) }),
      'break_glass_auth_failed',
    ));
  it('refuses a wrong TOTP code', async () =>
    assert.equal(await outcome({ passphrase, totp: await wrongCode(t0) }), 'break_glass_auth_failed'));
  it('refuses a malformed TOTP code the same way', async () =>
    assert.equal(await outcome({ passphrase, totp: 'abc' }), 'break_glass_auth_failed'));
  it('refuses a replayed TOTP code', async () => {
    const used = new InMemoryUsedCodes();
    const totp = await codeAt(t0);
    assert.equal(await outcome({ passphrase, totp }, used), 'ok');
    assert.equal(await outcome({ passphrase, totp }, used, t0 + 10_000), 'break_glass_auth_failed');
  });
  it('burns a right code even when the passphrase was wrong', async () => {
    const used = new InMemoryUsedCodes();
    const totp = await codeAt(t0);
    assert.equal(await outcome({ passphrase: 'not the passphrase', totp }, used), 'break_glass_auth_failed');
    assert.equal(await outcome({ passphrase, totp }, used), 'break_glass_auth_failed');
  });
  it('accepts one step of clock drift', async () =>
    assert.equal(await outcome({ passphrase, totp: await codeAt(t0 - 30_000) }), 'ok'));
  it('refuses a short passphrase at enrolment', async () =>
    await assert.rejects(hashPassphrase('short', light), { code: 'validation_failed' }));
  it('hashes with argon2id at the documented production parameters', () =>
    assert.deepEqual(productionPassphraseParameters, { memoryCost: 65536, timeCost: 3, parallelism: 1 }));
  it('stores an argon2id hash, never the passphrase', () => {
    assert.match(stored.passphraseHash, /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/);
    assert.ok(!stored.passphraseHash.includes(passphrase));
  });
});
