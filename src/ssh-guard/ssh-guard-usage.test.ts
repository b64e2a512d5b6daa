/**
 * `portcullis ssh-guard` refuses to run where it could not end sessions safely: the real CLI, each
 * case a usage error (exit 2) with the reason, checked before anything is touched on the host.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCliProcess } from '../../test-support/cli-entry.js';

describe('ssh-guard refuses what it cannot do safely', () => {
  test('plain http off loopback, authorities it cannot read, an sshd that would not record logins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-ssh-guard-usage-'));
    try {
      writeFileSync(join(dir, 'rsa-only.pub'), 'ssh-rsa AAAAB3NzaC1yc2E= only\n');
      // A host whose sshd would let a certificate in without recording it.
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ca')]);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')]);
      const caKeys = join(dir, 'ca.pub');
      // An sshd set up right, and PAM stacks with the hook missing or after pam_env.
      const sshdConfig = (name: string, lines: string[]) => {
        const file = join(dir, name);
        const common = [
          `HostKey ${join(dir, 'host')}`,
          `TrustedUserCAKeys ${caKeys}`,
          `RevokedKeys ${join(dir, 'revoked.krl')}`,
        ];
        writeFileSync(file, [...common, ...lines, ''].join('\n'));
        return file;
      };
      const goodConfig = sshdConfig('sshd_config_good', [
        'AuthorizedPrincipalsCommand /usr/local/libexec/portcullis-ssh-session %u %k',
        'AuthorizedPrincipalsCommandUser nobody',
        'UsePAM yes',
        'ExposeAuthInfo yes',
      ]);
      const hookLine =
        'session required pam_exec.so type=open_session /usr/local/libexec/portcullis-ssh-login';
      const noHook = join(dir, 'pam-no-hook');
      writeFileSync(noHook, 'session required pam_loginuid.so\nsession required pam_env.so user_readenv=1\n');
      const afterEnv = join(dir, 'pam-after-env');
      writeFileSync(
        afterEnv,
        `session required pam_loginuid.so\nsession required pam_env.so user_readenv=1\n${hookLine}\n`,
      );
      const authEnv = join(dir, 'pam-auth-env');
      writeFileSync(
        authEnv,
        `session required pam_loginuid.so\n${hookLine}\nauth optional pam_env.so user_readenv=1\n`,
      );
      const closeSession = join(dir, 'pam-close-session');
      writeFileSync(
        closeSession,
        `session required pam_loginuid.so\n${hookLine.replace('open_session', 'close_session')}\n`,
      );
      const beforeLoginuid = join(dir, 'pam-before-loginuid');
      writeFileSync(beforeLoginuid, `${hookLine}\nsession required pam_loginuid.so\n`);
      // The hook's second argument (its cgroup directory) and --login-cgroups must agree.
      const notCgroups = join(dir, 'not-cgroups');
      const hookWithCgroups = join(dir, 'pam-hook-cgroups');
      writeFileSync(
        hookWithCgroups,
        `session required pam_loginuid.so\n${hookLine} /run/logins ${notCgroups}\n`,
      );
      const hookWithout = join(dir, 'pam-hook');
      writeFileSync(hookWithout, `session required pam_loginuid.so\n${hookLine}\n`);
      const readable = join(dir, 'readable-token');
      writeFileSync(readable, 'a'.repeat(40), { mode: 0o644 });
      const short = join(dir, 'short-token');
      writeFileSync(short, 'too-short', { mode: 0o600 });
      const principalsFileConfig = sshdConfig('sshd_config', [
        'AuthorizedPrincipalsFile /etc/ssh/principals/%u',
      ]);
      const base = [
        'ssh-guard',
        '--resource',
        'hosts',
        '--revoked-keys',
        join(dir, 'revoked.krl'),
        '--record-user',
        'nobody',
      ];
      const https = [...base, '--server', 'https://access.example.com'];
      const withCa = [...https, '--ca-keys', caKeys];
      const cases: [string[], RegExp][] = [
        [
          [...base, '--server', 'http://access.example.com', '--ca-keys', join(dir, 'rsa-only.pub')],
          /https only/,
        ],
        [[...https, '--ca-keys', join(dir, 'missing.pub')], /Cannot read --ca-keys/],
        [[...https, '--ca-keys', join(dir, 'rsa-only.pub')], /no ssh-ed25519 key/],
        [[...https, '--ca-keys', join(dir, 'rsa-only.pub'), '--refresh', 'soon'], /--refresh/],
        [['ssh-guard', '--server', 'https://access.example.com', '--resource', 'hosts'], /required option/],
        [
          [...withCa, '--sshd-config', principalsFileConfig],
          /AuthorizedPrincipalsCommand must be .*AuthorizedPrincipalsFile must not be set.*UsePAM must be yes.*ExposeAuthInfo must be yes/s,
        ],
        [[...withCa, '--sshd-config', join(dir, 'none')], /Cannot read sshd's settings/],
        [
          [...withCa, '--records', join(dir, 'records'), '--login-records', join(dir, 'records')],
          /--login-records must be a directory of its own/,
        ],
        ...(
          [
            [noHook, /not set up for ssh-guard: no "session required pam_exec.so/],
            [afterEnv, /the hook must come right after pam_loginuid.so: before pam_env.so/],
            [authEnv, /no pam_env.so with user_readenv=1 may run before the hook/],
            [closeSession, /not set up for ssh-guard: no "session required pam_exec.so/],
            [beforeLoginuid, /pam_loginuid.so must come before the hook/],
            [join(dir, 'no-such-pam'), /Cannot read --pam-config/],
          ] as const
        ).map(([pamConfig, message]): [string[], RegExp] => [
          [...withCa, '--sshd-config', goodConfig, '--pam-config', pamConfig],
          message,
        ]),
        [
          [...withCa, '--sshd-config', goodConfig, '--pam-config', hookWithCgroups],
          /puts logins in control groups under .*not-cgroups: pass that directory as --login-cgroups/,
        ],
        [
          [
            ...withCa,
            '--sshd-config',
            goodConfig,
            '--pam-config',
            hookWithout,
            '--login-cgroups',
            notCgroups,
          ],
          /the hook must be given --login-cgroups as its second argument/,
        ],
        [
          [
            ...withCa,
            '--sshd-config',
            goodConfig,
            '--pam-config',
            hookWithCgroups,
            '--login-cgroups',
            notCgroups,
          ],
          /--login-cgroups .*not-cgroups must be a directory on the cgroup v2 file system/,
        ],
        [
          [...withCa, '--connections-only', '--login-cgroups', notCgroups],
          /cannot go with --connections-only/,
        ],
        [[...withCa, '--report-token-file', readable], /must be readable by its owner only/],
        [[...withCa, '--report-token-file', short], /at least 32 characters/],
        [[...withCa, '--report-token-file', join(dir, 'no-such-token')], /Cannot read --report-token-file/],
      ];
      for (const [args, message] of cases) {
        const result = await runCliProcess(args, { PORTCULLIS_HOME: dir });
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, message);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
