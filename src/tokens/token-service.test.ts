import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { base64url, decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { type DialectTestContext, forEachDialect } from '../../test-support/dialects.js';
import { ManualClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { type Grant, markApplied, newGrant } from '../core/grant.js';
import type { Principal } from '../core/principal.js';
import { JweSecretBox } from '../crypto/secret-box.js';
import { type SigningAlgorithm, SigningKeyStore, signingKeySealPurpose } from './key-store.js';
import type { TokenRejection } from './token-errors.js';
import { accessTokenType, sessionTokenType, TokenService } from './token-service.js';

// Keys live in the real store (src/storage/open-store.ts). SQLite only: nothing here depends on the
// dialect, and key-store.test.ts runs the key repository scenarios on both databases.
const sqliteOnly = { dialects: ['sqlite'] } as const;

const start = Date.UTC(2025, 0, 1, 12, 0, 0);
const issuer = 'https://portcullis.example.com';
const audience = 'portcullis';

const alice: Principal = {
  id: 'corp:alice',
  idp: 'corp',
  subject: 'alice',
  displayName: 'Alice',
  email: 'alice@example.com',
  groups: ['engineers', 'dba'],
};

function liveGrant(patch: Partial<Grant> = {}): Grant {
  const grant = markApplied(
    newGrant({
      id: 'grant-1',
      requestId: 'request-1',
      principalId: alice.id,
      resourceId: 'prod-db',
      role: 'migrate',
      notBefore: start - 60_000,
      expiresAt: start + 45 * 60_000,
      artefacts: {},
    }),
    { pgRole: 'ptc_grant_1' },
  );
  return { ...grant, ...patch };
}

async function setup(
  ctx: DialectTestContext,
  overrides: {
    issuer?: string;
    audience?: string;
    tokenAlgorithm?: SigningAlgorithm;
    box?: JweSecretBox;
  } = {},
) {
  const clock = new ManualClock(start);
  const repository = ctx.store.keys;
  const box = overrides.box ?? new JweSecretBox(randomBytes(32)).withPurpose(signingKeySealPurpose);
  const keys = new SigningKeyStore(repository, box, {
    longestTokenLifetimeSeconds: 3600,
    clock,
    tokenAlgorithm: overrides.tokenAlgorithm,
  });
  await keys.ensureActiveKey('token', start);
  const tokens = new TokenService({
    keys,
    issuer: overrides.issuer ?? issuer,
    audience: overrides.audience ?? audience,
    accessTokenTtlSeconds: 900,
    sessionTtlSeconds: 3600,
  });
  return { clock, repository, keys, tokens, box };
}

function rejectedWith(reason: TokenRejection) {
  return (error: unknown) => {
    assert.ok(error instanceof PortcullisError, `expected PortcullisError, got ${String(error)}`);
    assert.equal(error.code, 'invalid_token');
    assert.equal(error.details.reason, reason);
    return true;
  };
}

function encode(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

forEachDialect(
  'TokenService: ES256 keys',
  (ctx) => {
    it('signs with ES256 when the key is P-256, and verifies and introspects it', async () => {
      const { tokens } = await setup(ctx, { tokenAlgorithm: 'ES256' });
      const { token } = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      assert.equal(decodeProtectedHeader(token).alg, 'ES256');
      const claims = await tokens.verifyAccessToken(token, start, { resourceId: 'prod-db' });
      assert.equal(claims.grantId, 'grant-1');
      const session = await tokens.issueSessionToken(alice, start);
      assert.equal(decodeProtectedHeader(session.token).alg, 'ES256');
      await tokens.verifySessionToken(session.token, start);
    });

    it("refuses a token whose alg is not its key's, in either direction", async () => {
      const eddsa = await setup(ctx);
      const es256 = await setup(ctx, { tokenAlgorithm: 'ES256', box: eddsa.box });
      // The two setups share the table: rotate so that one key of each kind is published.
      await es256.keys.rotate('token', start, 3600);
      eddsa.keys.invalidate();
      const published = (await eddsa.keys.publicKeys('token', start)).keys;
      const kidOf = (alg: SigningAlgorithm) => published.find((key) => key.alg === alg)?.kid;
      const genuine = decodeJwt(
        (await es256.tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start })).token,
      );
      const forgeries = [
        // An EdDSA signature presented under the P-256 key's kid…
        { alg: 'EdDSA', kid: kidOf('ES256'), key: await generateKeyPair('EdDSA', { crv: 'Ed25519' }) },
        // …and an ES256 one under the Ed25519 key's kid.
        { alg: 'ES256', kid: kidOf('EdDSA'), key: await generateKeyPair('ES256') },
      ];
      for (const { alg, kid, key } of forgeries) {
        assert.ok(kid);
        const forged = await new SignJWT(genuine)
          .setProtectedHeader({ alg, kid, typ: accessTokenType })
          .sign(key.privateKey);
        for (const { tokens } of [eddsa, es256]) {
          await assert.rejects(tokens.verifyAccessToken(forged, start), rejectedWith('alg_not_allowed'));
        }
      }
    });
  },
  sqliteOnly,
);

forEachDialect(
  'TokenService: access tokens',
  (ctx) => {
    it('carries the specified claims and header', async () => {
      const { tokens, keys } = await setup(ctx);
      const now = start + 1234;
      const issued = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now,
        ttlSeconds: 600,
      });

      const header = decodeProtectedHeader(issued.token);
      assert.deepEqual(header, {
        alg: 'EdDSA',
        kid: (await keys.activeSigningKey('token')).kid,
        typ: accessTokenType,
      });

      const claims = decodeJwt(issued.token);
      const iat = Math.floor(now / 1000);
      assert.deepEqual(claims, {
        iss: issuer,
        sub: alice.id,
        aud: [audience, 'prod-db'],
        iat,
        nbf: iat,
        exp: iat + 600,
        jti: issued.jti,
        client_id: 'portcullis',
        grant_id: 'grant-1',
        role: 'migrate',
        resource: 'prod-db',
      });
      assert.equal(issued.expiresAt, (iat + 600) * 1000);
      assert.ok(issued.jti.length >= 22);

      const verified = await tokens.verifyAccessToken(issued.token, now);
      assert.equal(verified.sub, alice.id);
      assert.equal(verified.grantId, 'grant-1');
      assert.equal(verified.role, 'migrate');
      assert.equal(verified.resourceId, 'prod-db');
      assert.equal(verified.expiresAt, issued.expiresAt);
    });

    it('gives every token its own jti and caps the lifetime at the configured TTL', async () => {
      const { tokens } = await setup(ctx);
      const a = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      const b = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now: start,
        ttlSeconds: 86_400,
      });
      assert.notEqual(a.jti, b.jti);
      assert.equal(a.expiresAt, start + 900_000);
      assert.equal(b.expiresAt, start + 900_000);
      await assert.rejects(
        tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start, ttlSeconds: 0 }),
        PortcullisError,
      );
    });

    it('puts role scopes in `scope` when given', async () => {
      const { tokens } = await setup(ctx);
      const { token } = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now: start,
        scopes: ['orders:read', 'orders:write'],
      });
      assert.equal(decodeJwt(token).scope, 'orders:read orders:write');
    });

    it('clamps exp to the grant end, rounding down, and the token dies with the grant', async () => {
      const { tokens } = await setup(ctx);
      const grant = liveGrant({ expiresAt: start + 120_500 });
      const issued = await tokens.issueAccessToken({ grant, principal: alice, now: start, ttlSeconds: 900 });
      assert.equal(decodeJwt(issued.token).exp, Math.floor((start + 120_500) / 1000));
      assert.equal(issued.expiresAt, start + 120_000);
      assert.ok(issued.expiresAt <= grant.expiresAt);

      await tokens.verifyAccessToken(issued.token, start + 119_999);
      // No clock-skew grace at exp: the token ends on time.
      await assert.rejects(tokens.verifyAccessToken(issued.token, start + 120_000), rejectedWith('expired'));
      await assert.rejects(tokens.verifyAccessToken(issued.token, start + 121_000), rejectedWith('expired'));
    });

    it('refuses to issue for a grant that is not live, or for someone else', async () => {
      const { tokens } = await setup(ctx);
      const cases: [string, Grant, number][] = [
        ['expired', liveGrant(), start + 45 * 60_000],
        ['not started', liveGrant({ notBefore: start + 1000 }), start],
        ['being revoked', liveGrant({ status: 'revoking' }), start],
        ['revoked', liveGrant({ status: 'revoked' }), start],
        ['still applying', { ...liveGrant(), status: 'applying' }, start],
        ['ends within the second', liveGrant({ expiresAt: start + 900 }), start],
      ];
      for (const [description, grant, now] of cases) {
        await assert.rejects(
          tokens.issueAccessToken({ grant, principal: alice, now }),
          (error: unknown) => {
            assert.ok(error instanceof PortcullisError, description);
            assert.equal(error.code, 'forbidden', description);
            assert.equal(error.details.reason, 'grant_not_live', description);
            return true;
          },
          description,
        );
      }
      await assert.rejects(
        tokens.issueAccessToken({
          grant: liveGrant(),
          principal: { ...alice, id: 'corp:mallory' },
          now: start,
        }),
        /another principal/,
      );
    });

    it('rejects a token signed by another key under the same kid', async () => {
      const { tokens, keys } = await setup(ctx);
      const { kid } = await keys.activeSigningKey('token');
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const genuine = decodeJwt(
        (await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start })).token,
      );
      const forged = await new SignJWT({ ...genuine, role: 'superuser' })
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: accessTokenType })
        .sign(privateKey);
      await assert.rejects(tokens.verifyAccessToken(forged, start), rejectedWith('bad_signature'));
    });

    it('rejects an expired token', async () => {
      const { tokens } = await setup(ctx);
      const { token, expiresAt } = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now: start,
      });
      await assert.rejects(tokens.verifyAccessToken(token, expiresAt + 10_000), rejectedWith('expired'));
    });

    it('rejects a token that is not valid yet beyond the 5 s skew allowance', async () => {
      const { tokens } = await setup(ctx);
      const { token } = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now: start + 10_000,
      });
      await tokens.verifyAccessToken(token, start + 5_000);
      await assert.rejects(tokens.verifyAccessToken(token, start + 4_000), rejectedWith('not_yet_valid'));
    });

    it('rejects alg: none', async () => {
      const { tokens, keys } = await setup(ctx);
      const { kid } = await keys.activeSigningKey('token');
      const genuine = decodeJwt(
        (await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start })).token,
      );
      const unsecured = `${encode({ alg: 'none', kid, typ: accessTokenType })}.${encode(genuine)}.`;
      await assert.rejects(tokens.verifyAccessToken(unsecured, start), rejectedWith('alg_not_allowed'));
    });

    it('rejects HS256 signed with the public key as the HMAC secret', async () => {
      const { tokens, keys } = await setup(ctx);
      const { kid, publicJwk } = await keys.activeSigningKey('token');
      const genuine = decodeJwt(
        (await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start })).token,
      );
      for (const secret of [
        base64url.decode(publicJwk.x),
        new TextEncoder().encode(JSON.stringify(publicJwk)),
      ]) {
        const confused = await new SignJWT(genuine)
          .setProtectedHeader({ alg: 'HS256', kid, typ: accessTokenType })
          .sign(secret);
        await assert.rejects(tokens.verifyAccessToken(confused, start), rejectedWith('alg_not_allowed'));
      }
    });

    it('rejects the wrong audience and the wrong issuer', async () => {
      const { tokens, keys } = await setup(ctx);
      const base = { keys, accessTokenTtlSeconds: 900, sessionTtlSeconds: 3600 };
      const otherAudience = new TokenService({ ...base, issuer, audience: 'someone-else' });
      const otherIssuer = new TokenService({ ...base, issuer: 'https://evil.example.com', audience });
      const input = { grant: liveGrant(), principal: alice, now: start };
      await assert.rejects(
        tokens.verifyAccessToken((await otherAudience.issueAccessToken(input)).token, start),
        rejectedWith('wrong_audience'),
      );
      await assert.rejects(
        tokens.verifyAccessToken((await otherIssuer.issueAccessToken(input)).token, start),
        rejectedWith('wrong_issuer'),
      );
    });

    it('rejects a token for another resource when the caller names its resource', async () => {
      const { tokens } = await setup(ctx);
      const { token } = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      await tokens.verifyAccessToken(token, start, { resourceId: 'prod-db' });
      await assert.rejects(
        tokens.verifyAccessToken(token, start, { resourceId: 'billing-api' }),
        rejectedWith('wrong_audience'),
      );
    });

    it('rejects an unknown kid, and a missing one', async () => {
      const { tokens } = await setup(ctx);
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const genuine = decodeJwt(
        (await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start })).token,
      );
      const unknown = await new SignJWT(genuine)
        .setProtectedHeader({ alg: 'EdDSA', kid: 'not-a-portcullis-key', typ: accessTokenType })
        .sign(privateKey);
      await assert.rejects(tokens.verifyAccessToken(unknown, start), rejectedWith('unknown_kid'));
      const anonymous = await new SignJWT(genuine)
        .setProtectedHeader({ alg: 'EdDSA', typ: accessTokenType })
        .sign(privateKey);
      await assert.rejects(tokens.verifyAccessToken(anonymous, start), rejectedWith('malformed'));
    });

    it('rejects garbage as malformed', async () => {
      const { tokens } = await setup(ctx);
      for (const garbage of ['', 'abc', 'a.b.c', `${'a'.repeat(9000)}.b.c`]) {
        await assert.rejects(
          tokens.verifyAccessToken(garbage, start),
          rejectedWith('malformed'),
          garbage.slice(0, 10),
        );
      }
    });

    it('keeps tokens issued before a key rotation valid until they expire', async () => {
      const { tokens, keys, clock } = await setup(ctx);
      const before = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      await keys.rotate('token', start, 3600);
      const after = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      assert.notEqual(decodeProtectedHeader(before.token).kid, decodeProtectedHeader(after.token).kid);
      clock.advance(60_000);
      await tokens.verifyAccessToken(before.token, start + 60_000);
      await tokens.verifyAccessToken(after.token, start + 60_000);
    });
  },
  sqliteOnly,
);

