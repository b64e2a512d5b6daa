import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SoftAuthenticator } from '../../test-support/soft-authenticator.js';
import type { Store } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import { openStore } from '../storage/open-store.js';
import type { StoredSecurityKey } from './ports.js';
import {
  SecurityKeyCeremonies,
  type SecurityKeyRefusal,
  SecurityKeyRefused,
  webauthnConfigSchema,
  webauthnSettings,
} from './webauthn.js';

const origin = 'https://portcullis.example.com';
const rpId = 'portcullis.example.com';
let dir = '';
let store: Store;
let now = Date.UTC(2026, 10, 23, 12, 0);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-webauthn-'));
  // The real ephemeral store (SQLite) holds the challenges.
  store = await openStore(`sqlite:${join(dir, 'p.db')}`);
});
after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function ceremonies(overrides: Partial<Parameters<typeof webauthnSettings>[0]> = {}) {
  const settings = webauthnSettings(webauthnConfigSchema.parse({ ...overrides }), `${origin}/`);
  return new SecurityKeyCeremonies(settings, store.ephemeral, () => now);
}

async function refusedWith(promise: Promise<unknown>, reason: SecurityKeyRefusal): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SecurityKeyRefused, `expected a refusal, got ${String(error)}`);
    assert.equal(error.reason, reason);
    assert.equal(error.code, 'break_glass_auth_failed');
    assert.equal(error.message, 'The emergency credentials were not accepted');
    assert.deepEqual(error.details, {}, 'nothing about the reason is shown to the caller');
    return true;
  });
}

/** Enrols a fresh software key for `custodianId`. */
async function enrol(
  webauthn: SecurityKeyCeremonies,
  custodianId = 'alice',
  key = new SoftAuthenticator(origin),
): Promise<{ key: SoftAuthenticator; stored: StoredSecurityKey }> {
  const options = await webauthn.registrationOptions({ custodianId, existing: [] });
  const stored = await webauthn.verifyRegistration({
    custodianId,
    response: key.create(options),
    existing: [],
  });
  return { key, stored };
}

describe('webauthnSettings', () => {
  it('defaults the RP id and origin to server.public_url and refuses an origin outside the RP id', () => {
    assert.deepEqual(webauthnSettings(webauthnConfigSchema.parse({}), 'https://pc.example.com:8443/x'), {
      rpId: 'pc.example.com',
      rpName: 'Portcullis break-glass',
      origins: ['https://pc.example.com:8443'],
      allowSyncedPasskeys: false,
    });
    assert.throws(
      () =>
        webauthnSettings(
          webauthnConfigSchema.parse({ rp_id: 'example.com', origins: ['https://evil.test'] }),
          undefined,
        ),
      (e: unknown) => e instanceof PortcullisError && e.code === 'config_invalid',
    );
    assert.throws(() => webauthnSettings(webauthnConfigSchema.parse({}), undefined), /rp_id and origins/);
  });
});

