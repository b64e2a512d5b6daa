/**
 * An SSH user certificate authority over one Ed25519 key (docs/provisioners.md#ssh): issues a fresh
 * key pair with a certificate for it, and writes the revocation list of certificates ended early.
 * Signatures are node:crypto's; the formats are ssh-wire.ts'.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import {
  authorizedKeyLine,
  certificateLine,
  ed25519PublicKeyBlob,
  ed25519SeedOfOpenSshKey,
  keyRevocationList,
  openSshPrivateKey,
  type UserCertificateFields,
  userCertificateBody,
} from './ssh-wire.js';

/** The fixed DER prefix of a PKCS #8 Ed25519 private key (RFC 8410), followed by the 32-byte seed. */
const pkcs8Ed25519Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

/** What a certificate says, besides the key it certifies. */
export type CertificateRequest = Omit<UserCertificateFields, 'publicKey' | 'nonce' | 'caPublicKey'> & {
  readonly comment: string;
};

export interface IssuedUserCertificate {
  /** The new private key, `openssh-key-v1`, unencrypted (the holder's to protect). */
  readonly privateKey: string;
  /** `ssh-ed25519-cert-v01@openssh.com AAAA… comment`: the `-cert.pub` file. */
  readonly certificate: string;
  /** `SHA256:…` of the certified public key, as sshd logs it. */
  readonly fingerprint: string;
}

function rawKeys(key: KeyObject): { seed: Buffer; publicKey: Buffer } {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.d || !jwk.x)
    throw new TypeError('the SSH certificate authority key must be Ed25519');
  return { seed: Buffer.from(jwk.d, 'base64url'), publicKey: Buffer.from(jwk.x, 'base64url') };
}

export class SshCertificateAuthority {
  readonly #key: KeyObject;
  /** The CA's raw Ed25519 public key. */
  readonly publicKey: Buffer;

  private constructor(key: KeyObject) {
    this.#key = key;
    this.publicKey = rawKeys(key).publicKey;
  }

  /** From a PKCS #8 PEM Ed25519 key or an unencrypted OpenSSH one (`ssh-keygen -t ed25519 -N ''`). */
  static fromPrivateKey(text: string): SshCertificateAuthority {
    if (text.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) {
      const der = Buffer.concat([pkcs8Ed25519Prefix, ed25519SeedOfOpenSshKey(text)]);
      return new SshCertificateAuthority(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
    }
    return new SshCertificateAuthority(createPrivateKey(text));
  }

  /** For sshd's `TrustedUserCAKeys`. */
  publicKeyLine(comment: string): string {
    return authorizedKeyLine(this.publicKey, comment);
  }

  /** A fresh key pair and a certificate for it, signed by this authority. */
  issueUserCertificate(input: CertificateRequest): IssuedUserCertificate {
    const { seed, publicKey } = rawKeys(generateKeyPairSync('ed25519').privateKey);
    const certified = this.certifyPublicKey(publicKey, input);
    return { privateKey: openSshPrivateKey(seed, publicKey, input.comment, randomBytes(4)), ...certified };
  }

  /** A certificate for a key its holder made (the raw 32-byte Ed25519 public key), signed by this authority. */
  certifyPublicKey(
    publicKey: Uint8Array,
    input: CertificateRequest,
  ): Pick<IssuedUserCertificate, 'certificate' | 'fingerprint'> {
    const body = userCertificateBody({
      publicKey,
      nonce: randomBytes(32),
      serial: input.serial,
      keyId: input.keyId,
      principals: input.principals,
      validAfter: input.validAfter,
      validBefore: input.validBefore,
      criticalOptions: input.criticalOptions,
      extensions: input.extensions,
      caPublicKey: this.publicKey,
    });
    const signature = sign(null, body, this.#key);
    const digest = createHash('sha256').update(ed25519PublicKeyBlob(publicKey)).digest('base64');
    return {
      certificate: certificateLine(body, signature, input.comment),
      fingerprint: `SHA256:${digest.replace(/=+$/, '')}`,
    };
  }

  /** sshd's `RevokedKeys` file revoking these serials of this CA. */
  revocationList(serials: readonly bigint[], now: number, comment: string): Buffer {
    const seconds = Math.floor(now / 1000);
    return keyRevocationList({
      caPublicKey: this.publicKey,
      serials,
      // Milliseconds: two lists made in the same second still differ in version.
      version: BigInt(now),
      generatedAt: seconds,
      comment,
    });
  }
}
