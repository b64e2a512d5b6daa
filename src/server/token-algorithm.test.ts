/**
 * `tokens.signing_algorithm`: ES256 instead of EdDSA, through the real server, CLI and offline
 * verifier. A change of setting takes effect at the next `keys rotate`; tokens of both algorithms
 * verify through the rotation overlap, each only under its own kind of key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { parse, stringify } from 'yaml';
import { cliArgv } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { demoApiAccessToken } from '../../test-support/requests.js';
import { startPortcullis } from './start.js';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'portcullis-token-alg-'));

async function cli(h: Harness, args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, cliArgv(args), {
    env: { ...process.env, ...h.env, PORTCULLIS_HOME: scratch },
  });
  return stdout;
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('switching an installation from EdDSA to ES256', () => {
  let h: Harness;
  let alice = '';
  before(async () => {
    h = await startHarness({ storage: 'sqlite' });
    alice = await h.login('alice');
  });
  after(() => h.close());

  test('applies at `keys rotate`; both kinds verify online and offline through the overlap', async () => {
    const before = await demoApiAccessToken(h, alice, 'before the change');
    assert.equal(decodeProtectedHeader(before).alg, 'EdDSA');

    const config = parse(readFileSync(h.configPath, 'utf8'));
    config.tokens.signing_algorithm = 'ES256';
    const es256Config = join(scratch, 'portcullis-es256.yaml');
    writeFileSync(es256Config, stringify(config));
    // A server started with the new setting keeps the active key and says why.
    const logLines: string[] = [];
    const restarted = await startPortcullis({
      configPath: es256Config,
      env: { ...process.env, ...h.env },
      listen: false,
      logLevel: 'warn',
      logDestination: { write: (line: string) => void logLines.push(line) },
    });
    try {
      assert.equal((await restarted.keys.activeSigningKey('token')).alg, 'EdDSA');
    } finally {
      await restarted.close();
    }
    const warning = logLines.map((line) => JSON.parse(line)).find((entry) => entry.configured === 'ES256');
    assert.equal(warning?.alg, 'EdDSA');
    assert.match(
      warning?.msg ?? '',
      /applies from the next rotation \(scheduled, or `portcullis keys rotate --purpose token`\)/,
    );

    const rotated = JSON.parse(await cli(h, ['keys', 'rotate', '--config', es256Config, '--json']));
    assert.equal(rotated.alg, 'ES256');
    assert.deepEqual(rotated.retired_kids, [decodeProtectedHeader(before).kid]);
    h.portcullis.keys.invalidate(); // as the 5-second refresh would

    // The running server still has EdDSA in its settings: the active key, not the setting, signs.
    const after = await demoApiAccessToken(h, alice, 'after the change');
    assert.deepEqual(decodeProtectedHeader(after), { alg: 'ES256', kid: rotated.kid, typ: 'at+jwt' });
    for (const token of [before, after]) {
      const answer = await h.api(null, 'POST', '/api/v1/introspect', { token });
      assert.equal(answer.body.active, true, JSON.stringify(answer.body));
    }
    const jwks = await h.api(null, 'GET', '/.well-known/jwks.json');
    assert.deepEqual(
      (jwks.body.keys as Record<string, unknown>[]).map(({ kid, alg, kty, crv }) => ({ kid, alg, kty, crv })),
      [
        { kid: rotated.kid, alg: 'ES256', kty: 'EC', crv: 'P-256' },
        { kid: decodeProtectedHeader(before).kid, alg: 'EdDSA', kty: 'OKP', crv: 'Ed25519' },
      ],
    );

    // A token presented under the P-256 key's kid but with an EdDSA signature is refused, not a 500.
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const confused = await new SignJWT(decodeJwt(after))
      .setProtectedHeader({ alg: 'EdDSA', kid: rotated.kid, typ: 'at+jwt' })
      .sign(privateKey);
    const refused = await h.api(null, 'POST', '/api/v1/introspect', { token: confused });
    assert.deepEqual(refused.body, { active: false });
    const asBearer = await h.api(confused, 'GET', '/api/v1/me');
    assert.equal(asBearer.status, 401, JSON.stringify(asBearer.body));

    // Offline, with the exported keys only.
    const keysFile = join(scratch, 'keys.json');
    await cli(h, ['keys', 'export', '--server', h.url, '--output', keysFile]);
    for (const token of [before, after]) {
      const verdict = JSON.parse(await cli(h, ['token', 'verify', token, '--keys', keysFile, '--json']));
      assert.equal(verdict.valid, true, JSON.stringify(verdict));
    }
    const offlineConfused = await run(
      process.execPath,
      cliArgv(['token', 'verify', confused, '--keys', keysFile, '--json']),
    ).then(
      () => assert.fail('a confused token verified offline'),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(offlineConfused.code, 10);
    assert.equal(JSON.parse(offlineConfused.stdout).genuine, false);

    const audit = await h.api(await h.login('dave'), 'GET', '/api/v1/audit/events?limit=1000');
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    const events = audit.body.events as { type: string; data: Record<string, unknown> | null }[];
    const rotation = events.find((event) => event.type === 'keys.rotated');
    assert.equal(rotation?.data?.alg, 'ES256');
  });
});

describe('an installation configured for ES256 from the start', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ storage: 'sqlite', tokenOverrides: { signing_algorithm: 'ES256' } });
  });
  after(() => h.close());

  test('makes its first token key P-256 and signs session and access tokens with ES256', async () => {
    const session = await h.login('alice');
    assert.equal(decodeProtectedHeader(session).alg, 'ES256');
    const token = await demoApiAccessToken(h, session, 'first key');
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    const jwks = await h.api(null, 'GET', '/.well-known/jwks.json');
    assert.deepEqual(
      (jwks.body.keys as Record<string, unknown>[]).map(({ alg, kty, crv }) => ({ alg, kty, crv })),
      [{ alg: 'ES256', kty: 'EC', crv: 'P-256' }],
    );
    // Audit checkpoints stay Ed25519 whatever the token setting.
    const auditKeys = await h.api(null, 'GET', '/.well-known/portcullis-audit-keys.json');
    assert.deepEqual(
      (auditKeys.body.keys as Record<string, unknown>[]).map(({ kty, crv }) => ({ kty, crv })),
      [{ kty: 'OKP', crv: 'Ed25519' }],
    );
    assert.equal((await h.api(session, 'GET', '/api/v1/me')).status, 200);
  });
});
