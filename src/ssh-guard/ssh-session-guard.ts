/**
 * Ends live SSH sessions with their grants (docs/provisioners.md#ending-live-sessions-portcullis-ssh-guard).
 * sshd checks a certificate at login only; this guard, run as root on each host, ends every login
 * whose certificate has passed its `valid before` (the grant's end) or is revoked by the host's
 * current revocation list: its connection, what the connection started, and every process of the
 * login's audit session, also after the connection closed; where the login has a control group of
 * its own (login-cgroups.ts), that group is killed whole.
 *
 * It learns about logins from two kinds of records. sshd's PAM session hook writes a login record
 * (login-records.ts, root's own directory) with the certificate that logged in and the login's
 * audit session: sshd's word, followed as it is. sshd's AuthorizedPrincipalsCommand writes a
 * session record (session-records.ts) for every certificate a client offers, as an unprivileged
 * account: it covers a connection that has no login record (yet, or at all with
 * `--connections-only`), and only as far as the guard can check it. Either way the certificate must
 * be signed by one of the host's Portcullis authorities, and the pid with its start time must still
 * be an sshd connection.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { type ParsedUserCertificate, parseUserCertificate } from '../ssh/ssh-wire.js';
import type { HostProcess, ProcessTable } from './host-processes.js';
import { isLoginCgroup, type LoginCgroups } from './login-cgroups.js';
import type { LoginRecord, LoginRecords } from './login-records.js';
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
/** sshd opens a login's PAM session (and its hook writes the login record) right after authentication. */
const missingLoginGraceMs = 5000;
/**
 * A closed login is forgotten before its certificate's end once this many looks, this far apart,
 * found nothing of it running: so that logins by the thousand (`ssh host true` in a loop) do not
 * pile up records until their grants end.
 */
const emptyLooksToForget = 3;
const emptyLookIntervalMs = 5000;
/** The session hook's empty groups are removed once this old (a younger one may await its login). */
const hookGroupMinAgeMs = 60_000;
const hookGroupSweepIntervalMs = 30_000;

export type SessionEndReason = 'expired' | 'revoked';

export interface GuardLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What the guard tells Portcullis about certificate logins (session-reporter.ts sends it). */
export interface GuardSessionEvent {
  readonly type: 'started' | 'closed' | 'ended';
  readonly keyId: string;
  readonly serial: bigint;
  readonly account: string;
  /** The connection's sshd process, and its start (clock ticks since boot): together they name the login. */
  readonly pid: number;
  readonly connectionStart: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly ending?: {
    readonly reason: SessionEndReason;
    readonly connectionOpen: boolean;
    readonly processes: number;
  };
}

export interface SshSessionGuardDependencies {
  readonly records: Pick<SessionRecords, 'read' | 'remove'>;
  /**
   * The login records of sshd's PAM session hook. Without them the guard follows connections only,
   * and what a login leaves running after its connection closed outlives the grant.
   */
  readonly logins?: Pick<LoginRecords, 'read' | 'remove'>;
  /** The raw Ed25519 public keys of the authorities whose certificates this guard ends. */
  readonly authorities: readonly Buffer[];
  readonly processes: () => ProcessTable;
  /** Checks certificates against the host's current revocation list: true where revoked. */
  readonly revoked: (certificates: readonly Buffer[]) => Promise<boolean[]>;
  readonly signal: (pid: number, signal: NodeJS.Signals) => void;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  readonly log: GuardLog;
  /** Reports logins, their closes by themselves and the ends the guard forced; optional. */
  readonly report?: (event: GuardSessionEvent) => void;
  /** This boot's id: a login record of another boot names pids and audit sessions of that boot. */
  readonly bootId?: string;
  /**
   * Logins' own control groups (login-cgroups.ts): with them an ended login is killed as a whole
   * (`cgroup.kill`), which no process forking in a loop escapes; without them, signal by signal.
   */
  readonly cgroups?: LoginCgroups;
}

