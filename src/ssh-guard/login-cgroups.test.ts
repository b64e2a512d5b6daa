/**
 * Login control groups: the parsers over fixed text, and the host adapter against the machine's
 * real cgroup v2 file system (as root), where a process that forks and exits every millisecond —
 * which signals sent pid by pid miss — is killed whole.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { waitFor } from '../../test-support/wait-for.js';
import { hostLoginCgroups, isLoginCgroup, parseCgroup2Mount, parseProcCgroup } from './login-cgroups.js';

describe('login control groups, parsed', () => {
  test('the cgroup v2 line of /proc/PID/cgroup, on hybrid and unified hosts', () => {
    assert.equal(
      parseProcCgroup('12:pids:/\n1:name=systemd:/x\n0::/user.slice/session-4.scope\n'),
      '/user.slice/session-4.scope',
    );
    assert.equal(parseProcCgroup('0::/\n'), '/');
    assert.equal(parseProcCgroup('4:memory:/a\n'), undefined);
  });

  test('the cgroup v2 mount from mountinfo, escapes undone', () => {
    const mountinfo = [
      '31 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    assert.deepEqual(parseCgroup2Mount(mountinfo), { mountPoint: '/sys/fs/cgroup/unified', root: '/' });
    assert.deepEqual(parseCgroup2Mount('7 1 0:9 /inner /mnt/cg\\040v2 rw shared:1 - cgroup2 none rw'), {
      mountPoint: '/mnt/cg v2',
      root: '/inner',
    });
    assert.equal(parseCgroup2Mount('31 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'), undefined);
  });

  test('only groups named after the login’s own audit session are the login’s', () => {
    assert.ok(isLoginCgroup('/user.slice/user-1000.slice/session-7.scope', 7));
    assert.ok(isLoginCgroup('/portcullis-ssh/portcullis-login-7', 7));
    assert.ok(!isLoginCgroup('/user.slice/user-1000.slice/session-70.scope', 7));
    assert.ok(!isLoginCgroup('/portcullis-ssh/portcullis-login-17', 7));
    assert.ok(!isLoginCgroup('/system.slice/ssh.service', 7));
    assert.ok(!isLoginCgroup('/', 7));
  });
});

const mount = existsSync('/proc/self/mountinfo')
  ? parseCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))
  : undefined;
const writable = (() => {
  if (!mount || process.getuid?.() !== 0 || mount.root !== '/') return false;
  const probe = `${mount.mountPoint}/portcullis-probe-${process.pid}`;
  try {
    mkdirSync(probe);
    const ok = existsSync(`${probe}/cgroup.kill`);
    rmdirSync(probe);
    return ok;
  } catch {
    return false;
  }
})();
const unavailable = writable
  ? undefined
  : 'needs root and a writable cgroup v2 file system with cgroup.kill (Linux 5.14+)';

describe('login control groups on this host', () => {
  const hookDirectory = mount && `${mount.mountPoint}/portcullis-test-${process.pid}`;
  after(async () => {
    if (!hookDirectory || !existsSync(hookDirectory)) return;
    for (const name of readdirSync(hookDirectory).filter((n) => n.startsWith('portcullis-login-'))) {
      const dir = `${hookDirectory}/${name}`;
      writeFileSync(`${dir}/cgroup.kill`, '1');
      await waitFor(`${name} to empty`, async () =>
        readFileSync(`${dir}/cgroup.procs`, 'utf8') === '' ? true : undefined,
      );
      rmdirSync(dir);
    }
    rmdirSync(hookDirectory);
  });

  /**
   * Starts `command` in an audit session of its own (root may set a process's login uid), moved
   * into the group `name` of the hook directory; resolves to that audit session.
   */
  async function startInGroup(name: string, command: string): Promise<number> {
    const child = spawn(
      'sh',
      [
        '-c',
        `echo 0 > /proc/self/loginuid && echo $$ > ${hookDirectory}/${name}/cgroup.procs && cat /proc/self/sessionid && echo && exec ${command}`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'], detached: true },
    );
    child.unref();
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code} before it ran`)));
    });
    child.stdout.destroy();
    return Number(line);
  }

  test('a process that forks and exits every millisecond is killed whole; empty groups are swept', {
    skip: process.env.CI === 'true' ? false : unavailable,
  }, async () => {
    assert.ok(writable && hookDirectory, unavailable);
    let now = Date.now();
    const cgroups = hostLoginCgroups({ hookDirectory, now: () => now });
    assert.ok(cgroups);
    const group = cgroups.hookGroup(1);
    assert.equal(group, `/portcullis-test-${process.pid}/portcullis-login-1`);
    mkdirSync(`${hookDirectory}/portcullis-login-1`, { recursive: true });
    mkdirSync(`${hookDirectory}/portcullis-login-2`);

    // A forking job as the hook would leave it: its first process put in the group before it starts.
    const session = await startInGroup(
      'portcullis-login-1',
      `perl -e 'while (1) { select(undef, undef, undef, 0.001); exit if fork }'`,
    );
    await waitFor('the job to run in its group', async () => (cgroups.populated(group) ? true : undefined));

    cgroups.sweepHookGroups(60_000);
    assert.ok(existsSync(`${hookDirectory}/portcullis-login-2`), 'a young empty group may await its login');
    now += 120_000;
    cgroups.sweepHookGroups(60_000);
    assert.ok(existsSync(`${hookDirectory}/portcullis-login-1`), 'a group in use stays');
    assert.ok(!existsSync(`${hookDirectory}/portcullis-login-2`), 'an old empty group is removed');

    const signalled: number[] = [];
    const outcome = await cgroups.killLogin(group, session, {
      spare: () => false,
      kill: (pid) => signalled.push(pid),
    });
    assert.equal(outcome?.as, 'group');
    assert.equal(outcome?.others, 0);
    assert.deepEqual(signalled, [], 'killed whole, not pid by pid');
    await waitFor('the group to empty', async () => (cgroups.populated(group) ? undefined : true), 3000);
    assert.equal(readFileSync(`${hookDirectory}/portcullis-login-1/cgroup.procs`, 'utf8'), '');
    assert.match(readFileSync(`${hookDirectory}/portcullis-login-1/cgroup.freeze`, 'utf8'), /^0/, 'thawed');
    cgroups.sweepHookGroups(60_000);
    assert.ok(!existsSync(`${hookDirectory}/portcullis-login-1`));
    assert.equal(await cgroups.killLogin(group, session, { spare: () => false, kill: () => {} }), undefined);
  });

  test('a group that also holds another login’s processes: only the login’s own are killed, the rest thawed', {
    skip: process.env.CI === 'true' ? false : unavailable,
  }, async () => {
    assert.ok(writable && hookDirectory, unavailable);
    const cgroups = hostLoginCgroups({ hookDirectory });
    assert.ok(cgroups);
    mkdirSync(`${hookDirectory}/portcullis-login-3`, { recursive: true });
    const group = cgroups.hookGroup(3) ?? '';
    // As when a root login restarted a daemon from its group, and the daemon served another login.
    const mine = await startInGroup('portcullis-login-3', 'sleep 3600');
    const theirs = await startInGroup('portcullis-login-3', 'sleep 3600');
    const pidsOf = () =>
      readFileSync(`${hookDirectory}/portcullis-login-3/cgroup.procs`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    const sessionOf = (pid: number) => Number(readFileSync(`/proc/${pid}/sessionid`, 'utf8'));
    assert.equal(pidsOf().length, 2);
    const signalled: number[] = [];
    const outcome = await cgroups.killLogin(group, mine, {
      spare: () => false,
      kill: (pid) => {
        signalled.push(pid);
        process.kill(pid, 'SIGKILL');
      },
    });
    assert.deepEqual(outcome, { as: 'members', processes: 1, others: 1 });
    assert.deepEqual(signalled.map(sessionOf), [mine]);
    await waitFor('the login’s process to go', async () => (pidsOf().length === 1 ? true : undefined));
    assert.equal(sessionOf(pidsOf()[0] ?? 0), theirs, 'the other login’s process runs on');
    assert.match(readFileSync(`${hookDirectory}/portcullis-login-3/cgroup.freeze`, 'utf8'), /^0/, 'thawed');
  });

  test('a hook directory outside the cgroup v2 file system is refused', () => {
    assert.equal(hostLoginCgroups({ hookDirectory: '/tmp/not-cgroups' }), undefined);
  });
});
