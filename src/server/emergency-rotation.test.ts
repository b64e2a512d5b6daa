/**
 * Break-glass scenario (c): Portcullis's token-signing key is lost or compromised. The operator
 * runs `keys emergency-rotate` with the offline recovery key, against a running server: every old
 * token (access and session) is refused at once, new ones verify, and a wrong recovery key changes
 * nothing. The CLI runs as a real child process on the server's database.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { compactVerify, decodeProtectedHeader, importSPKI } from 'jose';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { waitFor } from '../../test-support/wait-for.js';
import type { Store } from '../app/ports.js';
import { openStore } from '../storage/open-store.js';

const main = join(import.meta.dirname, '..', 'cli', 'main.ts');

let h: Harness;
let store: Store;

before(async () => {
  h = await startHarness({ storage: 'sqlite' });
  store = await openStore(h.storageUrl);
});
after(async () => {
  await store?.close();
  await h?.close();
});

async function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', main, ...args],
      {
        env: { ...process.env, ...h.env, PORTCULLIS_CONFIG: h.configPath },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function accessToken(session: string): Promise<string> {
  const created = await h.api(session, 'POST', '/api/v1/requests', {
    resource: 'demo-api',
    role: 'reader',
    duration: '30m',
    reason: 'orders report',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const issued = await h.api(session, 'POST', `/api/v1/grants/${created.body.grant_id as string}/token`);
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  return issued.body.access_token as string;
}

const introspect = async (token: string) => (await h.api(null, 'POST', '/api/v1/introspect', { token })).body;
const jwksKids = async () =>
  ((await h.api(null, 'GET', '/.well-known/jwks.json')).body.keys as { kid: string }[]).map((k) => k.kid);

describe('keys emergency-rotate (token key lost or compromised)', () => {
  it('retires every token key at once on proof of the recovery key; a wrong key changes nothing', async () => {
    const session = await h.login('alice');
    const oldToken = await accessToken(session);
    assert.equal((await introspect(oldToken)).active, true);
    const oldKids = await jwksKids();
    const recoveryFile = join(h.dir, 'recovery.pem');

    // Without a registered recovery key there is no emergency path (exit 6), and nothing changes.
    let run = await portcullis(['keys', 'emergency-rotate', '--recovery-key', recoveryFile, '--reason', 'x']);
    assert.equal(run.code, 2, run.stderr); // the file does not exist yet
    writeFileSync(
      join(h.dir, 'unregistered.pem'),
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
    );
    run = await portcullis([
      'keys',
      'emergency-rotate',
      '--recovery-key',
      join(h.dir, 'unregistered.pem'),
      '--reason',
      'x',
    ]);
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, /error\[no_recovery_key\]/);

    // Setup: the recovery key pair; the private half to a file once, the public half in the database.
    run = await portcullis(['keys', 'recovery', 'init', '--out', recoveryFile, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const recoveryKid = (JSON.parse(run.stdout) as { kid: string }).kid;
    assert.equal(statSync(recoveryFile).mode & 0o777, 0o600);
    const [row] = await store.keys.list('recovery');
    assert.equal(row?.kid, recoveryKid);
    assert.equal(row?.sealedPrivateJwk, '', 'no private half is stored');
    assert.ok(!(await jwksKids()).includes(recoveryKid), 'the recovery key is never published');
    run = await portcullis(['keys', 'recovery', 'init', '--out', join(h.dir, 'second.pem')]);
    assert.equal(run.code, 6, 'a second init without --replace is refused');
    run = await portcullis(['keys', 'recovery', 'init', '--out', recoveryFile, '--replace']);
    assert.equal(run.code, 2, 'an existing key file is never overwritten');
    assert.equal((await store.keys.list('recovery')).length, 1);

    // A recovery key that is not the registered one: refused (exit 4), nothing written.
    run = await portcullis([
      'keys',
      'emergency-rotate',
      '--recovery-key',
      join(h.dir, 'unregistered.pem'),
      '--reason',
      'leak',
    ]);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /error\[recovery_key_refused\]/);
    // Not an Ed25519 key at all: a usage error.
    writeFileSync(
      join(h.dir, 'p256.pem'),
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }),
    );
    run = await portcullis([
      'keys',
      'emergency-rotate',
      '--recovery-key',
      join(h.dir, 'p256.pem'),
      '--reason',
      'leak',
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.deepEqual(await jwksKids(), oldKids);
    assert.equal((await introspect(oldToken)).active, true);

    // The real thing.
    run = await portcullis([
      'keys',
      'emergency-rotate',
      '--recovery-key',
      recoveryFile,
      '--reason',
      'INC-7 key leaked',
      '--json',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as {
      kid: string;
      retired_kids: string[];
      recovery_kid: string;
      statement: string;
    };
    assert.deepEqual(result.retired_kids.sort(), [...oldKids].sort());
    assert.equal(result.recovery_kid, recoveryKid);

    // Running servers refuse old tokens once their key view refreshes (≤ 5 s), with no overlap.
    await waitFor(
      'old access token inactive',
      async () => ((await introspect(oldToken)).active === false ? true : undefined),
      10_000,
    );
    assert.deepEqual(await introspect(oldToken), { active: false });
    const me = await h.api(session, 'GET', '/api/v1/me');
    assert.equal(me.status, 401, 'the old session token is refused too');
    assert.deepEqual(await jwksKids(), [result.kid]);

    // New sign-ins and tokens use the new key and verify.
    const newSession = await h.login('alice');
    assert.equal((await h.api(newSession, 'GET', '/api/v1/me')).status, 200);
    const newToken = await accessToken(newSession);
    assert.equal(decodeProtectedHeader(newToken).kid, result.kid);
    assert.equal((await introspect(newToken)).active, true);

    // The audit log holds a high-severity event with the statement, verifiable with the recovery public key.
    const events = await store.auditLog.read(0, 1000);
    const event = events.find((e) => e.type === 'keys.emergency_rotated');
    assert.ok(event);
    assert.equal(event.severity, 'high');
    assert.equal(event.reason, 'INC-7 key leaked');
    assert.equal(event.data?.statement, result.statement);
    assert.ok(events.some((e) => e.type === 'keys.recovery_key_set' && e.severity === 'high'));
    const { createPublicKey } = await import('node:crypto');
    const spki = createPublicKey(readFileSync(recoveryFile, 'utf8'))
      .export({ format: 'pem', type: 'spki' })
      .toString();
    const verified = await compactVerify(result.statement, await importSPKI(spki, 'EdDSA'));
    const claims = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
    assert.equal(claims.install, result.kid);
    assert.deepEqual((claims.retire as string[]).sort(), [...oldKids].sort());
    assert.equal(claims.reason, 'INC-7 key leaked');
  });
});
