/**
 * The certificate authority's output as OpenSSH reads it: `ssh-keygen` lists the certificate with
 * exactly the fields it was given, derives the certified public key from the private key file,
 * loads a CA key it made itself, and finds revoked serials in the revocation list.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SshCertificateAuthority } from './ssh-certificate-authority.js';

const sshKeygenMissing = spawnSync('ssh-keygen', ['-?']).error !== undefined;
if (sshKeygenMissing && process.env.CI === 'true')
  throw new Error('no ssh-keygen (apt-get install openssh-client)');
const dir = mkdtempSync(join(tmpdir(), 'portcullis-ssh-ca-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function caMadeBySshKeygen(): SshCertificateAuthority {
  const file = join(dir, `ca-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-ca', '-f', file]);
  return SshCertificateAuthority.fromPrivateKey(readFileSync(file, 'utf8'));
}

function files(name: string, issued: { privateKey: string; certificate: string }) {
  const key = join(dir, name);
  writeFileSync(key, issued.privateKey, { mode: 0o600 });
  writeFileSync(`${key}-cert.pub`, `${issued.certificate}\n`);
  return { key, cert: `${key}-cert.pub` };
}

describe('SshCertificateAuthority', {
  skip: sshKeygenMissing && 'no ssh-keygen (apt-get install openssh-client)',
}, () => {
  const ca = caMadeBySshKeygen();
  const validAfter = Math.floor(Date.UTC(2026, 10, 24, 10, 0, 0) / 1000);
  const issued = ca.issueUserCertificate({
    serial: 18_446_744_073_709_551_000n,
    keyId: 'portcullis grant 6f1c',
    principals: ['deploy', 'ops'],
    validAfter,
    validBefore: validAfter + 1800,
    criticalOptions: { 'source-address': '10.0.0.0/8,127.0.0.1/32' },
    extensions: { 'permit-pty': '', 'permit-port-forwarding': '' },
    comment: 'grant-6f1c',
  });
  const { key, cert } = files('user', issued);

  it('writes a certificate ssh-keygen lists with the given fields', () => {
    const listing = execFileSync('ssh-keygen', ['-L', '-f', cert], { encoding: 'utf8' });
    assert.match(listing, /Type: ssh-ed25519-cert-v01@openssh\.com user certificate/);
    assert.match(listing, /Key ID: "portcullis grant 6f1c"/);
    assert.match(listing, /Serial: 18446744073709551000/);
    assert.match(listing, /Valid: from 2026-11-24T\d\d:00:00 to 2026-11-24T\d\d:30:00/);
    assert.match(listing, /Principals: \n\s+deploy\n\s+ops\n/);
    assert.match(listing, /Critical Options: \n\s+source-address 10\.0\.0\.0\/8,127\.0\.0\.1\/32\n/);
    assert.match(listing, /Extensions: \n\s+permit-port-forwarding\n\s+permit-pty\n/);
    assert.match(
      listing,
      new RegExp(`Public key: ED25519-CERT ${issued.fingerprint.replace(/[+/]/g, '\\$&')}`),
    );
    const caLine = ca.publicKeyLine('portcullis-ca');
    const caFingerprint = execFileSync('ssh-keygen', ['-l', '-f', '-'], { input: caLine, encoding: 'utf8' });
    assert.ok(listing.includes(`Signing CA: ED25519 ${caFingerprint.split(' ')[1]}`), listing);
  });

  it('writes a private key whose public half is the certified key', () => {
    const derived = execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim().split(' ');
    const certified = issued.certificate.split(' ');
    const fromCert = execFileSync('ssh-keygen', ['-l', '-f', cert], { encoding: 'utf8' });
    assert.equal(derived[0], 'ssh-ed25519');
    const fromKey = execFileSync('ssh-keygen', ['-l', '-f', '-'], {
      input: derived.join(' '),
      encoding: 'utf8',
    });
    assert.equal(fromKey.split(' ')[1], fromCert.split(' ')[1]);
    assert.equal(certified[0], 'ssh-ed25519-cert-v01@openssh.com');
  });

  it('revokes by serial in a list sshd loads', () => {
    const other = files(
      'other',
      ca.issueUserCertificate({
        serial: 7n,
        keyId: 'other',
        principals: ['ops'],
        validAfter,
        validBefore: validAfter + 60,
        criticalOptions: {},
        extensions: {},
        comment: 'other',
      }),
    );
    const krl = join(dir, 'revoked.krl');
    writeFileSync(krl, ca.revocationList([18_446_744_073_709_551_000n, 3n], Date.now(), 'test'));
    const revoked = spawnSync('ssh-keygen', ['-Q', '-f', krl, cert], { encoding: 'utf8' });
    assert.equal(revoked.status, 1, revoked.stdout + revoked.stderr);
    assert.match(revoked.stdout, /REVOKED/);
    const kept = spawnSync('ssh-keygen', ['-Q', '-f', krl, other.cert], { encoding: 'utf8' });
    assert.equal(kept.status, 0, kept.stdout + kept.stderr);
    const empty = join(dir, 'empty.krl');
    writeFileSync(empty, ca.revocationList([], Date.now(), 'none'));
    assert.equal(spawnSync('ssh-keygen', ['-Q', '-f', empty, cert]).status, 0);
  });

  it('refuses an encrypted OpenSSH key and a key that is not Ed25519', () => {
    const encrypted = join(dir, 'encrypted');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret phrase', '-f', encrypted]);
    assert.throws(() => SshCertificateAuthority.fromPrivateKey(readFileSync(encrypted, 'utf8')), /encrypted/);
    const rsa = join(dir, 'rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
    assert.throws(() => SshCertificateAuthority.fromPrivateKey(readFileSync(rsa, 'utf8')), /Ed25519/);
  });
});
