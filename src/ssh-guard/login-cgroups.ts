/**
 * A login's own control group (cgroup v2), for ending all of it at once. Signals sent process by
 * process can miss one that forks and exits every millisecond: it is never in the process table and
 * at its own pid at the same time. The kernel's `cgroup.kill` takes every process of a group,
 * including those forked while it runs, and nobody without write access to the groups' common
 * parent (root's) can move a process out.
 *
 * A login has a group of its own when sshd's PAM session put it in one before anything of the
 * user's ran: logind's `session-<audit session>.scope` (pam_systemd names the session after the
 * audit session), or `portcullis-login-<audit session>`, made by the Portcullis session hook when
 * given a cgroup directory (hosts without logind). A group named after any other audit session, or
 * named otherwise (sshd's own `ssh.service`, which also holds the listener and every other
 * connection), is never the login's. Even the login's group may hold more than the login (a root
 * login that restarted a daemon leaves it there, and the daemon's own logins with it), so a group is
 * frozen and read before it is killed: whole only when every process in it is of the login.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readLoginSession } from './host-processes.js';

/** How long a group may take to freeze before it is read anyway. */
const freezeTimeoutMs = 500;

/** What ending a login's group did. */
export interface GroupKill {
  /** `group`: killed whole (`cgroup.kill`); `members`: only the login's own processes, signalled. */
  readonly as: 'group' | 'members';
  /** Processes of the login in it. */
  readonly processes: number;
  /** Processes in it that are not the login's (another audit session) or are spared: left running. */
  readonly others: number;
}

export interface LoginCgroups {
  /** The cgroup v2 path (as `/proc/PID/cgroup` names it) of a process; undefined when unreadable. */
  pathOf(pid: number): string | undefined;
  /** Whether processes are left in the group (its `populated` flag); false once it is gone. */
  populated(path: string): boolean;
  /**
   * Ends a login's processes in its group: freezes the group (nothing in it can fork any more),
   * reads its processes and their audit sessions, then kills the group whole when all are the
   * login's and none is spared, or else `kill`s the login's own one by one; then thaws it.
   * Undefined when the group is gone; throws when the group cannot be frozen or killed.
   */
  killLogin(
    path: string,
    loginSession: number,
    options: { readonly spare: (pid: number) => boolean; readonly kill: (pid: number) => void },
  ): Promise<GroupKill | undefined>;
  /** logind's scope of this audit session (`/user.slice/user-UID.slice/session-S.scope`), if it exists. */
  logindScope(loginSession: number): string | undefined;
  /** The group the session hook makes for this audit session; undefined without a hook directory. */
  hookGroup(loginSession: number): string | undefined;
  /**
   * Removes the session hook's groups that are empty and older than `minAgeMs` (a younger one may
   * be waiting for its login's process); a group still in use stays.
   */
  sweepHookGroups(minAgeMs: number): void;
}

/** The groups that belong to the login with this audit session alone. */
export function isLoginCgroup(path: string, loginSession: number): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return name === `session-${loginSession}.scope` || name === `${hookCgroupPrefix}${loginSession}`;
}

/** Made by contrib/ssh/portcullis-ssh-login; only these are the guard's to remove. */
const hookCgroupPrefix = 'portcullis-login-';
const hookCgroupName = /^portcullis-login-\d{1,10}$/;

/** The cgroup v2 line of `/proc/PID/cgroup` (`0::/path`). */
export function parseProcCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::/')) return line.slice(3);
  return undefined;
}

/**
 * Where cgroup v2 is mounted, from `/proc/self/mountinfo`: its mount point and the path it shows
 * as its root (`/`, unless mounted from inside a group).
 */
export function parseCgroup2Mount(mountinfo: string): { mountPoint: string; root: string } | undefined {
  const mounts: { mountPoint: string; root: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after || after.split(' ')[0] !== 'cgroup2') continue;
    const fields = before.split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root && mountPoint)
      mounts.push({ mountPoint: unescapeMountinfo(mountPoint), root: unescapeMountinfo(root) });
  }
  // A bind mount of one group may come first: the whole hierarchy is the one to use.
  return mounts.find((mount) => mount.root === '/') ?? mounts[0];
}

function hasEvent(dir: string, event: string): boolean {
  try {
    return readFileSync(`${dir}/cgroup.events`, 'utf8').split('\n').includes(event);
  } catch {
    return false;
  }
}

