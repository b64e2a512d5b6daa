/**
 * What the guard trusts and what it signals, over an in-memory process table (the real /proc, sshd
 * and signals are in ssh-guard.test.ts): only certificates of its own authorities, only sshd
 * processes, SIGTERM then SIGKILL for what outlives the grace, revocation asked once per list.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { SshCertificateAuthority } from '../ssh/ssh-certificate-authority.js';
import { type HostProcess, processTable } from './host-processes.js';
import type { LoginCgroups } from './login-cgroups.js';
import type { LoginRecord } from './login-records.js';
import type { SessionRecord } from './session-records.js';
import { type GuardSessionEvent, SshSessionGuard } from './ssh-session-guard.js';

function newAuthority(): SshCertificateAuthority {
  const { privateKey } = generateKeyPairSync('ed25519');
  return SshCertificateAuthority.fromPrivateKey(
    privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  );
}

function certificateBlob(
  authority: SshCertificateAuthority,
  validBefore: number,
  options: { principals?: string[]; validAfter?: number } = {},
): Buffer {
  const issued = authority.issueUserCertificate({
    serial: 5n,
    keyId: 'portcullis grant g-1 for demo:alice',
    principals: options.principals ?? ['ops'],
    validAfter: options.validAfter ?? validBefore - 3600,
    validBefore,
    criticalOptions: {},
    extensions: {},
    comment: '',
  });
  return Buffer.from(issued.certificate.split(' ')[1] as string, 'base64');
}

const proc = (pid: number, parentPid: number, sessionId: number, name: string): HostProcess => ({
  pid,
  parentPid,
  sessionId,
  startTime: String(pid * 10),
  name,
});

/** A connection (100) whose shell (101, its own session) started a detached job (300, adopted by init). */
const processes = [
  proc(1, 0, 1, 'init'),
  proc(50, 1, 50, 'sshd'),
  proc(100, 50, 100, 'sshd'),
  proc(101, 100, 101, 'bash'),
  proc(102, 101, 101, 'sleep'),
  proc(300, 1, 101, 'sleep'),
  proc(400, 1, 400, 'postgres'),
];

/**
 * The same host with a login record: the connection's login has audit session 7, and the shell
 * started a job under `setsid` (500) that is in no session of the connection's, only in its login.
 */
function withLogin(listenerLoginSession?: number): HostProcess[] {
  const inLogin = new Set([100, 101, 102, 300]);
  return [
    ...processes.map((p) => {
      if (inLogin.has(p.pid)) return { ...p, loginSession: 7 };
      return p.pid === 50 ? { ...p, loginSession: listenerLoginSession } : p;
    }),
    { ...proc(500, 1, 500, 'sleep'), loginSession: 7 },
  ];
}

/**
 * Control groups in memory: each process's group, which groups hold processes, and what was
 * killed. `hookDirectory` is the session hook's (none: logind's scopes only).
 */
function fakeCgroups(
  groupOf: Record<number, string>,
  hookDirectory?: string,
  scopes: Record<number, string> = {},
) {
  const populated = new Set<string>();
  const killed: string[] = [];
  const cgroups: LoginCgroups = {
    pathOf: (pid) => groupOf[pid],
    populated: (path) => populated.has(path),
    killLogin: async (path) => {
      if (path.includes('read-only')) throw new Error('EROFS: read-only file system');
      killed.push(path);
      populated.delete(path);
      return { as: 'group', processes: 1, others: 0 };
    },
    logindScope: (loginSession) => scopes[loginSession],
    hookGroup: (loginSession) =>
      hookDirectory === undefined ? undefined : `${hookDirectory}/portcullis-login-${loginSession}`,
    sweepHookGroups: () => {},
  };
  return { cgroups, populated, killed };
}

