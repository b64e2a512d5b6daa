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
import type { Harness } from '../../test-support/portcullis-harness.js';
import { signedInCli, startSshHostsHarness } from '../../test-support/ssh-fixtures.js';
import { sshCommand, sshdSkipReason, startSshd, type TestSshd } from '../../test-support/sshd.js';
import { waitFor } from '../../test-support/wait-for.js';

const skip = sshdSkipReason();

describe('ssh resources with a real sshd', { skip }, () => {
  let h: Harness;
  let sshd: TestSshd;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-ssh-access-'));
    h = await startSshHostsHarness(dir, { source_addresses: ['127.0.0.1/32'], host: '127.0.0.1' });
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

  /** An active grant of hosts/admin for alice, through the API. */
  async function aliceGrant(alice: string): Promise<string> {
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'hosts',
      role: 'admin',
      duration: '30m',
      reason: 'INC-90 rotate logs',
    });
    assert.equal(created.body.state, 'active', JSON.stringify(created.body));
    return String(created.body.grant_id);
  }

  test('portcullis creds --ssh-key writes the key and certificate, and never over a key of your own', async () => {
    const cliAsAlice = await signedInCli(h, 'alice');
    const home = cliAsAlice.home;
    const cli = cliAsAlice.run;
    try {
      const grantId = await aliceGrant(await h.login('alice'));
      const key = join(home, 'portcullis-key');
      const written = await cli(['creds', grantId, '--ssh-key', key]);
      assert.equal(written.code, 0, written.stderr);
      assert.equal(statSync(key).mode & 0o777, 0o600);
      assert.match(
        written.stdout,
        new RegExp(`^ssh -i ${key} -o CertificateFile=${key}-cert\\.pub root@127\\.0\\.0\\.1\\n$`),
      );
      const used = sshCommand(sshd, { key, cert: `${key}-cert.pub` }, 'root', 'echo cli-ok');
      assert.equal(used.code, 0, used.stderr);
      assert.equal(used.stdout.trim(), 'cli-ok');
      assert.equal((await cli(['creds', grantId, '--ssh-key', key])).code, 0, 'its own key file is replaced');

      const own = join(home, 'id_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mine', '-f', own]);
      const before = readFileSync(own, 'utf8');
      const refused = await cli(['creds', grantId, '--ssh-key', own]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /is not a Portcullis key: choose another path, or --force to replace it/);
      assert.equal(readFileSync(own, 'utf8'), before, 'your own key is untouched');
      const forced = await cli(['creds', grantId, '--ssh-key', own, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(readFileSync(own, 'utf8'), before);
    } finally {
      cliAsAlice.close();
    }
  });

  test('bring your own key: a certificate for it, with the grant’s serial and end, audited', async () => {
    const cliAsAlice = await signedInCli(h, 'alice');
    const home = cliAsAlice.home;
    const cli = cliAsAlice.run;
    try {
      const alice = await h.login('alice');
      const grantId = await aliceGrant(alice);
      const key = join(home, 'id_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@laptop', '-f', key]);
      const privateBefore = readFileSync(key, 'utf8');

      const certified = await cli(['creds', grantId, '--ssh-public-key', `${key}.pub`, '--json']);
      assert.equal(certified.code, 0, certified.stderr);
      const answer = JSON.parse(certified.stdout) as Record<string, string>;
      assert.equal(answer.certificate_file, `${key}-cert.pub`);
      assert.equal(readFileSync(key, 'utf8'), privateBefore, 'the private key is not touched');
      const listing = execFileSync('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], { encoding: 'utf8' });
      const grantCertificate = (await h.api(alice, 'GET', `/api/v1/grants/${grantId}/credentials`)).body
        .credentials as Record<string, string>;
      const grantListing = execFileSync('ssh-keygen', ['-L', '-f', '-'], {
        input: String(grantCertificate.certificate),
        encoding: 'utf8',
      });
      const field = (text: string, name: string) => new RegExp(`${name}: (.*)`).exec(text)?.[1];
      assert.equal(field(listing, 'Serial'), field(grantListing, 'Serial'), 'one serial: one revocation');
      const until = (text: string) => field(text, 'Valid')?.split(' to ')[1];
      assert.equal(until(listing), until(grantListing), 'valid until the grant’s end');
      assert.match(listing, /Principals: \n\s+root\n/);
      const ownFingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${key}.pub`], {
        encoding: 'utf8',
      }).split(' ')[1];
      assert.equal(answer.fingerprint, ownFingerprint);

      const used = sshCommand(sshd, { key, cert: `${key}-cert.pub` }, 'root', 'echo own-key-ok');
      assert.equal(used.code, 0, used.stderr + sshd.log());
      assert.equal(used.stdout.trim(), 'own-key-ok');

      const dave = await h.login('dave');
      const events = (await h.api(dave, 'GET', '/api/v1/audit/events?limit=1000')).body.events as Record<
        string,
        unknown
      >[];
      const event = events.find((e) => e.type === 'ssh.key_certified' && e.grantId === grantId);
      assert.ok(event, `ssh.key_certified recorded: ${JSON.stringify(events.at(-1))}`);
      assert.equal((event.data as Record<string, unknown>).fingerprint, ownFingerprint);

      // Bad keys and someone else's grant.
      const rsa = join(home, 'id_rsa');
      execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
      for (const [body, message] of [
        [
          { public_key: readFileSync(`${rsa}.pub`, 'utf8') },
          /Only ssh-ed25519 keys can be certified, not "ssh-rsa"/,
        ],
        [
          { public_key: `${readFileSync(`${key}.pub`, 'utf8')}${readFileSync(`${key}.pub`, 'utf8')}` },
          /single line/,
        ],
        [{ public_key: 'ssh-ed25519 AAAAnotbase64!!' }, /not a well-formed ssh-ed25519 key/],
        [{ public_key: 'x', private_key: 'y' }, /./],
      ] as const) {
        const bad = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/ssh-certificate`, body);
        assert.equal(bad.status, 400, JSON.stringify(bad.body));
        assert.match(String(bad.body.detail), message);
      }
      const bob = await h.login('bob');
      const notTheirs = await h.api(bob, 'POST', `/api/v1/grants/${grantId}/ssh-certificate`, {
        public_key: readFileSync(`${key}.pub`, 'utf8'),
      });
      assert.equal(notTheirs.status, 404);

      // An existing certificate of your own is not overwritten without --force.
      writeFileSync(`${key}-cert.pub`, 'ssh-ed25519-cert-v01@openssh.com AAAA from-another-ca\n');
      const kept = await cli(['creds', grantId, '--ssh-public-key', `${key}.pub`]);
      assert.equal(kept.code, 2, kept.stderr);
      assert.match(readFileSync(`${key}-cert.pub`, 'utf8'), /from-another-ca/);

      const revoked = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/revoke`, { reason: 'done' });
      assert.equal(revoked.status, 200);
      const ended = await h.api(alice, 'POST', `/api/v1/grants/${grantId}/ssh-certificate`, {
        public_key: readFileSync(`${key}.pub`, 'utf8'),
      });
      assert.equal(ended.status, 409, JSON.stringify(ended.body));
    } finally {
      cliAsAlice.close();
    }
  });

  test('hosts of other resources and unknown resources get 404', async () => {
    assert.equal((await fetch(`${h.url}/ssh/nope/ca.pub`)).status, 404);
    assert.equal((await fetch(`${h.url}/ssh/nope/revoked.krl`)).status, 404);
  });
});
