/**
 * `portcullis ssh-guard` end to end: a real sshd (with PAM, in a mount namespace of its own)
 * records its certificate logins through contrib/ssh/portcullis-ssh-session and
 * contrib/ssh/portcullis-ssh-login, and the guard (the real CLI, as root) ends a live session the
 * moment its grant is revoked or its certificate reaches its end, with what the session started
 * and what its login left running after it closed, reports it all into the audit log, and keeps
 * the host's revocation list current from the server.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningCli } from '../../test-support/cli-entry.js';
import {
  type GuardedSshHost,
  processesMarked,
  startGuardedSshHost,
} from '../../test-support/guarded-ssh-host.js';
import type { Harness } from '../../test-support/portcullis-harness.js';
import { writeCertifiedKey } from '../../test-support/ssh-fixtures.js';
import { sshCommand, sshdSkipReason, startSshSession, type TestSshd } from '../../test-support/sshd.js';
import { waitFor } from '../../test-support/wait-for.js';

const skip = sshdSkipReason();
/** Ignores SIGHUP and forks a fresh copy of itself every 50 ms, the parent exiting: no fixed pid. */
const forkingJobMarker = 'portcullis-forking-job';
const forkingJob = `perl -e '$SIG{HUP}="IGNORE"; while (1) { select(undef,undef,undef,0.05); exit if fork; }' ${forkingJobMarker}`;

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
  let host: GuardedSshHost;
  let h: Harness;
  let sshd: TestSshd;
  let guard: RunningCli;
  let dir: string;
  let records: string;
  let logins: string;

  before(async () => {
    host = await startGuardedSshHost();
    ({ h, sshd, guard, dir, records, logins } = host);
    // This machine runs no logind, and the hook is given no cgroup directory here.
    await waitFor('the warning about control groups', async () =>
      /logins have no control group of their own/.test(guard.stdout()) ? true : undefined,
    );
  });
  after(async () => {
    await host?.close();
  });
  const grantKeyFiles = (name: string) => host.grantKeyFiles(name);
  const sessionEvents = (grantId: string) => host.sessionEvents(grantId);

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
    await waitFor('the forking job to run', async () =>
      processesMarked(forkingJobMarker).length > 0 ? true : undefined,
    );
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
      processesMarked(forkingJobMarker).length === 0 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(processesMarked(forkingJobMarker), [], 'nothing of the forking job came back');
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
    // The guard reported the login and its end into the audit log, as the grant's events.
    await waitFor('the reports in the audit log', async () =>
      (await sessionEvents(files.grantId)).length === 2 ? true : undefined,
    );
    assert.deepEqual(await sessionEvents(files.grantId), [
      ['ssh.session_started', null, 'guarded-host', null],
      ['ssh.session_ended', 'revoked', 'guarded-host', true],
    ]);

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
    // Room for a slow login on a busy machine: the session must start before the certificate ends.
    const validBefore = now + 8;
    const short = writeCertifiedKey(dir, 'short', {
      serial: 77n,
      keyId: 'short-lived',
      validAfter: now - 60,
      validBefore,
    });
    const session = startSshSession(sshd, short, 'root', 'echo started; sleep 3600');
    await waitFor(
      'the session to start',
      async () => (session.stdout().includes('started') ? true : undefined),
      7000,
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
    const session = startSshSession(
      sshd,
      [old, current],
      'root',
      "echo started; exec perl -e 'sleep 3600' portcullis-client-gone",
    );
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
    // Without a terminal, sshd leaves a command running when its client goes away: its login
    // still holds the grant, and ends with it.
    assert.equal(processesMarked('portcullis-client-gone').length, 1);
    const alice = await h.login('alice');
    await h.api(alice, 'POST', `/api/v1/grants/${current.grantId}/revoke`, { reason: 'done' });
    await waitFor('the command to be ended', async () =>
      processesMarked('portcullis-client-gone').length === 0 ? true : undefined,
    );
  });

  test('what a login leaves running after it logged out ends with the grant: at revocation, and at the end', async (t) => {
    // setsid and nohup leave the connection's process tree and sessions; the login's audit
    // session (pam_loginuid) is all that still ties these jobs to the certificate.
    // (A job that forks in a loop is ended through the audit session the same way: the first test
    // and the unit tests cover the freezing; each of its exits leaves a zombie on hosts whose init
    // never reaps, such as this test machine's.)
    const detach = (marker: string) =>
      `setsid nohup perl -e 'sleep 3600' ${marker} >/dev/null 2>&1 </dev/null & echo left`;
    // A job that names itself "sshd", as the listener is named: no way out of its login.
    const renamed = `setsid sh -c 'printf sshd >/proc/$$/comm; while :; do sleep 1; done' portcullis-renamed >/dev/null 2>&1 </dev/null & `;
    const files = await grantKeyFiles('left-running');
    const earlier = new Set(readdirSync(logins));
    const left = sshCommand(sshd, files, 'root', renamed + detach('portcullis-left-running'));
    assert.equal(left.code, 0, left.stderr + sshd.log());
    const mine = readdirSync(logins).filter((file) => !earlier.has(file));
    assert.equal(mine.length, 1, 'the login recorded its audit session, kept after it logged out');
    await waitFor('the jobs to run', async () =>
      processesMarked('portcullis-left-running').length > 0 &&
      processesMarked('portcullis-renamed').length > 0
        ? true
        : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(processesMarked('portcullis-left-running').length, 1, 'not ended while the grant is live');

    const alice = await h.login('alice');
    const revokedAt = Date.now();
    const revoked = await h.api(alice, 'POST', `/api/v1/grants/${files.grantId}/revoke`, { reason: 'done' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await waitFor('the jobs to be killed', async () =>
      processesMarked('portcullis-left-running').length === 0 &&
      processesMarked('portcullis-renamed').length === 0
        ? true
        : undefined,
    );
    t.diagnostic(`left-behind jobs ended ${Date.now() - revokedAt} ms after the revocation`);
    await waitFor('the guard logging the end', async () =>
      /"reason":"revoked","pid":\d+,"connection_open":false,"login_session":\d+/.test(guard.stdout())
        ? true
        : undefined,
    );
    await waitFor('the record of the login to be cleared', async () =>
      readdirSync(logins).some((file) => mine.includes(file)) ? undefined : true,
    );
    assert.deepEqual(await sessionEvents(files.grantId), [
      ['ssh.session_started', null, 'guarded-host', null],
      ['ssh.session_closed', null, 'guarded-host', null],
      ['ssh.session_ended', 'revoked', 'guarded-host', false],
    ]);

    const now = Math.floor(Date.now() / 1000);
    const validBefore = now + 8;
    const short = writeCertifiedKey(dir, 'short-left', {
      serial: 80n,
      keyId: 'short-left-running',
      validAfter: now - 60,
      validBefore,
    });
    const shortLeft = sshCommand(sshd, short, 'root', detach('portcullis-left-at-end'));
    assert.equal(shortLeft.code, 0, shortLeft.stderr);
    await waitFor('the job to run', async () =>
      processesMarked('portcullis-left-at-end').length > 0 ? true : undefined,
    );
    await waitFor(
      'the job to be killed at the end',
      async () => (processesMarked('portcullis-left-at-end').length === 0 ? true : undefined),
      15_000,
    );
    const lateMs = Date.now() - validBefore * 1000;
    assert.ok(lateMs >= 0, `ended ${-lateMs} ms before the certificate's end`);
    t.diagnostic(`left-behind job ended at most ${lateMs} ms after the certificate's end`);
  });

  test('no login when its audit session cannot be recorded', async () => {
    const files = await grantKeyFiles('no-login-record');
    const moved = `${logins}.moved`;
    renameSync(logins, moved);
    // A file in its place: the guard makes a missing directory anew, not one that is something else.
    writeFileSync(logins, '');
    try {
      const refused = sshCommand(sshd, files, 'root', 'echo in');
      assert.notEqual(refused.code, 0);
      assert.doesNotMatch(refused.stdout, /^in$/m, 'the command did not run');
      assert.match(refused.stdout + refused.stderr, /portcullis-ssh-login failed/);
    } finally {
      rmSync(logins, { force: true });
      renameSync(moved, logins);
    }
    const accepted = sshCommand(sshd, files, 'root', 'echo in');
    assert.equal(accepted.code, 0, accepted.stderr + sshd.log());
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