interface Ending {
  /** The connection, when it was still open as the session was ended. */
  readonly connection?: HostProcess;
  /** The sessions of what the connection started, its own excluded. */
  readonly sessions: ReadonlySet<number>;
  readonly loginSession?: number;
  /** Never signalled, whatever else shares anything with the login. */
  readonly listener?: { readonly pid: number; readonly startTime: string };
  /** The login's own control groups, killed whole at each kill step. */
  readonly cgroups: Set<string>;
  nextKillAt: number;
  sweepsLeft: number;
}

/** A record file's verified certificate and what the guard did about its login. */
interface Tracked {
  readonly recordedAt: number;
  readonly certificate: ParsedUserCertificate;
  readonly certificateBlob: Buffer;
  checkedAgainst?: number;
  reportedStart?: boolean;
  reportedClose?: boolean;
  /** The key of the ending the guard started for it. */
  endedAs?: string;
  /** For a closed login: consecutive looks that found nothing of it running, and when the last was. */
  emptyLooks?: number;
  lastLookAt?: number;
}

/** A certificate login the guard answers for. */
interface GuardedSession {
  /** Its record: a login record, or a session record where there is none. */
  readonly file: string;
  readonly account: string;
  /** The connection's sshd process, open or not. */
  readonly pid: number;
  readonly certificate: ParsedUserCertificate;
  readonly certificateBlob: Buffer;
  /** The connection while it is open. */
  readonly connection?: HostProcess;
  readonly login?: LoginRecord;
}

const processKey = (p: { pid: number; startTime: string }) => `${p.pid}@${p.startTime}`;

