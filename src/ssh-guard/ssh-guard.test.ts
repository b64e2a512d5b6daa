/**
 * `portcullis ssh-guard` end to end: a real sshd records its certificate logins through
 * contrib/ssh/portcullis-ssh-session, and the guard (the real CLI, as root) ends a live session the
 * moment its grant is revoked or its certificate reaches its end, with what the session started,
 * while keeping the host's revocation list current from the server.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningCli, runCliProcess, startCli } from '../../test-support/cli-entry.js';
import type { Harness } from '../../test-support/portcullis-harness.js';
import { startSshHostsHarness, writeCertifiedKey } from '../../test-support/ssh-fixtures.js';
import {
  sshCommand,
  sshdSkipReason,
  startSshd,
  startSshSession,
  type TestSshd,
} from '../../test-support/sshd.js';
import { waitFor } from '../../test-support/wait-for.js';

const skip = sshdSkipReason();

/** Ignores SIGHUP and forks a fresh copy of itself every 50 ms, the parent exiting: no fixed pid. */
const forkingJob = `perl -e '$SIG{HUP}="IGNORE"; while (1) { select(undef,undef,undef,0.05); exit if fork; }' portcullis-forking-job`;

/** The pids whose command line holds the forking job's marker. */
function processesMarked(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('portcullis-forking-job');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Whether a process is still running (signal 0 only asks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ssh-guard with a real sshd', { skip }, () => {
  let h: Harness;
  let sshd: TestSshd;
  let guard: RunningCli;
  let dir: string;
  let records: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-ssh-guard-'));
    const recordsParent = mkdtempSync('/run/portcullis-guard-');
    chmodSync(recordsParent, 0o755);
    records = join(recordsParent, 'sessions');
    h = await startSshHostsHarness(dir);
    const caKey = await (await fetch(`${h.url}/ssh/hosts/ca.pub`)).text();
    writeFileSync(join(dir, 'trusted-ca.pub'), caKey);
    const krl = Buffer.from(await (await fetch(`${h.url}/ssh/hosts/revoked.krl`)).arrayBuffer());
    sshd = await startSshd({
      trustedCaKey: caKey,
      trustedCaKeysFile: join(dir, 'trusted-ca.pub'),
      emptyKrl: krl,
      sessionRecords: { directory: records, user: 'nobody' },
    });
    guard = startCli(
      [
        'ssh-guard',
        '--server',
        h.url,
        '--resource',
        'hosts',
        '--ca-keys',
        join(dir, 'trusted-ca.pub'),
        '--revoked-keys',
        sshd.revokedKeysFile,
        '--records',
        records,
        '--record-user',
        'nobody',
        '--refresh',
        '1s',
        '--sshd-config',
        sshd.configFile,
      ],
      {},
    );
    await waitFor('ssh-guard started', async () =>
      guard.stdout().includes('ssh-guard: started') ? true : undefined,
    );
  });
  after(async () => {
    guard?.child.kill('SIGTERM');
    await guard?.exited;
    await sshd?.close();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
    if (records) rmSync(join(records, '..'), { recursive: true, force: true });
  });

  /** A grant of hosts/admin through the API, with its key and certificate written to files. */
  async function grantKeyFiles(name: string): Promise<{ grantId: string; key: string; cert: string }> {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'hosts',
      role: 'admin',
      duration: '30m',
      reason: 'INC-91 disk full',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const grantId = String(created.body.grant_id);
    const shown = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
    const credentials = shown.body.credentials as Record<string, string>;
    const key = join(dir, name);
    writeFileSync(key, String(credentials.private_key), { mode: 0o600 });
    writeFileSync(`${key}-cert.pub`, `${credentials.certificate}\n`);
    return { grantId, key, cert: `${key}-cert.pub` };
  }

  test('a session open when its grant is revoked ends within seconds, with what it started', async (t) => {
    const files = await grantKeyFiles('revoked');
    const session = startSshSession(
      sshd,
      files,
      'root',
      // A detached job, and one that ignores SIGHUP and moves to a new pid every 50 ms.
      `nohup sleep 3600 >/dev/null 2>&1 & echo "started $!"; ${forkingJob} >/dev/null 2>&1 & sleep 3600`,
    );
    await waitFor('the session to start', async () =>
      /started \d+/.test(session.stdout()) ? true : undefined,
    );
    const detached = Number(/started (\d+)/.exec(session.stdout())?.[1]);
    assert.ok(alive(detached));
    await waitFor('the forking job to run', async () => (processesMarked().length > 0 ? true : undefined));
    assert.ok(readdirSync(records).length > 0, 'sshd recorded the login');

    const alice = await h.login('alice');
    const revokedAt = Date.now();
    const revoked = await h.api(alice, 'POST', `/api/v1/grants/${files.grantId}/revoke`, { reason: 'done' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const ended = await session.exited;
    assert.equal(ended.code, 255, `the connection was cut: ${session.stderr()}`);
    assert.match(session.stderr(), /closed by remote host/);
    // The list is fetched every second and sessions are checked four times a second.
    assert.ok(ended.at - revokedAt < 4000, `ended ${ended.at - revokedAt} ms after the revocation`);
    await waitFor('the detached process to be killed', async () => (alive(detached) ? undefined : true));
    await waitFor('the forking job to be killed', async () =>
      processesMarked().length === 0 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(processesMarked(), [], 'nothing of the forking job came back');
    t.diagnostic(`ended ${ended.at - revokedAt} ms after the revocation`);
    await waitFor('the guard logging the end', async () =>
      guard.stdout().includes('ssh.session_ended') ? true : undefined,
    );
    const logged = guard
      .stdout()
      .split('\n')
      .filter((line) => line.includes('ssh.session_ended'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(logged.length, 1, guard.stdout());
    assert.equal(logged[0]?.reason, 'revoked');
    assert.equal(logged[0]?.account, 'root');
    assert.match(String(logged[0]?.key_id), new RegExp(`portcullis grant ${files.grantId} for `));

    // The guard installed the list sshd reads: a new login with the same certificate is refused.
    const again = sshCommand(sshd, files, 'root', 'echo in');
    assert.notEqual(again.code, 0);
    assert.equal(again.stdout, '');
    await waitFor('the session record to be cleared', async () =>
      readdirSync(records).some((file) => readFileSync(join(records, file), 'utf8').includes(' root '))
        ? undefined
        : true,
    );
  });

  test("a session ends at its certificate's end, not before", async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const validBefore = now + 4;
    const short = writeCertifiedKey(dir, 'short', {
      serial: 77n,
      keyId: 'short-lived',
      validAfter: now - 60,
      validBefore,
    });
    const session = startSshSession(sshd, short, 'root', 'echo started; sleep 3600');
    await waitFor('the session to start', async () =>
      session.stdout().includes('started') ? true : undefined,
    );
    const ended = await session.exited;
    assert.equal(ended.code, 255);
    const lateMs = ended.at - validBefore * 1000;
    assert.ok(lateMs >= 0, `ended ${-lateMs} ms before the certificate's end`);
    assert.ok(lateMs < 1500, `ended ${lateMs} ms after the certificate's end`);
    // The guard's log line travels its own pipe: it may arrive after ssh has exited.
    await waitFor('the guard logging the end', async () =>
      /"reason":"expired"[^\n]*"key_id":"short-lived"/.test(guard.stdout()) ? true : undefined,
    );
    t.diagnostic(`ended ${lateMs} ms after the certificate's end`);
  });

  test('an expired certificate offered before the one that logs in does not end the session', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = writeCertifiedKey(dir, 'old', {
      serial: 79n,
      keyId: 'left-in-the-agent',
      validAfter: now - 3600,
      validBefore: now - 10,
    });
    const current = await grantKeyFiles('current');
    const session = startSshSession(sshd, [old, current], 'root', 'echo started; sleep 3600');
    try {
      await waitFor('the session to start', async () =>
        session.stdout().includes('started') ? true : undefined,
      );
      // sshd ran the principals command for the expired certificate too, then refused it.
      assert.match(sshd.log(), /Certificate invalid: expired\s+Failed publickey[^\n]*ID left-in-the-agent/);
      const outcome = await Promise.race([
        session.exited,
        new Promise((resolve) => setTimeout(resolve, 2000, 'running')),
      ]);
      assert.equal(outcome, 'running', `the session was ended: ${session.stderr()}`);
    } finally {
      session.kill();
      await session.exited;
    }
  });

  test('no login when the session cannot be recorded', async () => {
    const files = await grantKeyFiles('unrecorded');
    chownSync(records, 0, 0);
    try {
      const refused = sshCommand(sshd, files, 'root', 'echo in');
      assert.notEqual(refused.code, 0);
      assert.equal(refused.stdout, '');
    } finally {
      chownSync(records, Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), 0);
    }
    const accepted = sshCommand(sshd, files, 'root', 'echo in');
    assert.equal(accepted.code, 0, accepted.stderr + sshd.log());
  });

  test('a record that names a process other than sshd is dropped, and nothing is signalled', async () => {
    const bystander = spawn('sleep', ['3600'], { stdio: 'ignore' });
    const pid = bystander.pid as number;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const startTime = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
      const now = Math.floor(Date.now() / 1000);
      const expired = writeCertifiedKey(dir, 'forged-record', {
        serial: 78n,
        keyId: 'forged-record',
        validAfter: now - 120,
        validBefore: now - 60,
      });
      const blob = expired.certificate.split(' ')[1];
      // A directory named like a record (the record user can make one) does not stop the passes.
      mkdirSync(join(records, '1.2.3'));
      const file = `${pid}.${startTime}.1`;
      writeFileSync(join(records, file), `portcullis-ssh-session/1 ${pid} ${startTime} root ${blob}\n`);
      await waitFor('the record to be dropped', async () =>
        readdirSync(records).includes(file) ? undefined : true,
      );
      assert.ok(alive(pid), 'the bystander was not signalled');
      assert.match(guard.stdout(), /a record names a process that is not an sshd connection/);
    } finally {
      bystander.kill('SIGKILL');
    }
  });
});

