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
import type { SessionRecord } from './session-records.js';
import { SshSessionGuard } from './ssh-session-guard.js';

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

function harness(options: { certificate: Buffer; pid?: number; authorities: Buffer[]; revoked?: boolean }) {
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
  let alive = processes;
  let revocationChecks = 0;
  const guard = new SshSessionGuard({
    records: {
      read: () => ({ records, malformed: [] }),
      remove: (file) => {
        records = records.filter((r) => r.file !== file);
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
    revocationChecks: () => revocationChecks,
    advance: (ms: number) => {
      now += ms;
    },
    exit: (pids: number[]) => {
      alive = alive.filter((p) => !pids.includes(p.pid));
    },
    nowSeconds: () => Math.floor(now / 1000),
  };
}

describe('SshSessionGuard', () => {
  const authority = newAuthority();
  const start = Math.floor(Date.parse('2026-11-24T12:00:00Z') / 1000);

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
});