export class SshSessionGuard {
  readonly #deps: SshSessionGuardDependencies;
  readonly #authorities: readonly { raw: Buffer; key: KeyObject }[];
  /** Sessions signalled to end, by connection or audit session, until their sweeps are done. */
  readonly #ending = new Map<string, Ending>();
  /** Record file → its verified certificate and what was done about it. */
  readonly #tracked = new Map<string, Tracked>();
  /** Record files already warned about, so a pass every 250 ms does not repeat the warning. */
  readonly #reported = new Set<string>();
  #generation = 0;
  #hookGroupsSweptAt = Number.NEGATIVE_INFINITY;

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
    const sessionRecords = this.#deps.records.read();
    const loginRecords = this.#deps.logins?.read() ?? { records: [], malformed: [] };
    const table = this.#deps.processes();
    await this.#sweepEndings(table);
    this.#sweepHookGroups();
    this.#removeMalformed(this.#deps.records, sessionRecords.malformed, 'session');
    if (this.#deps.logins) this.#removeMalformed(this.#deps.logins, loginRecords.malformed, 'login');

    const sessions: GuardedSession[] = [];
    const live = new Set<string>();
    const connectionsWithLogin = new Set<string>();
    for (const login of loginRecords.records) {
      connectionsWithLogin.add(processKey(login));
      const session = this.#loginSession(login, table);
      if (session) sessions.push(session);
      else this.#deps.logins?.remove(login.file);
    }
    for (const record of sessionRecords.records) {
      const connection = table.find(record.pid, record.startTime);
      if (connectionsWithLogin.has(processKey(record)) && connection) continue; // its login record covers it
      const session = connection && this.#connectionSession(record, connection, table);
      // With login records, every certificate login has one (or was refused): a session record then
      // only shows a hook that is missing, and is never acted on, so the unprivileged account that
      // writes them cannot have a connection ended.
      if (session && !this.#deps.logins) sessions.push(session);
      else if (session) live.add(record.file);
      else this.#deps.records.remove(record.file);
    }

    const toCheck: GuardedSession[] = [];
    for (const session of sessions) {
      live.add(session.file);
      this.#reportProgress(session);
      if (this.#deps.now() >= session.certificate.validBefore * 1000) this.#end(table, session, 'expired');
      else if (this.#tracked.get(session.file)?.checkedAgainst !== this.#generation) toCheck.push(session);
    }
    for (const [file, tracked] of this.#tracked) {
      if (live.has(file)) continue;
      if (tracked.reportedStart && !tracked.reportedClose && !tracked.endedAs)
        this.#reportEvent('closed', file, tracked);
      this.#tracked.delete(file);
    }
    const malformed = new Set([...sessionRecords.malformed, ...loginRecords.malformed]);
    for (const name of this.#reported)
      if (!malformed.has(name) && !live.has(name)) this.#reported.delete(name);
    if (toCheck.length === 0) return;

    const generation = this.#generation;
    const revoked = await this.#deps.revoked(toCheck.map((c) => c.certificateBlob));
    // The check may have taken a while: signal only processes that are still the same ones.
    const now = this.#deps.processes();
    toCheck.forEach((candidate, index) => {
      const tracked = this.#tracked.get(candidate.file);
      const connection =
        candidate.connection && now.find(candidate.connection.pid, candidate.connection.startTime);
      // A revoked session counts as checked only once its end is under way.
      const settled = !revoked[index] || this.#end(now, { ...candidate, connection }, 'revoked');
      if (tracked && settled) tracked.checkedAgainst = generation;
    });
  }

  /**
   * The session of a login record: followed through its audit session until the guard has ended it,
   * also after its connection closed; undefined for a certificate that is not of our authorities,
   * or once its end is done.
   */
  #loginSession(login: LoginRecord, table: ProcessTable): GuardedSession | undefined {
    if (this.#deps.bootId !== undefined && login.bootId !== this.#deps.bootId) return undefined;
    const verified = this.#verified(login.file, login.certificates, login.account, login.recordedAt);
    if (!verified) return undefined;
    // Root wrote the pid with its start time from that very process: no need to ask whose child it
    // is (after `systemctl restart ssh` it is init's).
    const connection = table.find(login.pid, login.startTime);
    const tracked = this.#tracked.get(login.file);
    if (!connection && tracked?.endedAs !== undefined && !this.#ending.has(tracked.endedAs)) return undefined;
    if (!connection && tracked && tracked.endedAs === undefined && this.#leftNothing(tracked, login, table))
      return undefined;
    return {
      file: login.file,
      account: login.account,
      pid: login.pid,
      certificate: verified.certificate,
      certificateBlob: verified.certificateBlob,
      connection,
      login,
    };
  }

  /**
   * Whether a closed login has left nothing running: looked at every few seconds (a look reads every
   * process's audit session), and true only after several looks in a row found nothing, since one
   * look can miss a process between two forks.
   */
  #leftNothing(tracked: Tracked, login: LoginRecord, table: ProcessTable): boolean {
    const now = this.#deps.now();
    if (tracked.lastLookAt !== undefined && now - tracked.lastLookAt < emptyLookIntervalMs) return false;
    tracked.lastLookAt = now;
    const listener = processKey(login.listener);
    const running =
      this.#loginCgroups(login, []).some((path) => this.#deps.cgroups?.populated(path)) ||
      table.inLoginSession(login.loginSession).some((p) => processKey(p) !== listener);
    tracked.emptyLooks = running ? 0 : (tracked.emptyLooks ?? 0) + 1;
    return tracked.emptyLooks >= emptyLooksToForget;
  }

  /** The session of a session record whose connection is open and has no login record. */
  #connectionSession(
    record: SessionRecord,
    connection: HostProcess,
    table: ProcessTable,
  ): GuardedSession | undefined {
    if (!isConnectionProcess(connection, table)) {
      this.#deps.log.warn(
        { record: record.file, pid: record.pid },
        'ssh-guard: a record names a process that is not an sshd connection',
      );
      return undefined;
    }
    const verified = this.#verified(record.file, [record.certificate], record.account, record.recordedAt);
    if (!verified) return undefined;
    if (this.#deps.logins && this.#deps.now() - record.recordedAt >= missingLoginGraceMs)
      this.#warnOnce(
        record.file,
        { pid: record.pid, account: record.account },
        "ssh-guard: a certificate login has no login record; what it leaves running after its connection closes will outlive its grant (is sshd's PAM session hook set up?)",
      );
    return {
      file: record.file,
      account: record.account,
      pid: record.pid,
      certificate: verified.certificate,
      certificateBlob: verified.certificateBlob,
      connection,
    };
  }

  /**
   * The first certificate of a record that one of our authorities signed and that could have
   * logged in; undefined when there is none. Remembered per record file, so a pass does not verify
   * it again.
   */
  #verified(
    file: string,
    blobs: readonly Buffer[],
    account: string,
    recordedAt: number,
  ): Pick<Tracked, 'certificate' | 'certificateBlob'> | undefined {
    const tracked = this.#tracked.get(file);
    if (tracked?.recordedAt === recordedAt) return tracked;
    let found: Pick<Tracked, 'certificate' | 'certificateBlob'> | undefined;
    for (const blob of blobs) {
      const certificate = this.#verify(blob, account, recordedAt);
      if (certificate) {
        found = { certificate, certificateBlob: blob };
        break;
      }
    }
    // A record written again (or touched) is checked again, but what was reported or ended stays so.
    if (found)
      this.#tracked.set(file, {
        recordedAt,
        ...found,
        reportedStart: tracked?.reportedStart,
        reportedClose: tracked?.reportedClose,
        endedAs: tracked?.endedAs,
      });
    else this.#tracked.delete(file);
    return found;
  }

