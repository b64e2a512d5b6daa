import assert from 'node:assert/strict';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { base64url, decodeProtectedHeader, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { rejectsWith } from '../../test-support/assertions.js';
import { freePort } from '../../test-support/free-port.js';
import {
  closedPort,
  demoIdpSettings,
  obtainIdpAccessToken,
  oidcSettings,
} from '../../test-support/oidc-fixtures.js';
import { ManualClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { type DemoIdentityProvider, startDemoIdentityProvider } from './demo-identity-provider.js';
import { IdpJwtVerifier } from './idp-jwt-verifier.js';

const redirectUri = 'http://127.0.0.1:9/cli/callback';
const apiAudience = 'urn:portcullis:api';
const alice = { username: 'alice', password: 'alice-demo-password' };
const dave = { username: 'dave', password: 'dave-demo-password' };

async function refusedWith(
  verifier: IdpJwtVerifier,
  token: string,
  code: string,
  reason?: string,
): Promise<void> {
  await rejectsWith(verifier.verify(token), code, reason);
}

function claimsOf(token: string): JWTPayload {
  const [, payload = ''] = token.split('.');
  return JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as JWTPayload;
}

/** A token signed by a key the IdP never had, made to look like the IdP's. */
async function signedByStranger(claims: JWTPayload, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
}

describe('IdpJwtVerifier against a real oidc-provider', () => {
  let primary: DemoIdentityProvider;
  let secondary: DemoIdentityProvider;
  let aliceToken: string;

  before(async () => {
    primary = await startDemoIdentityProvider({ port: 0, redirectUris: [redirectUri], apiAudience });
    secondary = await startDemoIdentityProvider({ port: 0, redirectUris: [redirectUri], apiAudience });
    aliceToken = await obtainIdpAccessToken(primary, alice, redirectUri);
  });
  after(async () => {
    await primary.stop();
    await secondary.stop();
  });

  function verifierFor(overrides = {}, options = {}) {
    return new IdpJwtVerifier([demoIdpSettings(primary, overrides)], { jwksCooldownSeconds: 0, ...options });
  }

  it('accepts a valid IdP token and maps its groups', async () => {
    const verifier = verifierFor({ group_mapping: { admins: ['admins', 'approvers'] } });
    const daveToken = await obtainIdpAccessToken(primary, dave, redirectUri);
    assert.equal(verifier.handles(daveToken), true);
    const { principal, issuedAt, expiresAt } = await verifier.verify(daveToken);
    assert.ok(issuedAt !== null && issuedAt <= Date.now() && expiresAt > issuedAt);
    assert.deepEqual(principal, {
      id: 'corp:dave',
      idp: 'corp',
      subject: 'dave',
      displayName: 'Dave Duarte',
      email: 'dave@demo.portcullis.test',
      groups: ['admins', 'approvers'],
    });
  });

  it('passes identifier groups through when no mapping is configured', async () => {
    const { principal } = await verifierFor().verify(aliceToken);
    assert.deepEqual(principal.groups, ['engineering']);
  });

  it('refuses a token whose payload was changed (forged signature)', async () => {
    const [header, , signature] = aliceToken.split('.');
    const forgedPayload = base64url.encode(JSON.stringify({ ...claimsOf(aliceToken), groups: ['admins'] }));
    await refusedWith(
      verifierFor(),
      `${header}.${forgedPayload}.${signature}`,
      'invalid_token',
      'bad_signature',
    );
  });

  it("refuses a token signed by another key under the IdP's key id", async () => {
    const { kid = '' } = decodeProtectedHeader(aliceToken);
    const forged = await signedByStranger(claimsOf(aliceToken), kid);
    await refusedWith(verifierFor(), forged, 'invalid_token', 'bad_signature');
  });

  it('refuses an expired token', async () => {
    const { exp = 0 } = claimsOf(aliceToken);
    const clock = new ManualClock((exp + 31) * 1000);
    await refusedWith(verifierFor({}, { clock }), aliceToken, 'invalid_token', 'expired');
    // Within the tolerance the same token still passes.
    const lenient = verifierFor({}, { clock: new ManualClock((exp + 20) * 1000) });
    assert.equal((await lenient.verify(aliceToken)).principal.subject, 'alice');
  });

  it('refuses alg "none"', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify(claimsOf(aliceToken)));
    await refusedWith(verifierFor(), `${header}.${payload}.`, 'invalid_token', 'alg_not_allowed');
  });

  it("refuses HS256 signed with the IdP's public key as the secret", async () => {
    const jwks = (await (await fetch(`${primary.issuer}/jwks`)).json()) as { keys: JWK[] };
    const [publicJwk] = jwks.keys;
    assert.ok(publicJwk);
    const pem = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const confused = await new SignJWT(claimsOf(aliceToken))
      .setProtectedHeader({ alg: 'HS256', kid: publicJwk.kid ?? '' })
      .sign(Buffer.from(pem));
    await refusedWith(verifierFor(), confused, 'invalid_token', 'alg_not_allowed');
  });

  it('refuses a token for another audience', async () => {
    const verifier = verifierFor({ api_audiences: ['urn:another:api'] });
    await refusedWith(verifier, aliceToken, 'invalid_token', 'wrong_audience');
  });

  it('refuses a token of a configured IdP that is not accepted for the API (wrong issuer)', async () => {
    const verifier = new IdpJwtVerifier(
      [demoIdpSettings(primary), demoIdpSettings(secondary, { id: 'login-only', api_audiences: [] })],
      { jwksCooldownSeconds: 0 },
    );
    const fromSecondary = await obtainIdpAccessToken(secondary, alice, redirectUri);
    assert.equal(verifier.handles(fromSecondary), false);
    await refusedWith(verifier, fromSecondary, 'invalid_token', 'wrong_issuer');
  });

  it('refuses a token of an issuer that is not configured', async () => {
    const verifier = verifierFor();
    const fromSecondary = await obtainIdpAccessToken(secondary, alice, redirectUri);
    await refusedWith(verifier, fromSecondary, 'invalid_token', 'unconfigured_issuer');
    const stranger = await signedByStranger(
      { ...claimsOf(aliceToken), iss: 'https://idp.evil.example' },
      'k1',
    );
    await refusedWith(verifier, stranger, 'invalid_token', 'unconfigured_issuer');
  });

  it('refuses a token whose key id the IdP does not publish', async () => {
    const forged = await signedByStranger(claimsOf(aliceToken), 'not-a-published-kid');
    await refusedWith(verifierFor(), forged, 'invalid_token', 'unknown_kid');
  });

  it('refuses what is not a JWT', async () => {
    const verifier = verifierFor();
    for (const token of ['', 'abc', 'a.b.c', `${'x'.repeat(20_000)}.y.z`]) {
      assert.equal(verifier.handles(token), false);
      await refusedWith(verifier, token, 'invalid_token', 'malformed');
    }
  });

  it('picks up a rotated IdP signing key without a restart', async () => {
    const verifier = verifierFor();
    const before = await obtainIdpAccessToken(primary, alice, redirectUri);
    await verifier.verify(before);
    const newKid = await primary.rotateSigningKey();
    const after = await obtainIdpAccessToken(primary, alice, redirectUri);
    assert.equal(decodeProtectedHeader(after).kid, newKid);
    assert.notEqual(decodeProtectedHeader(before).kid, newKid);
    assert.equal((await verifier.verify(after)).principal.subject, 'alice');
    assert.equal(
      (await verifier.verify(before)).principal.subject,
      'alice',
      'the previous key stays published',
    );
  });

  it('refuses configurations that would accept ID tokens or are ambiguous', () => {
    assert.throws(
      () => new IdpJwtVerifier([demoIdpSettings(primary, { api_audiences: [primary.clientId] })]),
      (error: unknown) => error instanceof PortcullisError && error.code === 'config_invalid',
    );
    assert.throws(
      () => new IdpJwtVerifier([demoIdpSettings(primary), demoIdpSettings(primary, { id: 'twin' })]),
      (error: unknown) => error instanceof PortcullisError && error.code === 'config_invalid',
    );
  });
});

