/**
 * An SSH host as ssh-guard's production setup has it, for end-to-end tests: a real Portcullis with
 * an `ssh` resource `hosts`, a real sshd (PAM in a mount namespace of its own, the session and
 * login hooks) trusting its authority, and the real `portcullis ssh-guard` CLI as root, reporting
 * sessions into the audit log.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningCli, startCli } from './cli-entry.js';
import type { Harness } from './portcullis-harness.js';
import { requestHostsGrant, startSshHostsHarness } from './ssh-fixtures.js';
import { startSshd, type TestSshd } from './sshd.js';
import { waitFor } from './wait-for.js';

const reportToken = 'ssh-guard-report-secret-0123456789abcdef';

export interface GuardedSshHost {
  readonly h: Harness;
  readonly sshd: TestSshd;
  readonly guard: RunningCli;
  /** A temporary directory for keys and files of the test's. */
  readonly dir: string;
  /** The session records (principals command) and login records (PAM hook) directories. */
  readonly records: string;
  readonly logins: string;
  /** A grant of hosts/admin through the API, with its key and certificate written to files. */
  grantKeyFiles(name: string): Promise<{ grantId: string; key: string; cert: string }>;
  /** The grant's ssh.session_* audit events, as [type, reason, host, connectionOpen]. */
  sessionEvents(grantId: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

/**
 * `loginCgroups`: the cgroup v2 directory given to the login hook and to the guard's
 * --login-cgroups, so each login runs in a control group of its own; `sshdConfig`: more
 * sshd_config lines.
 */
export async function startGuardedSshHost(
  options: { readonly loginCgroups?: string; readonly sshdConfig?: readonly string[] } = {},
): Promise<GuardedSshHost> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-ssh-guard-'));
  const recordsParent = mkdtempSync('/run/portcullis-guard-');
  chmodSync(recordsParent, 0o755);
  const records = join(recordsParent, 'sessions');
  const logins = join(recordsParent, 'logins');
  writeFileSync(join(dir, 'report-token'), reportToken, { mode: 0o600 });
  const h = await startSshHostsHarness(dir, { session_report_tokens: [{ file: join(dir, 'report-token') }] });
  const caKey = await (await fetch(`${h.url}/ssh/hosts/ca.pub`)).text();
  writeFileSync(join(dir, 'trusted-ca.pub'), caKey);
  const krl = Buffer.from(await (await fetch(`${h.url}/ssh/hosts/revoked.krl`)).arrayBuffer());
  const sshd = await startSshd({
    trustedCaKey: caKey,
    trustedCaKeysFile: join(dir, 'trusted-ca.pub'),
    emptyKrl: krl,
    sessionRecords: { directory: records, user: 'nobody' },
    loginRecords: logins,
    loginCgroups: options.loginCgroups,
    extraConfig: options.sshdConfig,
  });
  const guard = startCli(
    [
      'ssh-guard',
      ...['--server', h.url, '--resource', 'hosts'],
      ...['--ca-keys', join(dir, 'trusted-ca.pub'), '--revoked-keys', sshd.revokedKeysFile],
      ...['--records', records, '--record-user', 'nobody', '--login-records', logins],
      ...(options.loginCgroups ? ['--login-cgroups', options.loginCgroups] : []),
      ...['--pam-config', String(sshd.pamConfig), '--refresh', '1s'],
      ...['--report-token-file', join(dir, 'report-token'), '--host-name', 'guarded-host'],
      ...['--sshd-config', sshd.configFile],
    ],
    {},
  );
  await waitFor(`ssh-guard started (${guard.stdout()}${guard.stderr()})`, async () =>
    guard.stdout().includes('ssh-guard: started') ? true : undefined,
  );
  return {
    h,
    sshd,
    guard,
    dir,
    records,
    logins,
    async grantKeyFiles(name) {
      const { alice, grantId } = await requestHostsGrant(h, 'INC-91 disk full');
      const shown = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
      const credentials = shown.body.credentials as Record<string, string>;
      const key = join(dir, name);
      writeFileSync(key, String(credentials.private_key), { mode: 0o600 });
      writeFileSync(`${key}-cert.pub`, `${credentials.certificate}\n`);
      return { grantId, key, cert: `${key}-cert.pub` };
    },
    async sessionEvents(grantId) {
      const dave = await h.login('dave');
      const events = (await h.api(dave, 'GET', '/api/v1/audit/events?limit=1000')).body.events as Record<
        string,
        unknown
      >[];
      return events
        .filter((e) => e.grantId === grantId && String(e.type).startsWith('ssh.session_'))
        .map((e) => {
          const data = e.data as Record<string, unknown>;
          return [e.type, e.reason ?? null, data.host, data.connectionOpen ?? null];
        });
    },
    async close() {
      guard.child.kill('SIGTERM');
      await guard.exited;
      await sshd.close();
      await h.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(recordsParent, { recursive: true, force: true });
    },
  };
}

/** The pids whose command line holds a marker. */
export function processesMarked(marker: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}
