/**
 * The guard's readers of what a host hands it: /proc stat lines and audit sessions, the principals
 * command's and the PAM hook's records, certificates and TrustedUserCAKeys files, and downloaded
 * revocation lists (checked with the real `ssh-keygen` before they replace the installed one).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SshCertificateAuthority } from '../ssh/ssh-certificate-authority.js';
import { ed25519KeysOfAuthorizedKeys, parseUserCertificate } from '../ssh/ssh-wire.js';
import { parseProcStat, processTable, readProcessTable } from './host-processes.js';
import { parseLoginRecord } from './login-records.js';
import { RevocationListRefresher } from './revocation-list-refresh.js';
import { parseSessionRecord } from './session-records.js';

const authority = SshCertificateAuthority.fromPrivateKey(
  generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
);

describe('/proc stat lines', () => {
  test('fields are counted after the last parenthesis, whatever the name holds', () => {
    const fields = 'S 77 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0';
    assert.deepEqual(parseProcStat(`4242 (evil) S 1 1 1) ${fields}`), {
      pid: 4242,
      parentPid: 77,
      sessionId: 77,
      startTime: '123456',
      name: 'evil) S 1 1 1',
    });
    assert.equal(parseProcStat('garbage'), undefined);
    assert.equal(parseProcStat('12 (x) S 1'), undefined);
  });

  test("a connection's processes exclude its own session and other connections", () => {
    const p = (pid: number, parentPid: number, sessionId: number) => ({
      pid,
      parentPid,
      sessionId,
      startTime: '1',
      name: 'x',
    });
    const table = processTable([
      p(1, 0, 1),
      p(10, 1, 10),
      p(11, 10, 10),
      p(12, 11, 12),
      p(13, 1, 12),
      p(20, 1, 20),
    ]);
    const root = table.find(10, '1');
    assert.ok(root);
    assert.deepEqual(
      table
        .startedBy(root)
        .map((x) => x.pid)
        .sort(),
      [11, 12, 13],
    );
    assert.equal(table.find(10, '2'), undefined, 'a reused pid is another process');
  });
});

describe('session records', () => {
  test('one line with the pid, start time, account and certificate', () => {
    const record = parseSessionRecord('9.8.7', 'portcullis-ssh-session/1 9 8 ops AAAA\n', 5);
    assert.deepEqual(record, {
      file: '9.8.7',
      pid: 9,
      startTime: '8',
      account: 'ops',
      certificate: Buffer.from('AAAA', 'base64'),
      recordedAt: 5,
    });
    for (const bad of [
      'portcullis-ssh-session/2 9 8 ops AAAA',
      'portcullis-ssh-session/1 0 8 ops AAAA',
      'portcullis-ssh-session/1 9 8 o;ps AAAA',
      'portcullis-ssh-session/1 9 8 ops AA AA',
      'portcullis-ssh-session/1 9 8 ops AAAA\nportcullis-ssh-session/1 9 8 ops AAAA',
    ])
      assert.equal(parseSessionRecord('f', bad, 5), undefined, bad);
  });

  test('login records: the connection, its listener, the account, the certificate and the audit session', () => {
    const boot = 'c0ffee00-0000-4000-8000-000000000001';
    assert.deepEqual(parseLoginRecord('9.8', `portcullis-ssh-login/2 9 8 42 3 2 ${boot} ops AAAA\n`, 5), {
      file: '9.8',
      pid: 9,
      startTime: '8',
      loginSession: 42,
      listener: { pid: 3, startTime: '2' },
      bootId: boot,
      account: 'ops',
      certificates: [Buffer.from('AAAA', 'base64')],
      recordedAt: 5,
    });
    assert.deepEqual(
      parseLoginRecord('9.8', `portcullis-ssh-login/3 9 8 42 3 2 ${boot} ops AAAA,BBBB\n`, 5)?.certificates,
      [Buffer.from('AAAA', 'base64'), Buffer.from('BBBB', 'base64')],
    );
    for (const bad of [
      `portcullis-ssh-login/2 9 8 42 3 2 ${boot} ops AAAA,BBBB`, // version 2 held one certificate
      `portcullis-ssh-login/3 9 8 42 3 2 ${boot} ops AAAA,BBBB,CCCC,DDDD,EEEE`, // at most four
      `portcullis-ssh-login/3 9 8 42 3 2 ${boot} ops AAAA,`,
      `portcullis-ssh-login/2 9 8 4294967295 3 2 ${boot} ops AAAA`, // unset: no login of its own
      `portcullis-ssh-login/2 9 8 -1 3 2 ${boot} ops AAAA`,
      `portcullis-ssh-login/2 0 8 42 3 2 ${boot} ops AAAA`,
      `portcullis-ssh-login/2 9 8 42 3 2 ${boot} o;ps AAAA`,
      `portcullis-ssh-login/2 9 8 42 3 2 ${boot} ops AA AA`,
      'portcullis-ssh-login/2 9 8 42 3 2 ops AAAA', // no boot id
      'portcullis-ssh-login/1 9 8 42',
      `portcullis-ssh-login/2 9 8 42 3 2 ${boot} ops AAAA\nportcullis-ssh-login/2 9 8 43 3 2 ${boot} ops AAAA`,
    ])
      assert.equal(parseLoginRecord('f', bad, 5), undefined, bad);
  });
});

describe('audit sessions in /proc', () => {
  test('read per process, unset ones as none', () => {
    const proc = mkdtempSync(join(tmpdir(), 'pc-proc-'));
    try {
      for (const [pid, sessionid] of [
        [10, '7'],
        [11, '4294967295'],
        [12, '7'],
      ] as const) {
        mkdirSync(join(proc, String(pid)));
        writeFileSync(
          join(proc, String(pid), 'stat'),
          `${pid} (sleep) S 1 ${pid} ${pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${pid}00 0 0\n`,
        );
        writeFileSync(join(proc, String(pid), 'sessionid'), sessionid);
      }
      const table = readProcessTable(proc);
      assert.deepEqual(
        table
          .inLoginSession(7)
          .map((p) => p.pid)
          .sort(),
        [10, 12],
      );
      const unset = table.byPid(11);
      assert.ok(unset);
      assert.equal(table.loginSessionOf(unset), undefined);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});

describe('certificates and authority keys', () => {
  test('a certificate reads back as issued, and its signature is the authority’s', () => {
    const issued = authority.issueUserCertificate({
      serial: 9_007_199_254_740_993n,
      keyId: 'portcullis grant g for demo:alice',
      principals: ['ops', 'deploy'],
      validAfter: 1_700_000_000,
      validBefore: 1_700_003_600,
      criticalOptions: { 'source-address': '10.0.0.0/8' },
      extensions: { 'permit-pty': '' },
      comment: 'c',
    });
    const blob = Buffer.from(issued.certificate.split(' ')[1] as string, 'base64');
    const parsed = parseUserCertificate(blob);
    assert.ok(parsed);
    assert.equal(parsed.serial, 9_007_199_254_740_993n);
    assert.deepEqual(parsed.principals, ['ops', 'deploy']);
    assert.equal(parsed.keyId, 'portcullis grant g for demo:alice');
    assert.equal(parsed.validBefore, 1_700_003_600);
    assert.ok(parsed.caPublicKey.equals(authority.publicKey));
    const caKey = {
      key: { kty: 'OKP', crv: 'Ed25519', x: authority.publicKey.toString('base64url') },
      format: 'jwk',
    };
    assert.ok(verify(null, parsed.signedBody, caKey as never, parsed.signature));
    assert.throws(() => parseUserCertificate(blob.subarray(0, blob.length - 3)), /truncated/);
    assert.throws(() => parseUserCertificate(Buffer.concat([blob, Buffer.from([0])])), /bytes after/);
    const plainKey = Buffer.from(authority.publicKeyLine('x').split(' ')[1] as string, 'base64');
    assert.equal(parseUserCertificate(plainKey), undefined, 'a plain key is not a certificate');
  });

  test('a TrustedUserCAKeys file gives its Ed25519 keys and counts the others', () => {
    const text = `# Portcullis\n${authority.publicKeyLine('a')}\n\nssh-rsa AAAAB3NzaC1yc2E= other\n`;
    const { keys, others } = ed25519KeysOfAuthorizedKeys(text);
    assert.equal(keys.length, 1);
    assert.ok(keys[0]?.equals(authority.publicKey));
    assert.equal(others, 1);
    assert.throws(() => ed25519KeysOfAuthorizedKeys('ssh-ed25519 AAAAB3NzaC1yc2E='), TypeError);
  });
});

describe('revocation list refresh', () => {
  test('installs a readable list, skips an unchanged one, and keeps it when a download is bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-krl-refresh-'));
    try {
      const file = join(dir, 'revoked.krl');
      let answer: Response = new Response(new Uint8Array(authority.revocationList([7n], 1_000, 'one')));
      const refresher = new RevocationListRefresher({
        url: 'https://x/ssh/h/revoked.krl',
        file,
        fetch: async () => answer,
      });
      assert.equal(await refresher.refresh(), 'changed');
      const installed = readFileSync(file);
      assert.equal(statSync(file).mode & 0o777, 0o644);

      answer = new Response(new Uint8Array(authority.revocationList([7n], 2_000, 'one')));
      assert.equal(await refresher.refresh(), 'unchanged', 'only its version and time differ');

      const truncated = authority.revocationList([7n, 8n], 3_000, 'two').subarray(0, 60);
      for (const bad of [
        new Response('<html>maintenance</html>'),
        new Response(new Uint8Array(truncated)),
        new Response('', { status: 503 }),
      ]) {
        answer = bad;
        await assert.rejects(refresher.refresh());
        assert.ok(readFileSync(file).equals(installed), 'the installed list is kept');
      }

      answer = new Response(new Uint8Array(authority.revocationList([7n, 8n], 4_000, 'two')));
      assert.equal(await refresher.refresh(), 'changed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
