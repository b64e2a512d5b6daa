/**
 * The host's processes as `/proc` shows them (Linux), for ending an SSH connection with everything
 * it started. A process is named by its pid and its start time together: a pid alone may have been
 * reused by an unrelated process since it was recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface HostProcess {
  readonly pid: number;
  readonly parentPid: number;
  /** The session id (`setsid`): sshd starts each shell or command in a session of its own. */
  readonly sessionId: number;
  /** Clock ticks since boot: with the pid, names this process and no later one. */
  readonly startTime: string;
  /** The command name (`comm`), at most 15 bytes. */
  readonly name: string;
  /** It has ended but was not reaped yet: read tables leave it out. */
  readonly ended?: boolean;
  /** For in-memory tables only: the audit session (see {@link ProcessTable.loginSessionOf}). */
  readonly loginSession?: number;
}

/** `/proc/PID/sessionid` of a process no login has claimed: the audit session is unset. */
export const unsetLoginSession = 4294967295;

/**
 * One `/proc/PID/stat` line. The name (field 2) is in parentheses and may itself hold spaces and
 * parentheses, so fields are counted from the last closing one.
 */
export function parseProcStat(line: string): HostProcess | undefined {
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(') ');
  if (open < 1 || close < open) return undefined;
  const pid = Number(line.slice(0, open));
  const fields = line.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const parentPid = Number(fields[1]);
  const sessionId = Number(fields[3]);
  const startTime = fields[19];
  if (![pid, parentPid, sessionId].every(Number.isSafeInteger) || !startTime || !/^\d+$/.test(startTime))
    return undefined;
  return {
    pid,
    parentPid,
    sessionId,
    startTime,
    name: line.slice(open + 2, close),
    // A zombie (Z) or dead (X) process has ended: it runs nothing, and its parent may never reap it.
    ...(fields[0] === 'Z' || fields[0] === 'X' ? { ended: true } : {}),
  };
}

export interface ProcessTable {
  /** The process with this pid, if it is still the one that started at `startTime`. */
  find(pid: number, startTime: string): HostProcess | undefined;
  /** Whatever process has this pid now. */
  byPid(pid: number): HostProcess | undefined;
  /** Every process in these sessions. */
  inSessions(sessionIds: ReadonlySet<number>): readonly HostProcess[];
  /**
   * Everything a connection's process started: its descendants, and every process in the sessions
   * of those descendants (a command that ran `nohup … &` and was adopted by init stays in its
   * session unless it called `setsid` itself).
   */
  startedBy(root: HostProcess): readonly HostProcess[];
  /**
   * The kernel's audit session of a process (`/proc/PID/sessionid`): pam_loginuid starts a new one
   * for each login, every process of that login inherits it, and only a process holding
   * CAP_AUDIT_CONTROL can leave it (`setsid`, `nohup`, `tmux` and logging out do not). Undefined
   * when unset or unreadable.
   */
  loginSessionOf(process: HostProcess): number | undefined;
  /** Every process in this audit session. */
  inLoginSession(loginSession: number): readonly HostProcess[];
}

export function processTable(
  processes: readonly HostProcess[],
  readLoginSession: (process: HostProcess) => number | undefined = (p) => p.loginSession,
): ProcessTable {
  // Read lazily and once per table: most passes need no audit session at all.
  const loginSessions = new Map<number, number | undefined>();
  const loginSessionOf = (p: HostProcess) => {
    if (!loginSessions.has(p.pid)) loginSessions.set(p.pid, readLoginSession(p));
    return loginSessions.get(p.pid);
  };
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const children = new Map<number, HostProcess[]>();
  for (const p of processes) children.set(p.parentPid, [...(children.get(p.parentPid) ?? []), p]);
  return {
    find(pid, startTime) {
      const found = byPid.get(pid);
      return found?.startTime === startTime ? found : undefined;
    },
    byPid: (pid) => byPid.get(pid),
    inSessions: (sessionIds) => processes.filter((p) => sessionIds.has(p.sessionId)),
    startedBy(root) {
      const found = new Map<number, HostProcess>();
      const queue = [...(children.get(root.pid) ?? [])];
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (found.has(next.pid)) continue;
        found.set(next.pid, next);
        queue.push(...(children.get(next.pid) ?? []));
      }
      const sessions = new Set([...found.values()].map((p) => p.sessionId));
      sessions.delete(root.sessionId);
      for (const p of processes) if (sessions.has(p.sessionId) && p.pid !== root.pid) found.set(p.pid, p);
      return [...found.values()];
    },
    loginSessionOf,
    inLoginSession: (loginSession) => processes.filter((p) => loginSessionOf(p) === loginSession),
  };
}

/** Every process `/proc` lists now; processes that ended, or end while it is read, are left out. */
export function readProcessTable(proc = '/proc'): ProcessTable {
  const processes: HostProcess[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const parsed = parseProcStat(readFileSync(`${proc}/${entry}/stat`, 'latin1'));
      if (parsed && !parsed.ended) processes.push(parsed);
    } catch {
      // It ended between the listing and the read.
    }
  }
  return processTable(processes, (p) => readLoginSession(proc, p.pid));
}

/** `/proc/PID/sessionid`: undefined when unset or unreadable (the process has ended). */
export function readLoginSession(proc: string, pid: number): number | undefined {
  try {
    const id = Number(readFileSync(`${proc}/${pid}/sessionid`, 'latin1').trim());
    return Number.isSafeInteger(id) && id >= 0 && id !== unsetLoginSession ? id : undefined;
  } catch {
    return undefined;
  }
}