/**
 * A pass-through proxy in front of an IdP that counts JWKS requests; the IdP is started with the
 * proxy's URL as its issuer, so every URL in its metadata points through the proxy.
 */
async function countingProxy(): Promise<{
  url: string;
  jwksFetches(): number;
  target(port: number): void;
  stop(): Promise<void>;
}> {
  let targetPort = 0;
  let fetches = 0;
  const server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/jwks') fetches++;
    const upstream = request(
      { host: '127.0.0.1', port: targetPort, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jwksFetches: () => fetches,
    target: (p) => {
      targetPort = p;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('IdpJwtVerifier JWKS refresh on an unknown kid', () => {
  it('refreshes once per cooldown however many unknown kids are sprayed, and picks up a rotated key after it', async () => {
    const proxy = await countingProxy();
    const idpPort = await freePort();
    proxy.target(idpPort);
    const idp = await startDemoIdentityProvider({
      port: idpPort,
      issuer: proxy.url,
      redirectUris: [redirectUri],
      apiAudience,
    });
    try {
      // The IdP listens on its own port; its issuer (and every metadata URL) is the proxy.
      const verifier = new IdpJwtVerifier([demoIdpSettings(idp)], { jwksCooldownSeconds: 4 });
      const token = await obtainIdpAccessToken(idp, alice, redirectUri);
      // Made first: RSA key generation is slow, and the cooldown clock starts at the first fetch.
      const { privateKey } = await generateKeyPair('RS256');
      const sprayed = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          new SignJWT(claimsOf(token))
            .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: `random-kid-${i}` })
            .sign(privateKey),
        ),
      );
      await verifier.verify(token);
      assert.equal(proxy.jwksFetches(), 1);

      for (const forged of sprayed) await refusedWith(verifier, forged, 'invalid_token', 'unknown_kid');
      await Promise.all(sprayed.map((forged) => verifier.verify(forged).catch(() => undefined)));
      assert.equal(proxy.jwksFetches(), 1, 'no refetch inside the cooldown');

      await new Promise((r) => setTimeout(r, 4100));
      await Promise.all(sprayed.map((forged) => verifier.verify(forged).catch(() => undefined)));
      assert.equal(proxy.jwksFetches(), 2, 'one refetch after the cooldown, for all of them');

      const newKid = await idp.rotateSigningKey();
      const rotated = await obtainIdpAccessToken(idp, alice, redirectUri);
      assert.equal(decodeProtectedHeader(rotated).kid, newKid);
      await new Promise((r) => setTimeout(r, 4100));
      assert.equal((await verifier.verify(rotated)).principal.subject, 'alice');
      assert.equal(proxy.jwksFetches(), 3, 'the new key was fetched once');
      assert.equal((await verifier.verify(rotated)).principal.subject, 'alice');
      assert.equal(proxy.jwksFetches(), 3);
    } finally {
      await idp.stop();
      await proxy.stop();
    }
  });
});

describe('IdpJwtVerifier when the identity provider is unavailable', () => {
  it('reports identity_provider_unavailable, not a bad token', async () => {
    const issuer = `http://127.0.0.1:${await closedPort()}`;
    const verifier = new IdpJwtVerifier([oidcSettings({ issuer, api_audiences: [apiAudience] })]);
    const token = await signedByStranger(
      { iss: issuer, sub: 'alice', aud: apiAudience, exp: Math.floor(Date.now() / 1000) + 60 },
      'k1',
    );
    await refusedWith(verifier, token, 'identity_provider_unavailable', 'unreachable');
  });
});