forEachDialect(
  'TokenService: session tokens',
  (ctx) => {
    it('issues a session token with its own type, audience and the groups', async () => {
      const { tokens } = await setup(ctx);
      const issued = await tokens.issueSessionToken(alice, start, 1800);
      assert.equal(decodeProtectedHeader(issued.token).typ, sessionTokenType);
      const claims = decodeJwt(issued.token);
      assert.equal(claims.aud, `${audience}:session`);
      assert.equal(claims.sub, alice.id);
      assert.deepEqual(claims.groups, alice.groups);
      assert.equal(claims.exp, start / 1000 + 1800);

      const session = await tokens.verifySessionToken(issued.token, start + 1000);
      assert.equal(session.sub, alice.id);
      assert.deepEqual(session.principal, alice);
      assert.equal(session.expiresAt, start + 1_800_000);
    });

    it('caps the session lifetime at the configured TTL and ends it on time', async () => {
      const { tokens } = await setup(ctx);
      const issued = await tokens.issueSessionToken(alice, start, 10 * 3600);
      assert.equal(issued.expiresAt, start + 3_600_000);
      await assert.rejects(
        tokens.verifySessionToken(issued.token, issued.expiresAt),
        rejectedWith('expired'),
      );
    });

    it('does not accept a session token as an access token, nor the reverse', async () => {
      const { tokens } = await setup(ctx);
      const session = await tokens.issueSessionToken(alice, start);
      const access = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      await assert.rejects(tokens.verifyAccessToken(session.token, start), rejectedWith('wrong_type'));
      await assert.rejects(tokens.verifySessionToken(access.token, start), rejectedWith('wrong_type'));
      assert.deepEqual(await tokens.introspect(session.token, start, async () => true), { active: false });
    });
  },
  sqliteOnly,
);