  #verify(blob: Buffer, account: string, recordedAt: number): ParsedUserCertificate | undefined {
    let certificate: ParsedUserCertificate | undefined;
    try {
      certificate = parseUserCertificate(blob);
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
      certificate.validAfter * 1000 <= recordedAt && recordedAt < certificate.validBefore * 1000;
    if (!validWhenRecorded || !certificate.principals.includes(account)) return undefined;
    return certificate;
  }

  /**
   * Reports a login as started, once: from its login record (sshd opened its session, even if the
   * connection is gone already), or without login records from its open connection. Then its
   * close, when the connection is gone and the guard did not end it.
   */
  #reportProgress(session: GuardedSession): void {
    const tracked = this.#tracked.get(session.file);
    if (!tracked) return;
    const isLogin = this.#deps.logins ? session.login !== undefined : session.connection !== undefined;
    if (!tracked.reportedStart && isLogin) {
      tracked.reportedStart = true;
      this.#reportEvent('started', session.file, tracked, session);
    }
    if (tracked.reportedStart && !session.connection && !tracked.reportedClose && !tracked.endedAs) {
      tracked.reportedClose = true;
      this.#reportEvent('closed', session.file, tracked, session);
    }
  }

  #reportEvent(
    type: GuardSessionEvent['type'],
    file: string,
    tracked: Tracked,
    session?: Pick<GuardedSession, 'account' | 'pid'>,
    ending?: GuardSessionEvent['ending'],
  ): void {
    // A record file is named <pid>.<start>[.<digest>]: enough for a close whose session is gone.
    const [pid, connectionStart] = file.split('.');
    this.#deps.report?.({
      type,
      keyId: tracked.certificate.keyId,
      serial: tracked.certificate.serial,
      account: session?.account ?? tracked.certificate.principals[0] ?? '',
      pid: session?.pid ?? Number(pid),
      connectionStart: connectionStart ?? '',
      at: this.#deps.now(),
      ...(ending ? { ending } : {}),
    });
  }

  #removeMalformed(
    directory: { remove(file: string): void },
    malformed: readonly string[],
    kind: 'session' | 'login',
  ): void {
    for (const file of malformed) {
      this.#warnOnce(file, {}, `ssh-guard: removed a malformed ${kind} record`);
      directory.remove(file);
    }
  }

  #warnOnce(file: string, fields: object, message: string): void {
    if (this.#reported.has(file)) return;
    this.#reported.add(file);
    this.#deps.log.warn({ record: file, ...fields }, message);
  }

  /**
   * Starts ending a session: SIGTERM to its open connection, SIGHUP to what the connection started
   * and to every process of its login's audit session, and the sweeps that follow. True once an
   * ending is under way for it; false when there is nothing to end it by.
   */
  #end(table: ProcessTable, session: GuardedSession, reason: SessionEndReason): boolean {
    const { connection, login, certificate } = session;
    const key = login ? `login:${login.loginSession}` : connection ? processKey(connection) : undefined;
    if (key === undefined) return false;
    if (this.#ending.has(key)) return true;
    const tracked = this.#tracked.get(session.file);
    const started = connection ? table.startedBy(connection) : [];
    const members = new Map(started.map((p) => [processKey(p), p]));
    if (login) for (const p of table.inLoginSession(login.loginSession)) members.set(processKey(p), p);
    if (connection) members.delete(processKey(connection));
    if (login) members.delete(processKey(login.listener));
    const sessions = new Set(started.map((p) => p.sessionId));
    if (connection) sessions.delete(connection.sessionId);
    const groups = login
      ? this.#loginCgroups(login, [...(connection ? [connection] : []), ...members.values()])
      : [];
    this.#ending.set(key, {
      connection,
      sessions,
      loginSession: login?.loginSession,
      listener: login?.listener,
      cgroups: new Set(groups),
      nextKillAt: this.#deps.now() + killGraceMs,
      sweepsLeft: sweeps,
    });
    if (tracked) tracked.endedAs = key;
    // SIGTERM makes sshd close the connection (the client sees "closed by remote host") and pass the
    // signal on to its unprivileged half; SIGHUP is what a shell gets when its terminal goes away.
    if (connection) this.#send(connection.pid, 'SIGTERM');
    for (const p of members.values()) this.#send(p.pid, 'SIGHUP');
    // A login that left nothing seen running is swept all the same (a process that forks in a loop
    // can slip past one look), but there is nothing to report unless its group holds processes.
    if (!connection && members.size === 0 && !groups.some((path) => this.#deps.cgroups?.populated(path)))
      return true;
    if (tracked)
      this.#reportEvent('ended', session.file, tracked, session, {
        reason,
        connectionOpen: connection !== undefined,
        processes: members.size,
      });
    this.#deps.log.info(
      {
        event: 'ssh.session_ended',
        reason,
        pid: session.pid,
        connection_open: connection !== undefined,
        login_session: login?.loginSession,
        account: session.account,
        key_id: certificate.keyId,
        serial: certificate.serial.toString(),
        valid_before: new Date(certificate.validBefore * 1000).toISOString(),
        processes: members.size,
      },
      reason === 'expired'
        ? 'ssh-guard: ended a session whose certificate expired'
        : 'ssh-guard: ended a session whose certificate was revoked',
    );
    return true;
  }

  /**
   * After the grace: SIGKILL for everything left of an ended session, frozen first (SIGSTOP, look
   * again, until a look finds nothing new) so a process that forks in a loop cannot stay ahead;
   * then more looks for stragglers. A connection's ending stops at the first look that finds
   * nothing; a login's takes all its looks, since one look can miss a process between two forks.
   */
  async #sweepEndings(table: ProcessTable): Promise<void> {
    const now = this.#deps.now();
    for (const [key, ending] of this.#ending) {
      if (now < ending.nextKillAt) continue;
      const stopped = new Map<string, HostProcess>();
      let current = await this.#killCgroups(ending, table);
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
      const done = ending.sweepsLeft <= 0 || (stopped.size === 0 && ending.loginSession === undefined);
      if (done) this.#ending.delete(key);
    }
  }

  /**
   * The control groups of a login: the hook's group and logind's scope for its audit session (found
   * by name, so also for a login whose connection closed before the guard saw it), and the group of
   * any of `processes` named after it. A group named otherwise, sshd's own above all, never counts.
   */
  #loginCgroups(login: LoginRecord, processes: readonly HostProcess[]): string[] {
    const cgroups = this.#deps.cgroups;
    if (!cgroups) return [];
    const found = new Set<string>();
    for (const path of [cgroups.hookGroup(login.loginSession), cgroups.logindScope(login.loginSession)])
      if (path !== undefined) found.add(path);
    for (const p of processes) {
      const path = cgroups.pathOf(p.pid);
      if (path !== undefined && isLoginCgroup(path, login.loginSession)) found.add(path);
    }
    return [...found];
  }

  /**
   * Kills an ending login's groups (login-cgroups.ts: whole, or only the login's own processes when
   * a group also holds others'), after adding the groups of what is left of it; returns the table
   * to go on with, taken again when anything was killed.
   */
  async #killCgroups(ending: Ending, table: ProcessTable): Promise<ProcessTable> {
    const cgroups = this.#deps.cgroups;
    const loginSession = ending.loginSession;
    if (!cgroups || loginSession === undefined) return table;
    for (const p of this.#remainsOf(ending, table)) {
      const path = cgroups.pathOf(p.pid);
      if (path !== undefined && isLoginCgroup(path, loginSession)) ending.cgroups.add(path);
    }
    const listener = ending.listener;
    const spare = (pid: number) => pid <= 1 || pid === process.pid || pid === listener?.pid;
    let killed = false;
    for (const path of ending.cgroups) {
      if (!cgroups.populated(path)) continue;
      const fields = { cgroup: path, login_session: loginSession };
      try {
        const outcome = await cgroups.killLogin(path, loginSession, {
          spare,
          kill: (pid) => this.#send(pid, 'SIGKILL'),
        });
        if (!outcome || outcome.processes === 0) continue;
        killed = true;
        if (outcome.as === 'group')
          this.#deps.log.info(
            { ...fields, processes: outcome.processes },
            'ssh-guard: killed the control group of an ended login',
          );
        else
          this.#deps.log.warn(
            { ...fields, processes: outcome.processes, others: outcome.others },
            "ssh-guard: an ended login's control group also holds processes of other logins (a daemon restarted from it?): killed only the login's own",
          );
      } catch (error) {
        this.#deps.log.error(
          { ...fields, error: (error as Error).message },
          "ssh-guard: could not kill an ended login's control group",
        );
      }
    }
    return killed ? this.#deps.processes() : table;
  }

  #sweepHookGroups(): void {
    const now = this.#deps.now();
    if (!this.#deps.cgroups || now - this.#hookGroupsSweptAt < hookGroupSweepIntervalMs) return;
    this.#hookGroupsSweptAt = now;
    this.#deps.cgroups.sweepHookGroups(hookGroupMinAgeMs);
  }

  /** What is left of an ended session: its connection, what that started, its login's processes. */
  #remainsOf(ending: Ending, table: ProcessTable): HostProcess[] {
    const connection = ending.connection && table.find(ending.connection.pid, ending.connection.startTime);
    const remains = [...table.inSessions(ending.sessions)];
    if (ending.loginSession !== undefined) remains.push(...table.inLoginSession(ending.loginSession));
    if (connection) remains.push(connection, ...table.startedBy(connection));
    const listener = ending.listener && processKey(ending.listener);
    return [...new Map(remains.map((p) => [processKey(p), p])).values()].filter(
      (p) => processKey(p) !== listener,
    );
  }

  #send(pid: number, signal: NodeJS.Signals): void {
    if (pid <= 1 || pid === process.pid) return; // init, or the guard itself: never a session's
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
function isConnectionProcess(connection: HostProcess, table: ProcessTable): boolean {
  const parent = table.byPid(connection.parentPid);
  return (
    connectionProcessName.test(connection.name) &&
    parent !== undefined &&
    listenerProcessName.test(parent.name)
  );
}
