import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createSelfSignedCertificate } from '../../../test-support/self-signed-certificate.js';
import { tlsServerEndPoint } from './tls-server-end-point.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-cbind-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate made by openssl with these `req` key options and digest. */
function certificate(name: string, keyOptions: string[], digest: string[] = []): Buffer {
  const certFile = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...keyOptions,
      ...digest,
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return new X509Certificate(readFileSync(certFile)).raw;
}

describe('tls-server-end-point channel binding data', () => {
  it('is the SHA-256 of an ECDSA-with-SHA256 certificate', () => {
    const der = new X509Certificate(createSelfSignedCertificate(dir).cert).raw;
    assert.deepEqual(tlsServerEndPoint(der), createHash('sha256').update(der).digest());
  });

  it('follows the signature hash (SHA-384), and uses SHA-256 for SHA-1 (RFC 5929)', () => {
    const rsa = ['-newkey', 'rsa:2048'];
    const sha384 = certificate('rsa-sha384', rsa, ['-sha384']);
    assert.deepEqual(tlsServerEndPoint(sha384), createHash('sha384').update(sha384).digest());
    const sha1 = certificate('rsa-sha1', rsa, ['-sha1']);
    assert.deepEqual(tlsServerEndPoint(sha1), createHash('sha256').update(sha1).digest());
  });

  it('is undefined (null) for Ed25519, whose signature names no separate hash, and for garbage', () => {
    assert.equal(tlsServerEndPoint(certificate('ed25519', ['-newkey', 'ed25519'])), null);
    assert.equal(tlsServerEndPoint(Buffer.from('not a certificate')), null);
  });
});