function harness(options: {
  certificate: Buffer;
  pid?: number;
  authorities: Buffer[];
  revoked?: boolean;
  /** The host's processes (default: {@link processes}). */
  host?: HostProcess[];
  /** The audit session the login record gives connection 100 (default: no login records at all). */
  loginSession?: number;
  cgroups?: LoginCgroups;
  /** Certificates the login record lists before `certificate` (AuthenticationMethods with several keys). */
  loginCertificatesBefore?: Buffer[];
}) {
  let now = Date.parse('2026-11-24T12:00:00Z');
  const signals: string[] = [];
  const log: string[] = [];
  let records: SessionRecord[] = [
    {
      file: '100.1000.7',
      pid: options.pid ?? 100,
      startTime: String((options.pid ?? 100) * 10),
      account: 'ops',
      certificate: options.certificate,
      recordedAt: now,
    },
  ];
  let alive = options.host ?? processes;
  let logins: LoginRecord[] =
    options.loginSession === undefined
      ? []
      : [
          {
            file: '100.1000',
            pid: 100,
            startTime: '1000',
            loginSession: options.loginSession,
            listener: { pid: 50, startTime: '500' },
            bootId: 'c0ffee00-0000-4000-8000-000000000001',
            account: 'ops',
            certificates: [...(options.loginCertificatesBefore ?? []), options.certificate],
            recordedAt: now,
          },
        ];
  let revocationChecks = 0;
  const reports: GuardSessionEvent[] = [];
  const guard = new SshSessionGuard({
    report: (event) => reports.push(event),
    cgroups: options.cgroups,
    bootId: 'c0ffee00-0000-4000-8000-000000000001',
    records: {
      read: () => ({ records, malformed: [] }),
      remove: (file) => {
        records = records.filter((r) => r.file !== file);
      },
    },
    logins:
      options.loginSession === undefined
        ? undefined
        : {
            read: () => ({ records: logins, malformed: [] }),
            remove: (file) => {
              logins = logins.filter((l) => l.file !== file);
            },
          },
    authorities: options.authorities,
    processes: () => processTable(alive),
    revoked: async (certificates) => {
      revocationChecks += 1;
      return certificates.map(() => options.revoked === true);
    },
    signal: (pid, signal) => signals.push(`${signal} ${pid}`),
    now: () => now,
    log: {
      info: (_fields, message) => log.push(message),
      warn: (_fields, message) => log.push(message),
      error: (_fields, message) => log.push(message),
    },
  });
  return {
    guard,
    signals,
    log,
    records: () => records,
    logins: () => logins,
    reports,
    revocationChecks: () => revocationChecks,
    advance: (ms: number) => {
      now += ms;
    },
    exit: (pids: number[]) => {
      alive = alive.filter((p) => !pids.includes(p.pid));
    },
    enter: (p: HostProcess) => {
      alive = [...alive, p];
    },
    nowSeconds: () => Math.floor(now / 1000),
  };
}

