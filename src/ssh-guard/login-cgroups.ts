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
 * connection), is never the login's.
 */
import { readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface LoginCgroups {
  /** The cgroup v2 path (as `/proc/PID/cgroup` names it) of a process; undefined when unreadable. */
  pathOf(pid: number): string | undefined;
  /** Whether processes are left in the group (its `populated` flag); false once it is gone. */
  populated(path: string): boolean;
  /** Kills every process of the group (`cgroup.kill`); false when the group or the file is gone. */
  kill(path: string): boolean;
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
export const hookCgroupPrefix = 'portcullis-login-';
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
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after || after.split(' ')[0] !== 'cgroup2') continue;
    const fields = before.split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root && mountPoint)
      return { mountPoint: unescapeMountinfo(mountPoint), root: unescapeMountinfo(root) };
  }
  return undefined;
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
      if (!dir) return false;
      try {
        return /^populated 1$/m.test(readFileSync(`${dir}/cgroup.events`, 'utf8'));
      } catch {
        return false;
      }
    },
    kill(path) {
      const dir = directory(path);
      if (!dir) return false;
      try {
        writeFileSync(`${dir}/cgroup.kill`, '1');
        return true;
      } catch {
        return false;
      }
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