forEachDialect(
  'TokenService: introspection (RFC 7662)',
  (ctx) => {
    it('answers active with the token facts while the grant is live', async () => {
      const { tokens } = await setup(ctx);
      const now = start + 500;
      const issued = await tokens.issueAccessToken({
        grant: liveGrant(),
        principal: alice,
        now,
        scopes: ['read'],
      });
      const asked: string[] = [];
      const response = await tokens.introspect(issued.token, now, async (grantId) => {
        asked.push(grantId);
        return true;
      });
      assert.deepEqual(asked, ['grant-1']);
      const iat = Math.floor(now / 1000);
      assert.deepEqual(response, {
        active: true,
        token_type: 'Bearer',
        iss: issuer,
        sub: alice.id,
        aud: [audience, 'prod-db'],
        exp: iat + 900,
        iat,
        nbf: iat,
        jti: issued.jti,
        client_id: 'portcullis',
        scope: 'read',
        grant_id: 'grant-1',
        role: 'migrate',
        resource: 'prod-db',
      });
    });

    it('answers only active: false the moment the grant ends, even though exp is later', async () => {
      const { tokens } = await setup(ctx);
      const grant = liveGrant();
      const { token } = await tokens.issueAccessToken({ grant, principal: alice, now: start });
      let revokedAt: number | null = null;
      const isGrantLive = async () => revokedAt === null;
      assert.equal((await tokens.introspect(token, start + 1000, isGrantLive)).active, true);
      revokedAt = start + 2000;
      assert.deepEqual(await tokens.introspect(token, start + 2000, isGrantLive), { active: false });
    });

    it('answers only active: false for expired, forged and garbage tokens', async () => {
      const { tokens, keys } = await setup(ctx);
      const grant = liveGrant({ expiresAt: start + 60_000 });
      const { token } = await tokens.issueAccessToken({ grant, principal: alice, now: start });
      const live = async () => true;
      assert.deepEqual(await tokens.introspect(token, start + 60_000, live), { active: false });

      const { kid } = await keys.activeSigningKey('token');
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const forged = await new SignJWT(decodeJwt(token))
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: accessTokenType })
        .sign(privateKey);
      assert.deepEqual(await tokens.introspect(forged, start, live), { active: false });
      assert.deepEqual(await tokens.introspect('nonsense', start, live), { active: false });
    });

    it('lets a failing grant lookup surface instead of answering', async () => {
      const { tokens } = await setup(ctx);
      const { token } = await tokens.issueAccessToken({ grant: liveGrant(), principal: alice, now: start });
      await assert.rejects(
        tokens.introspect(token, start, async () => {
          throw new Error('database unavailable');
        }),
        /database unavailable/,
      );
    });
  },
  sqliteOnly,
);
