import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { JweSecretBox, SealedValueError } from './secret-box.js';

const kek = randomBytes(32);

function problemOf(expected: SealedValueError['problem']) {
  return (error: unknown) => {
    assert.ok(error instanceof SealedValueError, `expected SealedValueError, got ${String(error)}`);
    assert.equal(error.problem, expected);
    assert.equal(error.details.reason, expected);
    return true;
  };
}

describe('JweSecretBox', () => {
  it('round-trips a value as a dir/A256GCM compact JWE', async () => {
    const box = new JweSecretBox(kek);
    const sealed = await box.seal('postgres://alice:s3cret@db/prod');
    assert.equal(sealed.split('.').length, 5);
    assert.ok(!sealed.includes('s3cret'));
    const header = decodeProtectedHeader(sealed);
    assert.equal(header.alg, 'dir');
    assert.equal(header.enc, 'A256GCM');
    assert.equal(await box.open(sealed), 'postgres://alice:s3cret@db/prod');
  });

  it('seals the same plaintext differently each time (fresh IV)', async () => {
    const box = new JweSecretBox(kek);
    assert.notEqual(await box.seal('x'), await box.seal('x'));
  });

  it('round-trips with a purpose bound into the protected header', async () => {
    const box = new JweSecretBox(kek).withPurpose('signing-key');
    const sealed = await box.seal('{"d":"…"}');
    assert.equal(decodeProtectedHeader(sealed).purpose, 'signing-key');
    assert.equal(await box.open(sealed), '{"d":"…"}');
  });

  it('refuses to open with the wrong key, saying so', async () => {
    const sealed = await new JweSecretBox(kek).seal('secret');
    const other = new JweSecretBox(randomBytes(32));
    await assert.rejects(other.open(sealed), (error: unknown) => {
      problemOf('wrong_key')(error);
      assert.equal((error as SealedValueError).code, 'config_invalid');
      assert.match((error as Error).message, /different key-encryption key/);
      return true;
    });
  });

  it('reports a wrong key as tampering when the key id header was stripped', async () => {
    const sealed = await new JweSecretBox(kek).seal('secret');
    const other = new JweSecretBox(randomBytes(32));
    const [, ...rest] = sealed.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM' })).toString('base64url');
    await assert.rejects(other.open([header, ...rest].join('.')), problemOf('tampered'));
  });

  it('refuses a value sealed for another purpose, or for none', async () => {
    const credentials = await new JweSecretBox(kek, 'grant-credentials').seal('{"password":"x"}');
    const signingKeys = new JweSecretBox(kek, 'signing-key');
    await assert.rejects(signingKeys.open(credentials), problemOf('wrong_purpose'));
    const unbound = await new JweSecretBox(kek).seal('x');
    await assert.rejects(signingKeys.open(unbound), problemOf('wrong_purpose'));
    await assert.rejects(new JweSecretBox(kek).open(credentials), problemOf('wrong_purpose'));
  });

  it('refuses a value whose purpose header was rewritten (the header is authenticated)', async () => {
    const sealed = await new JweSecretBox(kek, 'grant-credentials').seal('x');
    const [protectedHeader, ...rest] = sealed.split('.');
    const header = JSON.parse(Buffer.from(protectedHeader as string, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...header, purpose: 'signing-key' })).toString('base64url');
    await assert.rejects(
      new JweSecretBox(kek, 'signing-key').open([forged, ...rest].join('.')),
      problemOf('tampered'),
    );
  });

  it('detects tampered ciphertext and tag', async () => {
    const box = new JweSecretBox(kek);
    const sealed = await box.seal('a value long enough to flip a byte in');
    const parts = sealed.split('.');
    const ciphertext = Buffer.from(parts[3] as string, 'base64url');
    ciphertext[0] = (ciphertext[0] as number) ^ 1;
    const tampered = [parts[0], parts[1], parts[2], ciphertext.toString('base64url'), parts[4]].join('.');
    await assert.rejects(box.open(tampered), problemOf('tampered'));
    const tag = Buffer.from(parts[4] as string, 'base64url');
    tag[0] = (tag[0] as number) ^ 1;
    const badTag = [parts[0], parts[1], parts[2], parts[3], tag.toString('base64url')].join('.');
    await assert.rejects(box.open(badTag), problemOf('tampered'));
  });

  it('refuses malformed input', async () => {
    const box = new JweSecretBox(kek);
    await assert.rejects(box.open('not a jwe'), problemOf('malformed'));
    await assert.rejects(box.open(''), problemOf('malformed'));
    const wrongAlg = Buffer.from(JSON.stringify({ alg: 'A256KW', enc: 'A256GCM' })).toString('base64url');
    await assert.rejects(box.open(`${wrongAlg}.a.b.c.d`), problemOf('malformed'));
  });

  it('accepts only a 32-byte key', () => {
    assert.throws(() => new JweSecretBox(randomBytes(16)), /32 bytes/);
    assert.throws(() => new JweSecretBox(kek, ''), TypeError);
  });

  it('copies the key, so later changes to the caller buffer do not affect it', async () => {
    const bytes = Uint8Array.from(kek);
    const box = new JweSecretBox(bytes);
    const sealed = await box.seal('x');
    bytes.fill(0);
    assert.equal(await box.open(sealed), 'x');
  });
});