/** The processes of a group and of the groups below it. */
function pidsUnder(dir: string): number[] {
  const pids = readFileSync(`${dir}/cgroup.procs`, 'utf8')
    .split('\n')
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) pids.push(...pidsUnder(`${dir}/${entry.name}`));
  return pids;
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/**
 * The host's groups through `/proc` and the cgroup v2 file system; undefined without cgroup v2.
 * `hookDirectory` is the directory (on the cgroup v2 file system) given to the session hook.
 */
export function hostLoginCgroups(
  options: { readonly hookDirectory?: string; readonly proc?: string; readonly now?: () => number } = {},
): LoginCgroups | undefined {
  const proc = options.proc ?? '/proc';
  const now = options.now ?? Date.now;
  let mount: ReturnType<typeof parseCgroup2Mount>;
  try {
    mount = parseCgroup2Mount(readFileSync(`${proc}/self/mountinfo`, 'utf8'));
  } catch {
    return undefined;
  }
  if (!mount) return undefined;
  const { mountPoint, root } = mount;
  const directory = (path: string): string | undefined => {
    if (path.split('/').includes('..')) return undefined;
    if (root === '/') return `${mountPoint}${path}`;
    return path === root || path.startsWith(`${root}/`)
      ? `${mountPoint}${path.slice(root.length)}`
      : undefined;
  };
  const hookDirectory = options.hookDirectory && resolve(options.hookDirectory);
  let hookPath: string | undefined;
  if (hookDirectory !== undefined) {
    if (hookDirectory !== mountPoint && !hookDirectory.startsWith(`${mountPoint}/`)) return undefined;
    const relative = hookDirectory.slice(mountPoint.length);
    hookPath = root === '/' ? relative || '/' : `${root}${relative}`;
  }
  return {
    pathOf(pid) {
      try {
        return parseProcCgroup(readFileSync(`${proc}/${pid}/cgroup`, 'utf8'));
      } catch {
        return undefined;
      }
    },
    populated(path) {
      const dir = directory(path);
      return dir !== undefined && hasEvent(dir, 'populated 1');
    },
    async killLogin(path, loginSession, { spare, kill }) {
      const dir = directory(path);
      if (!dir) throw new Error(`${path} is outside the cgroup v2 mount ${mountPoint}`);
      try {
        writeFileSync(`${dir}/cgroup.freeze`, '1');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      try {
        for (let waited = 0; waited < freezeTimeoutMs && !hasEvent(dir, 'frozen 1'); waited += 5)
          await sleep(5);
        const pids = pidsUnder(dir);
        const own = pids.filter((pid) => readLoginSession(proc, pid) === loginSession && !spare(pid));
        if (own.length === pids.length) {
          if (pids.length > 0) writeFileSync(`${dir}/cgroup.kill`, '1');
          return { as: 'group', processes: pids.length, others: 0 };
        }
        for (const pid of own) kill(pid);
        return { as: 'members', processes: own.length, others: pids.length - own.length };
      } finally {
        try {
          writeFileSync(`${dir}/cgroup.freeze`, '0');
        } catch {
          // Gone with its processes.
        }
      }
    },
    logindScope(loginSession) {
      if (root !== '/') return undefined;
      let slices: string[];
      try {
        slices = readdirSync(`${mountPoint}/user.slice`).filter((name) => /^user-\d+\.slice$/.test(name));
      } catch {
        return undefined;
      }
      const slice = slices.find((name) =>
        existsSync(`${mountPoint}/user.slice/${name}/session-${loginSession}.scope`),
      );
      return slice && `/user.slice/${slice}/session-${loginSession}.scope`;
    },
    hookGroup: (loginSession) =>
      hookPath === undefined
        ? undefined
        : `${hookPath.replace(/\/$/, '')}/${hookCgroupPrefix}${loginSession}`,
    sweepHookGroups(minAgeMs) {
      if (hookDirectory === undefined) return;
      let names: string[];
      try {
        names = readdirSync(hookDirectory);
      } catch {
        return;
      }
      for (const name of names) {
        if (!hookCgroupName.test(name)) continue;
        const dir = `${hookDirectory}/${name}`;
        try {
          if (now() - statSync(dir).ctimeMs < minAgeMs) continue;
          // Refused (EBUSY) while processes are left in it.
          rmdirSync(dir);
        } catch {
          // In use, or gone already.
        }
      }
    },
  };
}
