/**
 * Ends live SSH sessions with their grants (docs/provisioners.md#ending-live-sessions-portcullis-ssh-guard).
 * sshd checks a certificate at login only; this guard, run as root on each host, ends every
 * connection whose certificate has passed its `valid before` (the grant's end) or is revoked by the
 * host's current revocation list, together with the processes the connection started.
 *
 * It learns which connection uses which certificate from the records sshd's
 * AuthorizedPrincipalsCommand writes (session-records.ts), and trusts a record only as far as it can
 * check it: the certificate must be signed by one of the host's Portcullis authorities, and the pid
 * with its start time must still be an sshd process.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { type ParsedUserCertificate, parseUserCertificate } from '../ssh/ssh-wire.js';
import type { HostProcess, ProcessTable } from './host-processes.js';
import type { SessionRecord, SessionRecords } from './session-records.js';

/** How long a connection's processes have, after SIGTERM and SIGHUP, before SIGKILL. */
const killGraceMs = 1000;
/** The connection's privileged process: `sshd` (OpenSSH ≤ 9.7) or `sshd-session` (9.8 and later). */
const sshdProcessName = /^sshd(-session)?$/;

export type SessionEndReason = 'expired' | 'revoked';

export interface GuardLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface SshSessionGuardDependencies {
  readonly records: Pick<SessionRecords, 'read' | 'remove'>;
  /** The raw Ed25519 public keys of the authorities whose certificates this guard ends. */
  readonly authorities: readonly Buffer[];
  readonly processes: () => ProcessTable;
  /** Checks certificates against the host's current revocation list: true where revoked. */
  readonly revoked: (certificates: readonly Buffer[]) => Promise<boolean[]>;
  readonly signal: (pid: number, signal: NodeJS.Signals) => void;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly log: GuardLog;
}

interface Ending {
  readonly killAt: number;
  readonly processes: readonly HostProcess[];
}

const processKey = (p: { pid: number; startTime: string }) => `${p.pid}@${p.startTime}`;

export class SshSessionGuard {
  readonly #deps: SshSessionGuardDependencies;
  readonly #authorities: readonly { raw: Buffer; key: KeyObject }[];
  /** Connections signalled to end, by process key, waiting for their SIGKILL time. */
  readonly #ending = new Map<string, Ending>();
  /** Record file → the revocation list generation it was last checked against. */
  readonly #checked = new Map<string, number>();
  #generation = 0;

  constructor(deps: SshSessionGuardDependencies) {
    this.#deps = deps;
    this.#authorities = deps.authorities.map((raw) => ({
      raw,
      key: createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
        format: 'jwk',
      }),
    }));
  }

  /** The host's revocation list changed: every live session is checked against it at the next pass. */
  revocationListChanged(): void {
    this.#generation += 1;
  }

  /** One pass: ends what is due, finishes what was ended, forgets what is gone. */
  async check(): Promise<void> {
    const table = this.#deps.processes();
    this.#finishEndings(table);
    const { records, malformed } = this.#deps.records.read();
    for (const file of malformed) {
      this.#deps.log.warn({ record: file }, 'ssh-guard: removed a malformed session record');
      this.#deps.records.remove(file);
    }
    const live = new Set<string>();
    const toCheck: { record: SessionRecord; process: HostProcess; certificate: ParsedUserCertificate }[] = [];
    for (const record of records) {
      const process = table.find(record.pid, record.startTime);
      const certificate = process && this.#certificateOf(record);
      if (!process || !sshdProcessName.test(process.name) || !certificate) {
        if (process && !sshdProcessName.test(process.name))
          this.#deps.log.warn(
            { record: record.file, pid: record.pid },
            'ssh-guard: a record names a process that is not sshd',
          );
        this.#deps.records.remove(record.file);
        continue;
      }
      live.add(record.file);
      if (this.#deps.now() >= certificate.validBefore * 1000)
        this.#end(table, process, record, certificate, 'expired');
      else if (this.#checked.get(record.file) !== this.#generation)
        toCheck.push({ record, process, certificate });
    }
    for (const file of this.#checked.keys()) if (!live.has(file)) this.#checked.delete(file);
    if (toCheck.length === 0) return;

    const generation = this.#generation;
    const revoked = await this.#deps.revoked(toCheck.map((c) => c.record.certificate));
    toCheck.forEach((candidate, index) => {
      this.#checked.set(candidate.record.file, generation);
      if (revoked[index])
        this.#end(table, candidate.process, candidate.record, candidate.certificate, 'revoked');
    });
  }

  /** The record's certificate when one of our authorities signed it; undefined for anything else. */
  #certificateOf(record: SessionRecord): ParsedUserCertificate | undefined {
    let certificate: ParsedUserCertificate | undefined;
    try {
      certificate = parseUserCertificate(record.certificate);
    } catch {
      return undefined;
    }
    if (!certificate) return undefined;
    const caKey = certificate.caPublicKey;
    const authority = this.#authorities.find((a) => a.raw.equals(caKey));
    if (!authority || !verify(null, certificate.signedBody, authority.key, certificate.signature))
      return undefined;
    // sshd runs the principals command for every certificate a client offers, before it checks the
    // principals and the validity period. A client with several (an agent holding an expired one,
    // one for another account) leaves records of certificates that could not have logged in; the
    // connection is judged only by one that could.
    const validWhenRecorded =
      certificate.validAfter * 1000 <= record.recordedAt &&
      record.recordedAt < certificate.validBefore * 1000;
    if (!validWhenRecorded || !certificate.principals.includes(record.account)) return undefined;
    return certificate;
  }

  #end(
    table: ProcessTable,
    connection: HostProcess,
    record: SessionRecord,
    certificate: ParsedUserCertificate,
    reason: SessionEndReason,
  ): void {
    const key = processKey(connection);
    if (this.#ending.has(key)) return;
    const started = table.startedBy(connection);
    this.#ending.set(key, { killAt: this.#deps.now() + killGraceMs, processes: [connection, ...started] });
    // SIGTERM makes sshd close the connection (the client sees "closed by remote host") and pass the
    // signal on to its unprivileged half; SIGHUP is what a shell gets when its terminal goes away.
    this.#send(connection.pid, 'SIGTERM');
    for (const p of started) this.#send(p.pid, 'SIGHUP');
    this.#deps.log.info(
      {
        event: 'ssh.session_ended',
        reason,
        pid: connection.pid,
        account: record.account,
        key_id: certificate.keyId,
        serial: certificate.serial.toString(),
        valid_before: new Date(certificate.validBefore * 1000).toISOString(),
        processes: started.length,
      },
      reason === 'expired'
        ? 'ssh-guard: ended a session whose certificate expired'
        : 'ssh-guard: ended a session whose certificate was revoked',
    );
  }

  /** SIGKILL for whatever outlived its grace, if it is still the same process. */
  #finishEndings(table: ProcessTable): void {
    const now = this.#deps.now();
    for (const [key, ending] of this.#ending) {
      if (now < ending.killAt) continue;
      this.#ending.delete(key);
      for (const p of ending.processes) if (table.find(p.pid, p.startTime)) this.#send(p.pid, 'SIGKILL');
    }
  }

  #send(pid: number, signal: NodeJS.Signals): void {
    try {
      this.#deps.signal(pid, signal);
    } catch (error) {
      // ESRCH: it has ended already, which is the point.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}