describe('security key enrolment', () => {
  it('asks for user verification, a security key, no attestation, and excludes enrolled keys', async () => {
    const webauthn = ceremonies();
    const existing: StoredSecurityKey = {
      credentialId: 'AAAA',
      publicKey: 'AAAA',
      counter: 0,
      transports: ['usb'],
    };
    const options = await webauthn.registrationOptions({
      custodianId: 'alice',
      displayName: 'Alice',
      existing: [existing],
    });
    assert.equal(options.rp.id, rpId);
    assert.equal(options.attestation, 'none');
    assert.equal(options.authenticatorSelection?.userVerification, 'required');
    assert.equal(options.authenticatorSelection?.authenticatorAttachment, 'cross-platform');
    assert.deepEqual(options.excludeCredentials, [{ id: 'AAAA', type: 'public-key', transports: ['usb'] }]);
    assert.deepEqual(
      options.pubKeyCredParams.map((p) => p.alg),
      [-8, -7, -257],
    );
    assert.equal(Buffer.from(options.challenge, 'base64url').length, 32);
    assert.notEqual(options.user.id, Buffer.from('alice').toString('base64url'), 'the user handle is opaque');
  });

  it('verifies a software key attestation and returns only public material', async () => {
    const webauthn = ceremonies();
    const { key, stored } = await enrol(webauthn);
    assert.equal(stored.credentialId, key.id);
    assert.equal(stored.counter, 0);
    assert.deepEqual(stored.transports, ['usb', 'nfc']);
    assert.ok(stored.publicKey.length > 60);
  });

  it('refuses a wrong origin, a wrong RP id, no user verification, no presence, a wrong ceremony type', async () => {
    const webauthn = ceremonies();
    const cases: [Parameters<SoftAuthenticator['create']>[1], SecurityKeyRefusal][] = [
      [{ origin: 'https://portcullis.example.com.evil.test' }, 'origin_mismatch'],
      [{ rpId: 'evil.test' }, 'rp_id_mismatch'],
      [{ userVerified: false }, 'user_not_verified'],
      [{ userPresent: false }, 'user_not_present'],
      [{ type: 'webauthn.get' }, 'wrong_type'],
    ];
    for (const [override, reason] of cases) {
      const options = await webauthn.registrationOptions({ custodianId: 'alice', existing: [] });
      const response = new SoftAuthenticator(origin).create(options, override);
      await refusedWith(
        webauthn.verifyRegistration({ custodianId: 'alice', response, existing: [] }),
        reason,
      );
    }
  });

  it('refuses a challenge that is unknown, expired, for another custodian, or used before', async () => {
    const webauthn = ceremonies();
    const key = new SoftAuthenticator(origin);
    const options = await webauthn.registrationOptions({ custodianId: 'alice', existing: [] });

    await refusedWith(
      webauthn.verifyRegistration({
        custodianId: 'alice',
        response: key.create(options, { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
        existing: [],
      }),
      'challenge_unknown',
    );
    const forAlice = key.create(options);
    await refusedWith(
      webauthn.verifyRegistration({ custodianId: 'bob', response: forAlice, existing: [] }),
      'challenge_unknown',
    );
    // The attempt for bob did not consume alice's challenge; alice's own use does.
    await webauthn.verifyRegistration({ custodianId: 'alice', response: forAlice, existing: [] });
    await refusedWith(
      webauthn.verifyRegistration({ custodianId: 'alice', response: forAlice, existing: [] }),
      'challenge_unknown',
    );

    const late = await webauthn.registrationOptions({ custodianId: 'alice', existing: [] });
    now += 5 * 60_000 + 1;
    await refusedWith(
      webauthn.verifyRegistration({
        custodianId: 'alice',
        response: new SoftAuthenticator(origin).create(late),
        existing: [],
      }),
      'challenge_unknown',
    );
  });

  it('a failed attempt burns its challenge', async () => {
    const webauthn = ceremonies();
    const key = new SoftAuthenticator(origin);
    const options = await webauthn.registrationOptions({ custodianId: 'alice', existing: [] });
    await refusedWith(
      webauthn.verifyRegistration({
        custodianId: 'alice',
        response: key.create(options, { userVerified: false }),
        existing: [],
      }),
      'user_not_verified',
    );
    await refusedWith(
      webauthn.verifyRegistration({ custodianId: 'alice', response: key.create(options), existing: [] }),
      'challenge_unknown',
    );
  });

  it('refuses a synced passkey unless allowed, and the same key twice', async () => {
    const strict = ceremonies();
    const synced = new SoftAuthenticator(origin, { backedUp: true });
    const options = await strict.registrationOptions({ custodianId: 'alice', existing: [] });
    await refusedWith(
      strict.verifyRegistration({ custodianId: 'alice', response: synced.create(options), existing: [] }),
      'synced_credential',
    );

    const lenient = ceremonies({ allow_synced_passkeys: true });
    const { stored } = await enrol(lenient, 'alice', synced);
    const again = await lenient.registrationOptions({ custodianId: 'alice', existing: [stored] });
    await refusedWith(
      lenient.verifyRegistration({
        custodianId: 'alice',
        response: synced.create(again),
        existing: [stored],
      }),
      'duplicate_credential',
    );
  });

  it('refuses garbage without throwing anything but a refusal', async () => {
    const webauthn = ceremonies();
    const options = await webauthn.registrationOptions({ custodianId: 'alice', existing: [] });
    const good = new SoftAuthenticator(origin).create(options);
    await refusedWith(
      webauthn.verifyRegistration({
        custodianId: 'alice',
        response: { ...good, response: { ...good.response, clientDataJSON: '!!' } },
        existing: [],
      }),
      'malformed_response',
    );
    await refusedWith(
      webauthn.verifyRegistration({
        custodianId: 'alice',
        response: { ...good, response: { ...good.response, attestationObject: 'AAAA' } },
        existing: [],
      }),
      'malformed_response',
    );
  });
});

describe('security key sign-in', () => {
  it('verifies an assertion and returns the new counter; the next one must be higher', async () => {
    const webauthn = ceremonies();
    const { key, stored } = await enrol(webauthn);
    const options = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [stored] });
    assert.equal(options.userVerification, 'required');
    assert.equal(options.rpId, rpId);
    assert.deepEqual(
      options.allowCredentials?.map((c) => c.id),
      [stored.credentialId],
    );

    const first = await webauthn.verifyAuthentication({
      custodianId: 'alice',
      response: key.get(options),
      keys: [stored],
    });
    assert.deepEqual(first, { credentialId: stored.credentialId, newCounter: 1 });

    const updated = { ...stored, counter: first.newCounter };
    const next = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [updated] });
    const second = await webauthn.verifyAuthentication({
      custodianId: 'alice',
      response: key.get(next),
      keys: [updated],
    });
    assert.equal(second.newCounter, 2);
  });

  it('refuses a replayed assertion (challenge used) and a counter regression (cloned key)', async () => {
    const webauthn = ceremonies();
    const { key, stored } = await enrol(webauthn);
    const options = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [stored] });
    const assertion = key.get(options);
    const { newCounter } = await webauthn.verifyAuthentication({
      custodianId: 'alice',
      response: assertion,
      keys: [stored],
    });
    const updated = { ...stored, counter: newCounter };
    await refusedWith(
      webauthn.verifyAuthentication({ custodianId: 'alice', response: assertion, keys: [updated] }),
      'challenge_unknown',
    );

    for (const counter of [newCounter, newCounter - 1]) {
      const fresh = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [updated] });
      await refusedWith(
        webauthn.verifyAuthentication({
          custodianId: 'alice',
          response: key.get(fresh, { counter }),
          keys: [updated],
        }),
        'counter_regression',
      );
    }
  });

  it('refuses an unknown credential, another custodian’s key, and a user handle of someone else', async () => {
    const webauthn = ceremonies();
    const alice = await enrol(webauthn, 'alice');
    const bob = await enrol(webauthn, 'bob');
    const stranger = new SoftAuthenticator(origin);

    let options = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [alice.stored] });
    await refusedWith(
      webauthn.verifyAuthentication({
        custodianId: 'alice',
        response: stranger.get(options),
        keys: [alice.stored],
      }),
      'unknown_credential',
    );
    options = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [alice.stored] });
    await refusedWith(
      webauthn.verifyAuthentication({
        custodianId: 'alice',
        response: bob.key.get(options),
        keys: [alice.stored],
      }),
      'unknown_credential',
    );
    // Bob's challenge cannot be answered as alice, even with alice's key.
    options = await webauthn.authenticationOptions({ custodianId: 'bob', keys: [bob.stored] });
    await refusedWith(
      webauthn.verifyAuthentication({
        custodianId: 'alice',
        response: alice.key.get(options),
        keys: [alice.stored],
      }),
      'challenge_unknown',
    );
    options = await webauthn.authenticationOptions({ custodianId: 'alice', keys: [alice.stored] });
    await refusedWith(
      webauthn.verifyAuthentication({
        custodianId: 'alice',
        response: alice.key.get(options, { userHandle: Buffer.from('bob').toString('base64url') }),
        keys: [alice.stored],
      }),
      'user_mismatch',
    );
    await refusedWith(webauthn.authenticationOptions({ custodianId: 'carol', keys: [] }), 'no_security_key');
  });

  it('refuses a wrong challenge, origin, RP id, missing UV, and a forged signature', async () => {
    const webauthn = ceremonies();
    const { key, stored } = await enrol(webauthn);
    const cases: [Parameters<SoftAuthenticator['get']>[1], SecurityKeyRefusal][] = [
      [{ challenge: Buffer.alloc(32, 7).toString('base64url') }, 'challenge_unknown'],
      [{ origin: 'https://phish.example.net' }, 'origin_mismatch'],
      [{ rpId: 'example.com' }, 'rp_id_mismatch'],
      [{ userVerified: false }, 'user_not_verified'],
      [{ type: 'webauthn.create' }, 'wrong_type'],
    ];
    let counter = 0;
    for (const [override, reason] of cases) {
      const options = await webauthn.authenticationOptions({
        custodianId: 'alice',
        keys: [{ ...stored, counter }],
      });
      await refusedWith(
        webauthn.verifyAuthentication({
          custodianId: 'alice',
          response: key.get(options, override),
          keys: [{ ...stored, counter }],
        }),
        reason,
      );
      counter = key.counter;
    }

    // A valid assertion whose signature is of another key (same credential id): the library refuses it.
    const impostor = new SoftAuthenticator(origin);
    Object.defineProperty(impostor, 'credentialId', { value: key.credentialId });
    const options = await webauthn.authenticationOptions({
      custodianId: 'alice',
      keys: [{ ...stored, counter }],
    });
    await refusedWith(
      webauthn.verifyAuthentication({
        custodianId: 'alice',
        response: impostor.get(options, { counter: counter + 5 }),
        keys: [{ ...stored, counter }],
      }),
      'verification_failed',
    );
  });
});