describe('SshSessionGuard', () => {
  const authority = newAuthority();
  const start = Math.floor(Date.parse('2026-11-24T12:00:00Z') / 1000);
  /** A host with a login record (audit session 7) of a certificate of `authority` ending at `validBefore`. */
  const loginHarness = (
    validBefore: number,
    options: { revoked?: boolean; listenerLoginSession?: number; cgroups?: LoginCgroups } = {},
  ) =>
    harness({
      certificate: certificateBlob(authority, validBefore),
      authorities: [authority.publicKey],
      revoked: options.revoked,
      host: withLogin(options.listenerLoginSession),
      loginSession: 7,
      cgroups: options.cgroups,
    });

  test('at the certificate’s end: SIGTERM to sshd, SIGHUP to what it started, SIGKILL to what outlives the grace', async () => {
    const h = harness({
      certificate: certificateBlob(authority, start + 2),
      authorities: [authority.publicKey],
    });
    await h.guard.check();
    assert.deepEqual(h.signals, [], 'not before its end');
    h.advance(2000);
    await h.guard.check();
    assert.deepEqual(h.signals.sort(), ['SIGHUP 101', 'SIGHUP 102', 'SIGHUP 300', 'SIGTERM 100'].sort());
    h.signals.length = 0;
    h.exit([100, 101, 102]);
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(
      h.signals,
      ['SIGSTOP 300', 'SIGKILL 300'],
      'only the survivor, frozen then killed; no other sshd or process',
    );
    assert.equal(h.records().length, 0, 'the record of a gone connection is removed');
    h.signals.length = 0;
    h.exit([300]);
    h.advance(250);
    await h.guard.check();
    assert.deepEqual(h.signals, [], 'nothing left, nothing more is signalled');
  });

  test('a revoked certificate ends its session; the list is asked once until it changes', async () => {
    const h = harness({
      certificate: certificateBlob(authority, start + 3600),
      authorities: [authority.publicKey],
      revoked: false,
    });
    await h.guard.check();
    await h.guard.check();
    assert.equal(h.revocationChecks(), 1);
    h.guard.revocationListChanged();
    await h.guard.check();
    assert.equal(h.revocationChecks(), 2);
    assert.deepEqual(h.signals, []);

    const revoked = harness({
      certificate: certificateBlob(authority, start + 3600),
      authorities: [authority.publicKey],
      revoked: true,
    });
    await revoked.guard.check();
    assert.ok(revoked.signals.includes('SIGTERM 100'));
    assert.ok(revoked.log.includes('ssh-guard: ended a session whose certificate was revoked'));
  });

  test('certificates of other authorities, forged signatures and non-sshd processes are left alone', async () => {
    // Each would be ended (the list revokes everything) if the guard trusted its record.
    const other = harness({
      certificate: certificateBlob(newAuthority(), start + 3600),
      authorities: [authority.publicKey],
      revoked: true,
    });
    await other.guard.check();
    assert.deepEqual(other.signals, []);
    assert.equal(other.records().length, 0);
    assert.equal(other.revocationChecks(), 0);

    const forgedBlob = certificateBlob(authority, start + 3600);
    forgedBlob[forgedBlob.length - 1] = (forgedBlob[forgedBlob.length - 1] as number) ^ 1;
    const forged = harness({ certificate: forgedBlob, authorities: [authority.publicKey], revoked: true });
    await forged.guard.check();
    assert.deepEqual(forged.signals, []);

    const garbage = harness({
      certificate: Buffer.from('not a certificate'),
      authorities: [authority.publicKey],
      revoked: true,
    });
    await garbage.guard.check();
    assert.deepEqual(garbage.signals, []);

    const notSshd = harness({
      certificate: certificateBlob(authority, start + 3600),
      pid: 400,
      authorities: [authority.publicKey],
      revoked: true,
    });
    await notSshd.guard.check();
    assert.deepEqual(notSshd.signals, []);
    assert.ok(notSshd.log.includes('ssh-guard: a record names a process that is not an sshd connection'));

    // The listener is an sshd too, but ending it would end every session and every later login.
    const listener = harness({
      certificate: certificateBlob(authority, start + 3600),
      pid: 50,
      authorities: [authority.publicKey],
      revoked: true,
    });
    await listener.guard.check();
    assert.deepEqual(listener.signals, []);
  });

  test('records of certificates that could not have logged in do not end the connection', async () => {
    // sshd records every certificate a client offers before it checks validity and principals.
    for (const certificate of [
      certificateBlob(authority, start - 1),
      certificateBlob(authority, start + 3600, { validAfter: start + 60 }),
      certificateBlob(authority, start + 3600, { principals: ['deploy'] }),
    ]) {
      const h = harness({ certificate, authorities: [authority.publicKey], revoked: true });
      await h.guard.check();
      assert.deepEqual(h.signals, []);
      assert.equal(h.revocationChecks(), 0);
    }
  });

  test('what a login left running after its connection closed ends at the certificate’s end, and is then forgotten', async () => {
    const h = loginHarness(start + 10);
    await h.guard.check();
    // The user logs out; the setsid job (500) stays, in the login's audit session only.
    h.exit([100, 101, 102, 300]);
    h.advance(5000);
    await h.guard.check();
    assert.deepEqual(h.signals, [], 'not before its end');
    assert.equal(h.logins().length, 1, 'the login record is kept after its connection closed');

    h.advance(5000);
    await h.guard.check();
    assert.deepEqual(h.signals, ['SIGHUP 500']);
    assert.ok(h.log.includes('ssh-guard: ended a session whose certificate expired'));
    h.signals.length = 0;
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(h.signals, ['SIGSTOP 500', 'SIGKILL 500']);

    h.signals.length = 0;
    h.exit([500]);
    // A login's ending takes all its looks (8), then its record goes.
    for (let look = 0; look < 8; look++) {
      h.advance(250);
      await h.guard.check();
    }
    await h.guard.check();
    assert.deepEqual(h.signals, [], 'nothing left, nothing more is signalled');
    assert.equal(h.logins().length, 0, 'the login record is removed once its end is done');
    assert.equal(h.log.filter((line) => line.startsWith('ssh-guard: ended')).length, 1);
  });

  test('a login whose connection closed leaving nothing seen is swept at its end, quietly', async () => {
    const h = loginHarness(start + 10);
    await h.guard.check();
    h.exit([100, 101, 102, 300, 500]);
    h.advance(10_000);
    await h.guard.check();
    assert.deepEqual(h.signals, []);
    assert.equal(h.log.filter((line) => line.startsWith('ssh-guard: ended')).length, 0);
    // The job that forked between two looks shows up at the next one, in the login's audit session.
    h.enter({ ...proc(600, 1, 600, 'perl'), loginSession: 7 });
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(h.signals, ['SIGSTOP 600', 'SIGKILL 600']);
  });

  test('a login in a control group of its own is killed whole at its end, what forks too fast to be seen included', async () => {
    const groups = fakeCgroups({}, '/portcullis-ssh');
    const hookGroup = '/portcullis-ssh/portcullis-login-7';
    groups.populated.add(hookGroup);
    const h = loginHarness(start + 30, { cgroups: groups.cgroups });
    await h.guard.check();
    // Logged out; what is left forks and exits faster than any look sees it, but its group is not empty.
    h.exit([100, 101, 102, 300, 500]);
    for (let look = 0; look < 4; look++) {
      h.advance(5000);
      await h.guard.check();
    }
    assert.equal(h.logins().length, 1, 'not forgotten while its group holds processes');
    assert.deepEqual(groups.killed, []);
    h.advance(10_000);
    await h.guard.check();
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(groups.killed, [hookGroup]);
    assert.deepEqual(h.signals, []);
    assert.deepEqual(
      h.reports.map((r) => [r.type, r.ending?.reason]),
      [
        ['started', undefined],
        ['closed', undefined],
        ['ended', 'expired'],
      ],
      'an end only its group shows is reported',
    );
  });

  test('a group that cannot be killed is logged as an error, and the login is still ended signal by signal', async () => {
    const groups = fakeCgroups({}, '/read-only');
    groups.populated.add('/read-only/portcullis-login-7');
    const h = loginHarness(start + 3600, { revoked: true, cgroups: groups.cgroups });
    await h.guard.check();
    h.advance(1000);
    await h.guard.check();
    assert.ok(h.log.includes("ssh-guard: could not kill an ended login's control group"), h.log.join('\n'));
    assert.ok(h.signals.includes('SIGKILL 500'), h.signals.join(', '));
  });

  test('logind’s scope is found by the login’s audit session, also when its connection closed before any look', async () => {
    const scope = '/user.slice/user-0.slice/session-7.scope';
    const groups = fakeCgroups({}, undefined, { 7: scope });
    groups.populated.add(scope);
    const h = loginHarness(start + 30, { cgroups: groups.cgroups });
    h.exit([100, 101, 102, 300, 500]);
    for (let look = 0; look < 5; look++) {
      h.advance(5000);
      await h.guard.check();
    }
    assert.equal(h.logins().length, 1, 'not forgotten while its scope holds processes');
    h.advance(10_000);
    await h.guard.check();
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(groups.killed, [scope]);
  });

  test('logind’s scope of the login is killed with it; a group shared with sshd or another login never is', async () => {
    const scope = '/user.slice/user-1000.slice/session-7.scope';
    const groups = fakeCgroups({
      50: '/system.slice/ssh.service',
      100: scope,
      101: scope,
      102: '/user.slice/user-1000.slice/session-8.scope',
      300: '/system.slice/ssh.service',
      500: '/user.slice/user-1000.slice/user@1000.service/app.slice/session-7.scope/x',
    });
    groups.populated.add(scope);
    groups.populated.add('/system.slice/ssh.service');
    const h = loginHarness(start + 3600, { revoked: true, cgroups: groups.cgroups });
    await h.guard.check();
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(groups.killed, [scope]);
  });

  test('a revoked certificate ends its live connection and its login’s processes together', async () => {
    const h = loginHarness(start + 3600, { revoked: true });
    await h.guard.check();
    assert.deepEqual(
      h.signals.sort(),
      ['SIGHUP 101', 'SIGHUP 102', 'SIGHUP 300', 'SIGHUP 500', 'SIGTERM 100'].sort(),
    );
  });

  test('the listener its login record names is never signalled, whatever it shares with the login', async () => {
    // Here the listener (50) is in the login's audit session too, as a renamed or adopted process
    // could be: everything else of the login is ended, the listener never.
    const h = loginHarness(start + 10, { listenerLoginSession: 7 });
    h.exit([100, 101, 102, 300]);
    h.advance(10_000);
    await h.guard.check();
    h.advance(1000);
    await h.guard.check();
    assert.deepEqual(h.signals, ['SIGHUP 500', 'SIGSTOP 500', 'SIGKILL 500']);
  });

  test('with login records on, a connection whose login has none is reported once', async () => {
    const h = loginHarness(start + 3600);
    h.logins().length = 0;
    await h.guard.check();
    assert.equal(h.log.length, 0, 'not while sshd may still be opening the session');
    h.advance(6000);
    await h.guard.check();
    await h.guard.check();
    assert.equal(h.log.filter((line) => line.includes('has no login record')).length, 1);
  });

  test('a login with several certificates is followed by the first of its authorities’', async () => {
    const other = newAuthority();
    const h = harness({
      certificate: certificateBlob(authority, start + 3600),
      loginCertificatesBefore: [certificateBlob(other, start + 60)],
      authorities: [authority.publicKey],
      revoked: true,
      host: withLogin(),
      loginSession: 7,
    });
    await h.guard.check();
    assert.ok(h.signals.includes('SIGTERM 100'), 'ended by its revoked certificate of ours');
    assert.equal(h.reports[0]?.type, 'started');
    assert.equal(h.reports[0]?.serial, 5n);
  });

  test('login records of other authorities’ certificates are dropped, their sessions untouched', async () => {
    const h = harness({
      certificate: certificateBlob(newAuthority(), start + 3600),
      authorities: [authority.publicKey],
      revoked: true,
      host: withLogin(),
      loginSession: 7,
    });
    await h.guard.check();
    assert.deepEqual(h.signals, []);
    assert.equal(h.logins().length, 0);
  });

  test('reports a login once when first seen, and its end: closed by itself, or ended by the guard', async () => {
    const closing = harness({
      certificate: certificateBlob(authority, start + 3600),
      authorities: [authority.publicKey],
    });
    await closing.guard.check();
    await closing.guard.check();
    closing.exit([100, 101, 102, 300]);
    await closing.guard.check();
    assert.deepEqual(
      closing.reports.map((r) => [r.type, r.keyId, r.serial, r.account, r.pid]),
      [
        ['started', 'portcullis grant g-1 for demo:alice', 5n, 'ops', 100],
        ['closed', 'portcullis grant g-1 for demo:alice', 5n, 'ops', 100],
      ],
    );

    const ending = harness({
      certificate: certificateBlob(authority, start + 2),
      authorities: [authority.publicKey],
    });
    await ending.guard.check();
    ending.advance(2000);
    await ending.guard.check();
    ending.exit([100, 101, 102, 300]);
    ending.advance(1000);
    await ending.guard.check();
    assert.deepEqual(
      ending.reports.map((r) => [r.type, r.ending]),
      [
        ['started', undefined],
        ['ended', { reason: 'expired', connectionOpen: true, processes: 3 }],
      ],
      'ended, and no "closed" after it',
    );
  });

  test('a closed login that left nothing running is forgotten after three empty looks, before its end', async () => {
    const h = loginHarness(start + 3600);
    await h.guard.check();
    h.exit([100, 101, 102, 300]);
    for (let look = 0; look < 4; look++) {
      h.advance(5000);
      await h.guard.check();
    }
    assert.equal(h.logins().length, 1, 'kept while its setsid job (500) runs');
    h.exit([500]);
    for (let look = 0; look < 2; look++) {
      h.advance(5000);
      await h.guard.check();
    }
    assert.equal(h.logins().length, 1, 'two empty looks are not enough');
    h.advance(5000);
    await h.guard.check();
    assert.equal(h.logins().length, 0);
    assert.deepEqual(h.signals, []);
  });

  test('login records of another boot are dropped; with login records on, session records end nothing', async () => {
    const otherBoot = loginHarness(start + 3600, { revoked: true });
    const [login] = otherBoot.logins();
    assert.ok(login);
    otherBoot.logins()[0] = { ...login, bootId: 'c0ffee00-0000-4000-8000-000000000002' };
    await otherBoot.guard.check();
    assert.deepEqual(
      otherBoot.signals,
      [],
      'neither its audit session nor, by the session record, its connection',
    );
    assert.equal(otherBoot.logins().length, 0);

    // The unprivileged record user names a connection (an administrator's key login, say) with a
    // revoked Portcullis certificate: with login records on, that is never acted on.
    const forged = loginHarness(start + 3600, { revoked: true });
    forged.logins().length = 0;
    await forged.guard.check();
    forged.advance(6000);
    await forged.guard.check();
    assert.deepEqual(forged.signals, []);
    assert.equal(forged.records().length, 1, 'kept while its connection is open, for the warning only');
  });

  test('a record written again keeps what was reported about it', async () => {
    const h = harness({
      certificate: certificateBlob(authority, start + 3600),
      authorities: [authority.publicKey],
    });
    await h.guard.check();
    const [record] = h.records();
    assert.ok(record);
    h.records()[0] = { ...record, recordedAt: record.recordedAt + 1000 };
    h.advance(2000);
    await h.guard.check();
    assert.deepEqual(
      h.reports.map((r) => r.type),
      ['started'],
    );
  });
});
