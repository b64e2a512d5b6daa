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
/** After the SIGKILL, the sessions are looked at this often and this many times more for stragglers. */
const sweepIntervalMs = 250;
const sweeps = 8;
/** Rounds of "stop every member, look again" before the kill: each stops what the last one missed. */
const freezeRounds = 20;
/** A connection's privileged process: `sshd` (OpenSSH ≤ 9.7) or `sshd-session` (9.8 and later). */
const connectionProcessName = /^sshd(-session)?$/;
/** Its parent, the listener. */
const listenerProcessName = /^sshd$/;

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
  readonly connection: HostProcess;
  /** The sessions of what the connection started, its own excluded. */
  readonly sessions: ReadonlySet<number>;
  nextKillAt: number;
  sweepsLeft: number;
}

interface KnownRecord {
  readonly recordedAt: number;
  readonly certificate: ParsedUserCertificate;
  checkedAgainst?: number;
}

const processKey = (p: { pid: number; startTime: string }) => `${p.pid}@${p.startTime}`;

export class SshSessionGuard {
  readonly #deps: SshSessionGuardDependencies;
  readonly #authorities: readonly { raw: Buffer; key: KeyObject }[];
  /** Connections signalled to end, by process key, until nothing of theirs is left. */
  readonly #ending = new Map<string, Ending>();
  /** Record file → its verified certificate, and the revocation list generation it was checked against. */
  readonly #known = new Map<string, KnownRecord>();
  /** Names already reported as malformed, so a pass every 250 ms does not repeat the warning. */
  readonly #reported = new Set<string>();
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
    // Records first, then processes: a record's connection existed before its record was written,
    // so a connection missing from a later table has ended (read the other way round, a login
    // between the two reads would lose its record).
    const { records, malformed } = this.#deps.records.read();
    const table = this.#deps.processes();
    this.#sweepEndings(table);
    for (const file of malformed) {
      if (!this.#reported.has(file))
        this.#deps.log.warn({ record: file }, 'ssh-guard: removed a malformed session record');
      this.#reported.add(file);
      this.#deps.records.remove(file);
    }
    const live = new Set<string>();
    const toCheck: { record: SessionRecord; process: HostProcess; certificate: ParsedUserCertificate }[] = [];
    for (const record of records) {
      const process = table.find(record.pid, record.startTime);
      if (!process) {
        this.#deps.records.remove(record.file);
        continue;
      }
      if (!isConnectionProcess(process, table)) {
        this.#deps.log.warn(
          { record: record.file, pid: record.pid },
          'ssh-guard: a record names a process that is not an sshd connection',
        );
        this.#deps.records.remove(record.file);
        continue;
      }
      const certificate = this.#certificateOf(record);
      if (!certificate) {
        this.#deps.records.remove(record.file);
        continue;
      }
      live.add(record.file);
      if (this.#deps.now() >= certificate.validBefore * 1000)
        this.#end(table, process, record, certificate, 'expired');
      else if (this.#known.get(record.file)?.checkedAgainst !== this.#generation)
        toCheck.push({ record, process, certificate });
    }
    for (const file of this.#known.keys()) if (!live.has(file)) this.#known.delete(file);
    for (const file of this.#reported) if (!malformed.includes(file)) this.#reported.delete(file);
    if (toCheck.length === 0) return;

    const generation = this.#generation;
    const revoked = await this.#deps.revoked(toCheck.map((c) => c.record.certificate));
    // The check may have taken a while: signal only processes that are still the same ones.
    const now = this.#deps.processes();
    toCheck.forEach((candidate, index) => {
      const known = this.#known.get(candidate.record.file);
      if (known) known.checkedAgainst = generation;
      const process = now.find(candidate.process.pid, candidate.process.startTime);
      if (revoked[index] && process)
        this.#end(now, process, candidate.record, candidate.certificate, 'revoked');
    });
  }

  /**
   * The record's certificate when one of our authorities signed it and it could have logged in;
   * undefined for anything else. Remembered per record, so a pass does not verify it again.
   */
  #certificateOf(record: SessionRecord): ParsedUserCertificate | undefined {
    const known = this.#known.get(record.file);
    if (known?.recordedAt === record.recordedAt) return known.certificate;
    const certificate = this.#verify(record);
    if (certificate) this.#known.set(record.file, { recordedAt: record.recordedAt, certificate });
    else this.#known.delete(record.file);
    return certificate;
  }

  #verify(record: SessionRecord): ParsedUserCertificate | undefined {
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
    const sessions = new Set(started.map((p) => p.sessionId));
    sessions.delete(connection.sessionId);
    this.#ending.set(key, {
      connection,
      sessions,
      nextKillAt: this.#deps.now() + killGraceMs,
      sweepsLeft: sweeps,
    });
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

  /**
   * After the grace: SIGKILL for everything left of an ended connection, frozen first (SIGSTOP,
   * look again, until a look finds nothing new) so a process that forks in a loop cannot stay
   * ahead; then a few more looks for stragglers.
   */
  #sweepEndings(table: ProcessTable): void {
    const now = this.#deps.now();
    for (const [key, ending] of this.#ending) {
      if (now < ending.nextKillAt) continue;
      const stopped = new Map<string, HostProcess>();
      let current = table;
      for (let round = 0; round < freezeRounds; round++) {
        const fresh = this.#remainsOf(ending, current).filter((p) => !stopped.has(processKey(p)));
        if (fresh.length === 0) break;
        for (const p of fresh) {
          this.#send(p.pid, 'SIGSTOP');
          stopped.set(processKey(p), p);
        }
        current = this.#deps.processes();
      }
      for (const p of stopped.values()) this.#send(p.pid, 'SIGKILL');
      ending.sweepsLeft -= 1;
      ending.nextKillAt = now + sweepIntervalMs;
      if (stopped.size === 0 || ending.sweepsLeft <= 0) this.#ending.delete(key);
    }
  }

  /** The connection if it is still there, and every process in the sessions it started. */
  #remainsOf(ending: Ending, table: ProcessTable): HostProcess[] {
    const connection = table.find(ending.connection.pid, ending.connection.startTime);
    const remains = [...table.inSessions(ending.sessions)];
    if (connection) remains.push(connection, ...table.startedBy(connection));
    return [...new Map(remains.map((p) => [processKey(p), p])).values()];
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

/**
 * An sshd connection's own process, whose parent is the listener: never the listener itself (its
 * parent is init or a service manager), which would end every session and new logins with it.
 */
function isConnectionProcess(process: HostProcess, table: ProcessTable): boolean {
  const parent = table.byPid(process.parentPid);
  return (
    connectionProcessName.test(process.name) && parent !== undefined && listenerProcessName.test(parent.name)
  );
}
