/**
 * Offline verification (#9): with the public keys exported once (`keys export`) and no server, a
 * custodian checks that a Portcullis token and an audit export are genuine. The CLI runs as a
 * child process; the server is shut down before the offline checks.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

const main = join(import.meta.dirname, 'main.ts');
const evidence = mkdtempSync(join(tmpdir(), 'portcullis-evidence-'));
const keysFile = join(evidence, 'portcullis-keys.json');
let h: Harness | null = null;
let server = '';
let accessToken = '';
let sessionToken = '';

function portcullis(
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', main, ...args],
      { env: { ...process.env, PORTCULLIS_HOME: evidence } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
  server = h.url;
  sessionToken = await h.login('alice');
  const created = await h.api(sessionToken, 'POST', '/api/v1/requests', {
    resource: 'demo-api',
    role: 'reader',
    duration: '30m',
    reason: 'emergency read of orders',
  });
  const issued = await h.api(sessionToken, 'POST', `/api/v1/grants/${created.body.grant_id as string}/token`);
  accessToken = issued.body.access_token as string;
  const run = await portcullis(['keys', 'export', '--server', server, '--output', keysFile]);
  assert.equal(run.code, 0, run.stderr);
  // The audit export, fetched by an auditor (dave is in admins).
  const dave = await h.login('dave');
  const response = await fetch(`${server}/api/v1/audit/export`, {
    headers: { authorization: `Bearer ${dave}` },
  });
  assert.equal(response.status, 200);
  writeFileSync(join(evidence, 'audit.jsonl'), await response.text());
  // No network from here on: the server is gone.
  await h.close();
  h = null;
});
after(async () => {
  await h?.close();
  rmSync(evidence, { recursive: true, force: true });
});

describe('portcullis keys export', () => {
  it('writes token and audit keys apart, with the issuer', () => {
    const bundle = JSON.parse(readFileSync(keysFile, 'utf8'));
    assert.equal(bundle.format, 'portcullis-public-keys/1');
    assert.equal(bundle.issuer, server);
    assert.ok(
      bundle.token_keys.keys.some((k: { kid: string }) => k.kid === decodeProtectedHeader(accessToken).kid),
    );
    assert.equal(bundle.audit_keys.keys.length, 1);
    assert.notEqual(bundle.audit_keys.keys[0].kid, bundle.token_keys.keys[0].kid);
  });
});

describe('portcullis token verify (offline)', () => {
  it('a genuine access token: exit 0 and its claims', async () => {
    const run = await portcullis(['token', 'verify', accessToken, '--keys', keysFile]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const claims = decodeJwt(accessToken);
    assert.match(run.stdout, /^VALID: Portcullis access token, signed by key /);
    assert.match(run.stdout, new RegExp(`grant {6}${claims.grant_id as string}`));
    assert.match(run.stdout, /resource {3}demo-api/);
    assert.match(run.stdout, /role {7}reader/);
    assert.match(run.stdout, new RegExp(`issuer {5}${server.replace(/\./g, '\\.')}`));
  });

  it('reads the token from stdin with -, and prints JSON with --json; session tokens too', async () => {
    const run = await portcullis(['token', 'verify', '-', '--keys', keysFile, '--json'], `${sessionToken}\n`);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.valid, true);
    assert.equal(result.kind, 'session');
    assert.equal(result.claims.sub, 'demo:alice');
    assert.equal(result.checked.issuer, server);
  });

  it('a tampered token: exit 10, not genuine, its claims not shown', async () => {
    const [header, payload, signature] = accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, role: 'operator' })).toString('base64url');
    const run = await portcullis(['token', 'verify', `${header}.${forged}.${signature}`, '--keys', keysFile]);
    assert.equal(run.code, 10);
    assert.match(run.stdout, /^INVALID \(bad_signature\)/);
    assert.doesNotMatch(run.stdout, /operator/);
  });

  it('genuine but not valid: expired, not yet valid, another issuer or audience (exit 10)', async () => {
    const exp = decodeJwt(accessToken).exp ?? 0;
    const cases: [string[], RegExp][] = [
      [['--at', new Date((exp + 1) * 1000).toISOString()], /^NOT VALID \(expired\)/],
      [['--at', '2020-01-01T00:00:00Z'], /^NOT VALID \(not_yet_valid\)/],
      [['--issuer', 'https://other.example.com'], /^NOT VALID \(wrong_issuer\)/],
      [['--audience', 'billing'], /^NOT VALID \(wrong_audience\)/],
    ];
    for (const [flags, expected] of cases) {
      const run = await portcullis(['token', 'verify', accessToken, '--keys', keysFile, ...flags]);
      assert.equal(run.code, 10, flags.join(' '));
      assert.match(run.stdout, expected);
      assert.match(run.stdout, /The signature is genuine/);
    }
    // Within its window, the same token was valid then.
    const iat = decodeJwt(accessToken).iat ?? 0;
    const then = await portcullis([
      'token',
      'verify',
      accessToken,
      '--keys',
      keysFile,
      '--at',
      new Date((iat + 60) * 1000).toISOString(),
    ]);
    assert.equal(then.code, 0, then.stdout);
  });

  it('keys of another installation, the audit keys, or garbage: not genuine; bad key files are usage errors', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const kid = decodeProtectedHeader(accessToken).kid;
    writeFileSync(join(evidence, 'other.json'), JSON.stringify({ keys: [{ ...other, kid }] }));
    let run = await portcullis([
      'token',
      'verify',
      accessToken,
      '--keys',
      join(evidence, 'other.json'),
      '--issuer',
      server,
    ]);
    assert.equal(run.code, 10);
    assert.match(run.stdout, /INVALID \(bad_signature\)/);

    // The audit keys never vouch for a token, even from the same server.
    const bundle = JSON.parse(readFileSync(keysFile, 'utf8'));
    writeFileSync(
      join(evidence, 'audit-only.json'),
      JSON.stringify({ ...bundle, token_keys: bundle.audit_keys }),
    );
    run = await portcullis(['token', 'verify', accessToken, '--keys', join(evidence, 'audit-only.json')]);
    assert.equal(run.code, 10);
    assert.match(run.stdout, /INVALID \(unknown_key\)/);

    run = await portcullis(['token', 'verify', 'not-a-token', '--keys', keysFile]);
    assert.equal(run.code, 10);
    assert.match(run.stdout, /INVALID \(malformed\)/);

    run = await portcullis(['token', 'verify', accessToken, '--keys', join(evidence, 'missing.json')]);
    assert.equal(run.code, 2);
    const jwks = join(evidence, 'jwks.json');
    writeFileSync(jwks, JSON.stringify(bundle.token_keys));
    run = await portcullis(['token', 'verify', accessToken, '--keys', jwks]);
    assert.equal(run.code, 2, 'a bare JWKS does not name the issuer');
    assert.match(run.stderr, /--issuer/);
    run = await portcullis(['token', 'verify', accessToken, '--keys', jwks, '--issuer', server]);
    assert.equal(run.code, 0, run.stdout);
  });
});

describe('portcullis audit verify with the same file (offline)', () => {
  it('uses the audit keys of the bundle, and only those', async () => {
    const run = await portcullis(['audit', 'verify', join(evidence, 'audit.jsonl'), '--key', keysFile]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^OK: /);
    const bundle = JSON.parse(readFileSync(keysFile, 'utf8'));
    const swapped = join(evidence, 'swapped.json');
    writeFileSync(swapped, JSON.stringify({ ...bundle, audit_keys: bundle.token_keys }));
    copyFileSync(join(evidence, 'audit.jsonl'), join(evidence, 'audit-copy.jsonl'));
    const refused = await portcullis([
      'audit',
      'verify',
      join(evidence, 'audit-copy.jsonl'),
      '--key',
      swapped,
    ]);
    assert.equal(refused.code, 10, 'token keys never vouch for audit checkpoints');
  });
});
