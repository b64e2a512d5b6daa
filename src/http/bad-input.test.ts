/**
 * Bad input through the real HTTP API: each answers a clear 4xx problem with a stable code,
 * changes no state, and security events leave an audit entry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { obtainIdpAccessToken } from '../../test-support/oidc-fixtures.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { TokenService } from '../tokens/token-service.js';

let h: Harness;
const tokens: Record<string, string> = {};

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
  for (const user of ['alice', 'bob', 'dave']) tokens[user] = await h.login(user);
});
after(async () => {
  await h?.close();
});

async function stateSnapshot() {
  const store = h.portcullis.store;
  return {
    requests: await store.requests.countByState(),
    grants: await store.grants.countByStatus(),
  };
}

async function auditTypesSince(seq: number): Promise<string[]> {
  return (await h.portcullis.store.auditLog.read(seq, 1000)).map((e) => e.type);
}

function assertProblem(
  response: { status: number; body: Record<string, unknown>; contentType: string },
  status: number,
  code: string,
) {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.code, code, JSON.stringify(response.body));
  assert.match(response.contentType, /^application\/problem\+json/);
  assert.equal(typeof response.body.detail, 'string');
  assert.equal(response.body.status, status);
}

describe('requests that must be refused without changing anything', () => {
  const cases: { name: string; body: unknown; status: number; code: string; raw?: boolean }[] = [
    {
      name: 'malformed JSON',
      body: '{"resource": "demo-api", ',
      status: 400,
      code: 'malformed_json',
      raw: true,
    },
    {
      name: 'unknown resource',
      body: { resource: 'nope', role: 'reader', duration: '1h', reason: 'x' },
      status: 404,
      code: 'unknown_resource',
    },
    {
      name: 'unknown role',
      body: { resource: 'demo-api', role: 'root', duration: '1h', reason: 'x' },
      status: 404,
      code: 'unknown_role',
    },
    {
      name: 'zero duration',
      body: { resource: 'demo-api', role: 'reader', duration: 0, reason: 'x' },
      status: 400,
      code: 'invalid_duration',
    },
    {
      name: 'negative duration',
      body: { resource: 'demo-api', role: 'reader', duration: -60, reason: 'x' },
      status: 400,
      code: 'invalid_duration',
    },
    {
      name: 'fractional duration',
      body: { resource: 'demo-api', role: 'reader', duration: 1.5, reason: 'x' },
      status: 400,
      code: 'invalid_duration',
    },
    {
      name: 'huge duration',
      body: { resource: 'demo-api', role: 'reader', duration: 1e300, reason: 'x' },
      status: 400,
      code: 'invalid_duration',
    },
    {
      name: 'duration above the policy maximum',
      body: { resource: 'demo-api', role: 'reader', duration: '9h', reason: 'x' },
      status: 403,
      code: 'policy_denied',
    },
    {
      name: 'duration above the absolute ceiling',
      body: { resource: 'demo-api', role: 'reader', duration: '30d', reason: 'x' },
      status: 403,
      code: 'policy_denied',
    },
    {
      name: 'nonsense duration',
      body: { resource: 'demo-api', role: 'reader', duration: 'forever', reason: 'x' },
      status: 400,
      code: 'invalid_duration',
    },
    {
      name: 'unknown field',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', admin: true },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'terminal escape sequence in the reason',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', reason: 'ok\u001b[2J\u001b[31mAPPROVED' },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'bidirectional override in the reason',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', reason: 'abc\u202Efed' },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'lone surrogate in the reason',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', reason: 'fix \uD800 now' },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'lone low surrogate in the ticket',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', reason: 'x', ticket: 'OPS-\uDC00' },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'reason too long',
      body: { resource: 'demo-api', role: 'reader', duration: '1h', reason: 'x'.repeat(1001) },
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'not allowed by any policy',
      body: { resource: 'demo-api', role: 'operator', duration: '1h', reason: 'x' },
      status: 403,
      code: 'policy_denied',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = await stateSnapshot();
      const response = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', c.body);
      assertProblem(response, c.status, c.code);
      assert.deepEqual(await stateSnapshot(), before);
    });
  }

  test('a policy denial names why and is audited with the deciding policies', async () => {
    const head = (await h.portcullis.store.auditLog.head()).seq;
    const response = await h.api(tokens.bob ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '1h',
      reason: 'sre wants it',
    });
    assertProblem(response, 403, 'policy_denied');
    assert.match(response.body.detail as string, /no policy permits|not permitted|no permit/i);
    assert.deepEqual(await auditTypesSince(head), ['request.denied_by_policy']);
  });

  test('a forbid rule wins over a permit and its id is reported', async () => {
    const response = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '1h',
      reason: 'x',
    });
    // demo-api is low sensitivity: the forbid on critical resources does not apply.
    assert.equal(response.status, 201);
  });

  test('hostile but printable strings are stored verbatim and returned as data', async () => {
    const reason = `'; drop table access_requests; -- <script>alert(1)</script> "quotes" ünïcødé 🚪`;
    const response = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '5m',
      reason,
      ticket: '<img src=x onerror=alert(1)>',
    });
    assert.equal(response.status, 201);
    assert.equal(response.body.reason, reason);
    const fetched = await h.api(tokens.alice ?? '', 'GET', `/api/v1/requests/${response.body.id}`);
    assert.equal(fetched.body.reason, reason);
  });

  test('a body over the size limit is refused', async () => {
    const response = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      reason: 'x'.repeat(70_000),
    });
    assertProblem(response, 413, 'payload_too_large');
  });

  test('an unsupported content type is refused', async () => {
    const response = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', 'resource=demo-api', {
      'content-type': 'application/xml',
    });
    assertProblem(response, 415, 'unsupported_media_type');
  });

  test('an unknown route is a problem too', async () => {
    assertProblem(await h.api(tokens.alice ?? '', 'GET', '/api/v1/nothing-here'), 404, 'not_found');
  });
});

describe('reviews that must be refused', () => {
  let requestId: string;
  before(async () => {
    const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/grants', {});
    void created;
    const request = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '5m',
      reason: 'for review tests',
    });
    requestId = request.body.id as string;
  });

  test('approval of a request that is no longer pending', async () => {
    const before = await stateSnapshot();
    const response = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${requestId}/approve`, {});
    assertProblem(response, 409, 'invalid_transition');
    assert.deepEqual(await stateSnapshot(), before);
  });

  test('review of a request that does not exist', async () => {
    assertProblem(
      await h.api(tokens.bob ?? '', 'POST', '/api/v1/requests/00000000-0000-0000-0000-000000000000/deny', {
        reason: 'x',
      }),
      404,
      'not_found',
    );
  });

  test('an id with odd characters is refused by the schema', async () => {
    assertProblem(
      await h.api(tokens.bob ?? '', 'GET', '/api/v1/requests/..%2F..%2Fetc'),
      400,
      'validation_failed',
    );
  });
});

describe('credentials that must be refused, each leaving a security event', () => {
  async function expectRejected(token: string, reason: RegExp) {
    const head = (await h.portcullis.store.auditLog.head()).seq;
    const response = await h.api(token, 'GET', '/api/v1/me');
    assert.equal(response.status, 401, JSON.stringify(response.body));
    assert.ok(['invalid_token', 'unauthenticated'].includes(response.body.code as string));
    const events = await h.portcullis.store.auditLog.read(head, 10);
    const rejection = events.find((e) => e.type === 'auth.token_rejected');
    assert.ok(rejection, 'audited');
    assert.match(String(rejection.reason), reason);
  }

  test('no token at all', async () => {
    assertProblem(await h.api(null, 'GET', '/api/v1/me'), 401, 'unauthenticated');
  });

  test('alg: none', async () => {
    const token = new UnsecuredJWT({ sub: 'demo:alice', aud: 'portcullis:session' })
      .setIssuer(h.url)
      .setExpirationTime('5m')
      .encode();
    await expectRejected(token, /alg|malformed|signature/);
  });

  test('forged: signed by another key with a published kid', async () => {
    const jwks = await h.api(null, 'GET', '/.well-known/jwks.json');
    const kid = (jwks.body.keys as { kid: string }[])[0]?.kid ?? '';
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await new SignJWT({ groups: ['admins'] })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'portcullis-session+jwt' })
      .setIssuer(h.url)
      .setAudience('portcullis:session')
      .setSubject('demo:dave')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    await expectRejected(token, /signature/);
  });

  test('unknown kid', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: 'no-such-key', typ: 'portcullis-session+jwt' })
      .setIssuer(h.url)
      .setAudience('portcullis:session')
      .setSubject('demo:dave')
      .setExpirationTime('5m')
      .sign(privateKey);
    await expectRejected(token, /kid/);
  });

  test('expired session token', async () => {
    const principal = await h.portcullis.store.principals.get('demo:alice');
    assert.ok(principal);
    const { token } = await h.portcullis.tokens.issueSessionToken(principal, Date.now() - 7_200_000, 60);
    await expectRejected(token, /expired/);
  });

  test('wrong audience: an access token is not a session', async () => {
    const request = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '5m',
      reason: 'audience test',
    });
    const issued = await h.api(tokens.alice ?? '', 'POST', `/api/v1/grants/${request.body.grant_id}/token`);
    await expectRejected(issued.body.access_token as string, /audience|type/);
  });

  test('wrong issuer, signed with the real key', async () => {
    const other = new TokenService({
      keys: h.portcullis.keys,
      issuer: 'https://not-portcullis.example',
      audience: 'portcullis',
      accessTokenTtlSeconds: 60,
      sessionTtlSeconds: 60,
    });
    const principal = await h.portcullis.store.principals.get('demo:dave');
    assert.ok(principal);
    const { token } = await other.issueSessionToken(principal, Date.now(), 60);
    await expectRejected(token, /issuer/);
  });

  test('a token from an issuer that is not configured', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ groups: ['admins'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('https://evil.example')
      .setAudience('urn:portcullis:api')
      .setSubject('mallory')
      .setExpirationTime('5m')
      .sign(privateKey);
    await expectRejected(token, /issuer/);
  });

  test('garbage instead of a token', async () => {
    await expectRejected('not.a.jwt', /malformed|invalid/);
  });
});

describe('IdP-issued JWTs as bearer tokens', () => {
  test('a real access token from the configured IdP is accepted, with its groups mapped', async () => {
    const token = await obtainIdpAccessToken(
      h.idp,
      { username: 'bob', password: 'bob-demo-password' },
      `${h.url}/auth/oidc/demo/callback`,
    );
    const me = await h.api(token, 'GET', '/api/v1/me');
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.id, 'demo:bob');
    assert.deepEqual(me.body.groups, ['sre']);
  });
});