describe('ssh-guard refuses what it cannot do safely', () => {
  test('plain http off loopback, authorities it cannot read, an sshd that would not record logins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-ssh-guard-usage-'));
    try {
      writeFileSync(join(dir, 'rsa-only.pub'), 'ssh-rsa AAAAB3NzaC1yc2E= only\n');
      // A host whose sshd would let a certificate in without recording it.
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ca')]);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')]);
      const caKeys = join(dir, 'ca.pub');
      const principalsFileConfig = join(dir, 'sshd_config');
      writeFileSync(
        principalsFileConfig,
        [
          `HostKey ${join(dir, 'host')}`,
          `TrustedUserCAKeys ${caKeys}`,
          `RevokedKeys ${join(dir, 'revoked.krl')}`,
          'AuthorizedPrincipalsFile /etc/ssh/principals/%u',
          '',
        ].join('\n'),
      );
      const base = [
        'ssh-guard',
        '--resource',
        'hosts',
        '--revoked-keys',
        join(dir, 'revoked.krl'),
        '--record-user',
        'nobody',
      ];
      const cases: [string[], RegExp][] = [
        [
          [...base, '--server', 'http://access.example.com', '--ca-keys', join(dir, 'rsa-only.pub')],
          /https only/,
        ],
        [
          [...base, '--server', 'https://access.example.com', '--ca-keys', join(dir, 'missing.pub')],
          /Cannot read --ca-keys/,
        ],
        [
          [...base, '--server', 'https://access.example.com', '--ca-keys', join(dir, 'rsa-only.pub')],
          /no ssh-ed25519 key/,
        ],
        [
          [
            ...base,
            '--server',
            'https://access.example.com',
            '--ca-keys',
            join(dir, 'rsa-only.pub'),
            '--refresh',
            'soon',
          ],
          /--refresh/,
        ],
        [['ssh-guard', '--server', 'https://access.example.com', '--resource', 'hosts'], /required option/],
        [
          [
            ...base,
            '--server',
            'https://access.example.com',
            '--ca-keys',
            caKeys,
            '--sshd-config',
            principalsFileConfig,
          ],
          /AuthorizedPrincipalsCommand must be .*AuthorizedPrincipalsFile must not be set/s,
        ],
        [
          [
            ...base,
            '--server',
            'https://access.example.com',
            '--ca-keys',
            caKeys,
            '--sshd-config',
            join(dir, 'none'),
          ],
          /Cannot read sshd's settings/,
        ],
      ];
      for (const [args, message] of cases) {
        const result = await runCliProcess(args, { PORTCULLIS_HOME: dir });
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, message);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
