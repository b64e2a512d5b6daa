/**
 * What the tests of `ssh` resources share: a harness with one resource `hosts` (role `admin`, login
 * `root`) whose certificate authority is a fresh `ssh-keygen` key, certificates made directly by
 * that authority (for validity periods no grant has), and a CLI signed in as a demo user.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshCertificateAuthority } from '../src/ssh/ssh-certificate-authority.js';
import { runCliProcess } from './cli-entry.js';
import { type Harness, startHarness } from './portcullis-harness.js';

/** engineering may have hosts/admin at once for up to an hour; admins may read the audit log. */
const policy = `
@id("eng-hosts-admin")
@auto_approve("true")
@approvals("0")
@max_duration("1h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"hosts/admin") when { context.reason != "" };

@id("admins-view-audit")
permit (principal in Portcullis::Group::"admins", action == Portcullis::Action::"view_audit", resource);
`;

/** The harness, its CA key at `dir/ca`; `ssh` adds to the resource's ssh settings. */
export async function startSshHostsHarness(dir: string, ssh: Record<string, unknown> = {}): Promise<Harness> {
  writeFileSync(join(dir, 'policy.cedar'), policy);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hosts-ca', '-f', join(dir, 'ca')]);
  return startHarness({
    storage: 'sqlite',
    policyFile: join(dir, 'policy.cedar'),
    configOverrides: {
      resources: [
        {
          id: 'hosts',
          kind: 'ssh',
          sensitivity: 'high',
          ssh: { ca_key: { file: join(dir, 'ca') }, extensions: ['permit-pty'], ...ssh },
          roles: [{ name: 'admin', grants: ['root'] }],
        },
      ],
    },
  });
}

/** A key for `root` and its certificate, signed by the CA at `dir/ca`, written to `dir/name`. */
/** alice's grant of hosts/admin (auto-approved in {@link startSshHostsHarness}), through the API. */
export async function requestHostsGrant(
  h: Harness,
  reason: string,
): Promise<{ alice: string; grantId: string }> {
  const alice = await h.login('alice');
  const created = await h.api(alice, 'POST', '/api/v1/requests', {
    resource: 'hosts',
    role: 'admin',
    duration: '30m',
    reason,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { alice, grantId: String(created.body.grant_id) };
}

export function writeCertifiedKey(
  dir: string,
  name: string,
  fields: { serial: bigint; keyId: string; validAfter: number; validBefore: number },
): { key: string; cert: string; certificate: string } {
  const authority = SshCertificateAuthority.fromPrivateKey(readFileSync(join(dir, 'ca'), 'utf8'));
  const issued = authority.issueUserCertificate({
    ...fields,
    principals: ['root'],
    criticalOptions: {},
    extensions: { 'permit-pty': '' },
    comment: name,
  });
  const key = join(dir, name);
  writeFileSync(key, issued.privateKey, { mode: 0o600 });
  writeFileSync(`${key}-cert.pub`, `${issued.certificate}\n`);
  return { key, cert: `${key}-cert.pub`, certificate: issued.certificate };
}

export interface SignedInCli {
  readonly home: string;
  run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  close(): void;
}

/** The real `portcullis` CLI, signed in as a demo user (password sign-in) in a home of its own. */
export async function signedInCli(h: Harness, user: string): Promise<SignedInCli> {
  const home = mkdtempSync(join(tmpdir(), 'pc-ssh-cli-'));
  const env = { PORTCULLIS_HOME: home, PORTCULLIS_SERVER: h.url };
  const login = await runCliProcess(
    ['login', '--username', user, '--password-stdin', '--no-browser'],
    env,
    `${user}-demo-password\n`,
  );
  if (login.code !== 0) throw new Error(`portcullis login as ${user} failed: ${login.stderr}`);
  return {
    home,
    run: (args) => runCliProcess(args, env),
    close: () => rmSync(home, { recursive: true, force: true }),
  };
}
