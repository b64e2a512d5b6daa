/**
 * SSH access end to end: a real OpenSSH server trusts the certificate authority Portcullis serves
 * for an `ssh` resource; a person gets access through the API, logs in with the key and certificate
 * shown to them, and sshd logs the grant in the certificate's key id. Once the grant is revoked and
 * the host has fetched the revocation list, the same certificate is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { sshCommand, sshdSkipReason, startSshd, type TestSshd } from '../../test-support/sshd.js';
import { waitFor } from '../../test-support/wait-for.js';

const policy = `
@id("eng-hosts-admin")
@auto_approve("true")
@approvals("0")
@max_duration("1h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"hosts/admin") when { context.reason != "" };
`;

const skip = sshdSkipReason();

describe('ssh resources with a real sshd', { skip }, () => {
  let h: Harness;
  let sshd: TestSshd;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-ssh-access-'));
    writeFileSync(join(dir, 'policy.cedar'), policy);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hosts-ca', '-f', join(dir, 'ca')]);
    h = await startHarness({
      storage: 'sqlite',
      policyFile: join(dir, 'policy.cedar'),
      configOverrides: {
        resources: [
          {
            id: 'hosts',
            kind: 'ssh',
            sensitivity: 'high',
            ssh: {
              ca_key: { file: join(dir, 'ca') },
              extensions: ['permit-pty'],
              source_addresses: ['127.0.0.1/32'],
              host: '127.0.0.1',
            },
            roles: [{ name: 'admin', grants: ['root'] }],
          },
        ],
      },
    });
    const caKey = await (await fetch(`${h.url}/ssh/hosts/ca.pub`)).text();
    const krl = Buffer.from(await (await fetch(`${h.url}/ssh/hosts/revoked.krl`)).arrayBuffer());
    sshd = await startSshd({ trustedCaKey: caKey, emptyKrl: krl });
  });
  after(async () => {
    await sshd?.close();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('log in with the certificate of a grant; refused once the grant is revoked', async () => {
    const caKey = await fetch(`${h.url}/ssh/hosts/ca.pub`);
    assert.equal(caKey.status, 200);
    const expectedCa = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'ca')], { encoding: 'utf8' }).split(
      ' ',
    );
    assert.deepEqual((await caKey.text()).split(' ').slice(0, 2), expectedCa.slice(0, 2));

    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'hosts',
      role: 'admin',
      duration: '30m',
      reason: 'INC-88 rotate the disk',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.state, 'active', JSON.stringify(created.body));
    const grantId = String(created.body.grant_id);
    const shown = await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    const credentials = shown.body.credentials as Record<string, string>;
    assert.equal(credentials.login, 'root');
    assert.match(
      String(credentials.ssh_command),
      /^ssh -i KEY_FILE -o CertificateFile=CERT_FILE root@127\.0\.0\.1$/,
    );
    const key = join(dir, 'id');
    writeFileSync(key, String(credentials.private_key), { mode: 0o600 });
    writeFileSync(`${key}-cert.pub`, `${credentials.certificate}\n`);
    const files = { key, cert: `${key}-cert.pub` };

    const listing = execFileSync('ssh-keygen', ['-L', '-f', files.cert], { encoding: 'utf8' });
    const grant = (await h.api(alice, 'GET', `/api/v1/grants/${grantId}`)).body;
    const until = new Date(String(grant.expires_at)).toISOString().slice(0, 16);
    assert.ok(
      listing.includes(until.replace('Z', '')),
      `valid until the grant's end (${until}):\n${listing}`,
    );
    assert.match(listing, /source-address 127\.0\.0\.1\/32/);

    const login = sshCommand(sshd, files, 'root', 'echo portcullis-ok');
    assert.equal(login.code, 0, login.stderr + sshd.log());
    assert.equal(login.stdout.trim(), 'portcullis-ok');
    const keyIdLogged = new RegExp(`ID portcullis grant ${grantId} for demo:`);
    await waitFor('sshd logging the key id', async () => (keyIdLogged.test(sshd.log()) ? true : undefined));
    const otherLogin = sshCommand(sshd, files, 'nobody', 'true');
    assert.notEqual(otherLogin.code, 0, 'only the role’s logins');

    const revoked = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const krl = await fetch(`${h.url}/ssh/hosts/revoked.krl`);
    assert.equal(krl.headers.get('content-type'), 'application/octet-stream');
    writeFileSync(sshd.revokedKeysFile, Buffer.from(await krl.arrayBuffer()));
    const refused = sshCommand(sshd, files, 'root', 'echo portcullis-ok');
    assert.notEqual(refused.code, 0);
    assert.equal(refused.stdout, '');
    await waitFor('sshd logging the revocation', async () =>
      /revoked/i.test(sshd.log()) ? true : undefined,
    );
  });

  test('hosts of other resources and unknown resources get 404', async () => {
    assert.equal((await fetch(`${h.url}/ssh/nope/ca.pub`)).status, 404);
    assert.equal((await fetch(`${h.url}/ssh/nope/revoked.krl`)).status, 404);
  });
});
