import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, FlattenedSign } from 'jose';
import { forEachDialect } from '../../test-support/dialects.js';
import type { KeyRepository, StoredKey } from '../app/ports.js';
import { ManualClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { JweSecretBox } from '../crypto/secret-box.js';
import {
  type KeyPurpose,
  type SigningAlgorithm,
  SigningKeyStore,
  signingKeySealPurpose,
} from './key-store.js';

const start = Date.UTC(2025, 0, 1, 12, 0, 0);
const hour = 3600;
const kek = randomBytes(32);
const box = new JweSecretBox(kek).withPurpose(signingKeySealPurpose);

function keyStore(
  repository: KeyRepository,
  clock = new ManualClock(start),
  tokenAlgorithm?: SigningAlgorithm,
) {
  const keys = new SigningKeyStore(repository, box, {
    longestTokenLifetimeSeconds: hour,
    clock,
    tokenAlgorithm,
  });
  return { keys, repository, clock };
}

/** A repository that behaves like `inner` except where `overrides` say otherwise. */
function wrap(inner: KeyRepository, overrides: Partial<KeyRepository>): KeyRepository {
  return {
    list: (purpose) => inner.list(purpose),
    insert: (key) => inner.insert(key),
    retireOthers: (...args) => inner.retireOthers(...args),
    retireIfActive: (...args) => inner.retireIfActive(...args),
    activateIfNext: (...args) => inner.activateIfNext(...args),
    deleteUnpublished: (...args) => inner.deleteUnpublished(...args),
    ...overrides,
  };
}

async function sign(keys: SigningKeyStore, purpose: KeyPurpose, text: string): Promise<string> {
  const key = await keys.activeSigningKey(purpose);
  const jws = await new FlattenedSign(new TextEncoder().encode(text))
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .sign(key.privateKey);
  return `${jws.protected}.${jws.payload}.${jws.signature}`;
}

async function verifies(
  keys: SigningKeyStore,
  purpose: KeyPurpose,
  jws: string,
  now: number,
): Promise<boolean> {
  const { kid } = decodeProtectedHeader(jws);
  const key = await keys.verificationKey(purpose, kid as string, now);
  if (!key) return false;
  await compactVerify(jws, key.publicKey, { algorithms: [key.alg] });
  return true;
}

// On the real store (src/storage/open-store.ts), once per database dialect.
forEachDialect('SigningKeyStore', (ctx) => {
  const setup = (clock?: ManualClock) => keyStore(ctx.store.keys, clock);

  it('creates the first key once and publishes it under its RFC 7638 thumbprint', async () => {
    const { keys, repository } = setup();
    const first = await keys.ensureActiveKey('token', start);
    const again = await keys.ensureActiveKey('token', start + 1000);
    assert.equal(again.kid, first.kid);
    assert.equal((await repository.list('token')).length, 1);

    assert.equal(first.kid, await calculateJwkThumbprint(first.publicJwk));
    assert.equal(first.privateKey.type, 'private');
    assert.equal(first.privateKey.extractable, false);

    const jwks = await keys.publicKeys('token', start);
    assert.deepEqual(jwks.keys, [
      { kty: 'OKP', crv: 'Ed25519', x: first.publicJwk.x, kid: first.kid, alg: 'EdDSA', use: 'sig' },
    ]);
    assert.ok(!JSON.stringify(jwks).includes('"d"'));
  });

  it('keeps purposes apart', async () => {
    const { keys } = setup();
    const token = await keys.ensureActiveKey('token', start);
    const audit = await keys.ensureActiveKey('audit', start);
    assert.notEqual(token.kid, audit.kid);
    assert.deepEqual(
      (await keys.publicKeys('audit', start)).keys.map((k) => k.kid),
      [audit.kid],
    );
    assert.equal(await keys.verificationKey('token', audit.kid, start), undefined);
  });

  it('refuses to sign when no key was ever created', async () => {
    const { keys } = setup();
    await assert.rejects(keys.activeSigningKey('token'), /no active token signing key/);
  });

  it('stores private keys sealed, never in clear', async () => {
    const { keys, repository } = setup();
    await keys.ensureActiveKey('token', start);
    await keys.rotate('token', start + 1000, 2 * hour);
    // The rows as the database holds them, read back through the storage adapter.
    const rows = await repository.list('token');
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.ok(!JSON.stringify(row).includes('"d":'), 'a private JWK member is stored in clear');
      assert.equal(row.sealedPrivateJwk.split('.').length, 5, 'sealed as a compact JWE');
      assert.equal(decodeProtectedHeader(row.sealedPrivateJwk).purpose, signingKeySealPurpose);
      assert.ok(!row.publicJwk.includes('"d"'));
      // …and it opens with the key-encryption key.
      assert.match(await box.open(row.sealedPrivateJwk), /"d":/);
    }
  });

  it('rotation keeps old signatures valid until the overlap ends, then refuses the old kid', async () => {
    const { keys, repository, clock } = setup();
    const old = await keys.ensureActiveKey('token', start);
    const oldToken = await sign(keys, 'token', 'issued before rotation');

    const rotatedAt = start + 60_000;
    clock.set(rotatedAt);
    const rotation = await keys.rotate('token', rotatedAt, 2 * hour);
    assert.deepEqual(rotation.retiredKids, [old.kid]);
    assert.equal(rotation.publishUntil, rotatedAt + 2 * hour * 1000);
    assert.notEqual(rotation.kid, old.kid);

    const current = await keys.activeSigningKey('token');
    assert.equal(current.kid, rotation.kid);
    const newToken = await sign(keys, 'token', 'issued after rotation');
    assert.equal(decodeProtectedHeader(newToken).kid, rotation.kid);

    const during = rotatedAt + 2 * hour * 1000 - 1;
    clock.set(during);
    assert.ok(await verifies(keys, 'token', oldToken, during));
    assert.ok(await verifies(keys, 'token', newToken, during));
    assert.deepEqual(
      (await keys.publicKeys('token', during)).keys.map((k) => k.kid),
      [rotation.kid, old.kid],
    );

    const after = rotatedAt + 2 * hour * 1000;
    clock.set(after);
    assert.equal(await verifies(keys, 'token', oldToken, after), false);
    assert.ok(await verifies(keys, 'token', newToken, after));
    assert.deepEqual(
      (await keys.publicKeys('token', after)).keys.map((k) => k.kid),
      [rotation.kid],
    );

    // The next rotation deletes the key whose publication has ended.
    const second = await keys.rotate('token', after, 2 * hour);
    assert.equal(second.deleted, 1);
    assert.deepEqual(
      (await repository.list('token')).map((k) => k.kid).sort(),
      [rotation.kid, second.kid].sort(),
    );
  });

  it('a next key published ahead is in the JWKS without signing; a rotation makes it sign; an emergency removes it', async () => {
    const { keys, clock } = setup();
    const old = await keys.ensureActiveKey('token', start);
    const next = await keys.publishNext(start + 1000);
    assert.equal(next.created, true);
    assert.deepEqual(await keys.publishNext(start + 2000), { kid: next.kid, created: false });
    assert.deepEqual(
      (await keys.publicKeys('token', start + 2000)).keys.map((k) => k.kid),
      [old.kid, next.kid],
    );
    assert.equal((await keys.activeSigningKey('token')).kid, old.kid);
    assert.equal(await keys.nextKid(), next.kid);

    clock.set(start + 60_000);
    const rotation = await keys.rotate('token', start + 60_000, 2 * hour);
    assert.equal(rotation.kid, next.kid, 'the manual rotation promotes the key verifiers already hold');
    assert.equal((await keys.activeSigningKey('token')).kid, next.kid);
    assert.equal(await keys.nextKid(), undefined);
    const token = await sign(keys, 'token', 'signed by the promoted key');
    assert.ok(await verifies(keys, 'token', token, start + 60_000));

    const again = await keys.publishNext(start + 120_000);
    await keys.replaceAll('token', start + 180_000, async () => {});
    assert.ok(!(await keys.publicKeys('token', start + 180_000)).keys.some((k) => k.kid === again.kid));
    assert.equal(await keys.nextKid(), undefined);
  });

  it('refuses an overlap shorter than the longest token lifetime', async () => {
    const { keys, repository } = setup();
    await keys.ensureActiveKey('token', start);
    await assert.rejects(keys.rotate('token', start, hour - 1), (error: unknown) => {
      assert.ok(error instanceof PortcullisError);
      assert.equal(error.code, 'validation_failed');
      assert.match(error.message, /shorter than the longest token lifetime/);
      return true;
    });
    await assert.rejects(keys.rotate('token', start, Number.NaN), PortcullisError);
    assert.equal((await repository.list('token')).length, 1, 'nothing was written');
    await keys.rotate('token', start, hour);
  });

  it('retains audit keys for good, whatever the overlap, so old checkpoints verify offline', async () => {
    const { keys, clock } = setup();
    await keys.ensureActiveKey('audit', start);
    const checkpoint = await sign(keys, 'audit', 'checkpoint 1');
    const rotation = await keys.rotate('audit', start, 0);
    const years = start + 10 * 365 * 24 * hour * 1000;
    clock.set(years);
    assert.ok(await verifies(keys, 'audit', checkpoint, years));
    assert.equal((await keys.publicKeys('audit', years)).keys.length, 2);
    assert.equal((await keys.activeSigningKey('audit')).kid, rotation.kid);
  });

  it('picks up a rotation made through another instance on the same database', async () => {
    const clock = new ManualClock(start);
    const server = new SigningKeyStore(ctx.store.keys, box, { longestTokenLifetimeSeconds: hour, clock });
    // `portcullis keys rotate` is another process with its own connection to the database.
    const cliStore = await ctx.openStore();
    const cli = new SigningKeyStore(cliStore.keys, box, { longestTokenLifetimeSeconds: hour, clock });

    const first = await server.ensureActiveKey('token', start);
    assert.equal((await cli.activeSigningKey('token')).kid, first.kid);

    const rotation = await cli.rotate('token', start, 2 * hour);

    // Within the refresh interval the server still signs with its cached key (still published)…
    clock.advance(1000);
    assert.equal((await server.activeSigningKey('token')).kid, first.kid);
    // …but a token from a replica that already switched verifies at once (unknown kid → re-read).
    const fromOtherReplica = await sign(cli, 'token', 'from a replica that already refreshed');
    assert.ok(await verifies(server, 'token', fromOtherReplica, clock.now()));

    clock.advance(5000);
    assert.equal((await server.activeSigningKey('token')).kid, rotation.kid);
    assert.deepEqual(
      (await server.publicKeys('token', clock.now())).keys.map((k) => k.kid),
      [rotation.kid, first.kid],
    );
  });

  it('does not let a slow read from before its own rotation overwrite the rotated view', async () => {
    let gate: Promise<void> | null = null;
    let release = () => {};
    const slow = wrap(ctx.store.keys, {
      list: async (purpose) => {
        const rows = await ctx.store.keys.list(purpose);
        if (gate) {
          const waiting = gate;
          gate = null;
          await waiting;
        }
        return rows;
      },
    });
    const { keys, clock } = keyStore(slow);
    const first = await keys.ensureActiveKey('token', start);
    clock.advance(6000);
    gate = new Promise((resolve) => {
      release = resolve;
    });
    const before = keys.activeSigningKey('token'); // refresh under way, holding the old rows
    await new Promise((resolve) => setImmediate(resolve));
    const rotation = await keys.rotate('token', clock.now(), hour);
    release();
    assert.equal((await before).kid, first.kid);
    assert.equal((await keys.activeSigningKey('token')).kid, rotation.kid);
  });

  it('rate-limits re-reads caused by unknown key ids', async () => {
    let reads = 0;
    const counting = wrap(ctx.store.keys, {
      list: (purpose) => {
        reads += 1;
        return ctx.store.keys.list(purpose);
      },
    });
    const { keys, clock } = keyStore(counting);
    await keys.ensureActiveKey('token', start);
    const before = reads;
    for (let i = 0; i < 50; i += 1)
      assert.equal(await keys.verificationKey('token', `made-up-${i}`, start), undefined);
    assert.equal(reads, before, 'no re-read within the rate limit');
    clock.advance(1000);
    await keys.verificationKey('token', 'made-up', start);
    assert.equal(reads, before + 1);
  });

  it('signs with the newest key when a start-up race left two active keys, and publishes both', async () => {
    const a = setup().keys;
    const first = await a.ensureActiveKey('token', start);
    // Replica b read the table before a's insert landed, so it saw no key and created its own.
    const other = (await ctx.openStore()).keys;
    let stale = true;
    const sawNothing = wrap(other, {
      list: async (purpose) => {
        if (stale) {
          stale = false;
          return [];
        }
        return other.list(purpose);
      },
    });
    const b = keyStore(sawNothing).keys;
    const second = await b.ensureActiveKey('token', start + 1);
    assert.notEqual(second.kid, first.kid);
    assert.deepEqual(
      (await other.list('token')).map((key) => key.active),
      [true, true],
    );

    a.invalidate();
    assert.equal((await a.activeSigningKey('token')).kid, second.kid);
    assert.equal((await b.activeSigningKey('token')).kid, second.kid);
    assert.deepEqual(
      (await a.publicKeys('token', start)).keys.map((k) => k.kid),
      [second.kid, first.kid],
    );
  });

  it('will not open a signing key with a box bound to another purpose or another KEK', async () => {
    const repository = ctx.store.keys;
    await setup().keys.ensureActiveKey('token', start);
    const expectReason = (reason: string) => (error: unknown) => {
      assert.ok(error instanceof PortcullisError);
      assert.equal(error.details.reason, reason);
      return true;
    };
    const otherPurpose = new JweSecretBox(kek).withPurpose('grant-credentials');
    const keys = new SigningKeyStore(repository, otherPurpose, { longestTokenLifetimeSeconds: hour });
    await assert.rejects(keys.activeSigningKey('token'), expectReason('wrong_purpose'));
    const otherKek = new JweSecretBox(randomBytes(32)).withPurpose(signingKeySealPurpose);
    const misconfigured = new SigningKeyStore(repository, otherKek, { longestTokenLifetimeSeconds: hour });
    await assert.rejects(misconfigured.activeSigningKey('token'), expectReason('wrong_key'));
    // A failed open is not cached: the right box still works afterwards.
    assert.ok(await setup().keys.activeSigningKey('token'));
  });

  it('refuses a row whose sealed private key belongs to another key', async () => {
    const inner = ctx.store.keys;
    const { keys: writer } = setup();
    await writer.ensureActiveKey('token', start);
    await writer.ensureActiveKey('audit', start);
    const [audit] = await inner.list('audit');
    // Someone with write access to the table pastes the audit key's sealed half into the token row.
    const swapped = wrap(inner, {
      list: async (purpose) =>
        (await inner.list(purpose)).map(
          (key): StoredKey =>
            purpose === 'token' ? { ...key, sealedPrivateJwk: audit?.sealedPrivateJwk ?? '' } : key,
        ),
    });
    const { keys } = keyStore(swapped);
    await assert.rejects(keys.activeSigningKey('token'), /does not match its public key/);
  });

  it('refuses a sealed credential in place of a private key, even through a box without a purpose', async () => {
    const unbound = new JweSecretBox(kek);
    const inner = ctx.store.keys;
    const writer = new SigningKeyStore(inner, unbound, { longestTokenLifetimeSeconds: hour });
    await writer.ensureActiveKey('token', start);
    const credential = await unbound.seal(JSON.stringify({ password: 'hunter2', d: 'x' }));
    const pasted = wrap(inner, {
      list: async (purpose) =>
        (await inner.list(purpose)).map((key) => ({ ...key, sealedPrivateJwk: credential })),
    });
    const keys = new SigningKeyStore(pasted, unbound, { longestTokenLifetimeSeconds: hour });
    await assert.rejects(keys.activeSigningKey('token'), /does not match its public key/);
  });

  it('makes ES256 token keys (P-256) when configured; audit keys stay Ed25519', async () => {
    const { keys, repository } = keyStore(ctx.store.keys, undefined, 'ES256');
    const token = await keys.ensureActiveKey('token', start);
    const audit = await keys.ensureActiveKey('audit', start);
    assert.equal(token.alg, 'ES256');
    assert.equal(audit.alg, 'EdDSA');
    assert.equal(token.kid, await calculateJwkThumbprint(token.publicJwk));
    const [row] = await repository.list('token');
    assert.equal(row?.alg, 'ES256');
    const [published] = (await keys.publicKeys('token', start)).keys;
    assert.ok(published?.kty === 'EC');
    assert.deepEqual(Object.keys(published).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    assert.equal(published.crv, 'P-256');
    assert.equal(published.alg, 'ES256');
    assert.ok(await verifies(keys, 'token', await sign(keys, 'token', 'signed with P-256'), start));
    assert.ok(await verifies(keys, 'audit', await sign(keys, 'audit', 'a checkpoint'), start));
  });

  it('switches algorithm at the next rotation, and both kinds verify through the overlap', async () => {
    const clock = new ManualClock(start);
    const eddsa = keyStore(ctx.store.keys, clock).keys;
    const old = await eddsa.ensureActiveKey('token', start);
    const oldToken = await sign(eddsa, 'token', 'EdDSA, before the change');

    // A configuration change alone makes no key: the active one keeps its algorithm…
    const es256 = keyStore(ctx.store.keys, clock, 'ES256').keys;
    assert.equal((await es256.ensureActiveKey('token', start + 1)).kid, old.kid);
    assert.equal(es256.algorithmFor('token'), 'ES256');
    // …until the rotation, which makes the new key with the configured one.
    const rotation = await es256.rotate('token', start + 1000, 2 * hour);
    assert.equal(rotation.alg, 'ES256');
    const newToken = await sign(es256, 'token', 'ES256, after the change');
    assert.equal(decodeProtectedHeader(newToken).alg, 'ES256');

    eddsa.invalidate();
    for (const keys of [eddsa, es256]) {
      assert.deepEqual(
        (await keys.publicKeys('token', start + 2000)).keys.map((key) => [key.kid, key.alg, key.kty]),
        [
          [rotation.kid, 'ES256', 'EC'],
          [old.kid, 'EdDSA', 'OKP'],
        ],
      );
      assert.ok(await verifies(keys, 'token', oldToken, start + 2000));
      assert.ok(await verifies(keys, 'token', newToken, start + 2000));
      // The store that would make EdDSA keys still signs with the active ES256 one.
      assert.equal((await keys.activeSigningKey('token')).alg, 'ES256');
    }
  });

  it('refuses a row whose algorithm does not fit its public key', async () => {
    const inner = ctx.store.keys;
    await setup().keys.ensureActiveKey('token', start);
    // An Ed25519 row relabelled ES256 (or back) must not be imported under the other algorithm.
    const relabelled = wrap(inner, {
      list: async (purpose) => (await inner.list(purpose)).map((key) => ({ ...key, alg: 'ES256' })),
    });
    await assert.rejects(keyStore(relabelled).keys.publicKeys('token', start), /unusable ES256 public key/);
    // An algorithm Portcullis does not sign with is ignored, as a newer version's key would be.
    const unknown = wrap(inner, {
      list: async (purpose) => (await inner.list(purpose)).map((key) => ({ ...key, alg: 'RS256' })),
    });
    assert.deepEqual((await keyStore(unknown).keys.publicKeys('token', start)).keys, []);
  });

  it('refuses a row whose kid is not the thumbprint of its public key', async () => {
    const inner = ctx.store.keys;
    await setup().keys.ensureActiveKey('token', start);
    const relabelled = wrap(inner, {
      list: async (purpose) =>
        (await inner.list(purpose)).map((key) => ({ ...key, kid: 'chosen-by-attacker' })),
    });
    await assert.rejects(
      keyStore(relabelled).keys.publicKeys('token', start),
      /does not match its public key/,
    );
  });
});
