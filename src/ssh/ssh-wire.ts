/**
 * The OpenSSH formats Portcullis writes for SSH access (docs/provisioners.md#ssh): Ed25519 public-key
 * blobs (RFC 8709), user certificates (OpenSSH PROTOCOL.certkeys), unencrypted `openssh-key-v1`
 * private keys (PROTOCOL.key) and key revocation lists (PROTOCOL.krl). Pure encoding and decoding:
 * signatures are made by the caller with node:crypto, nothing here is cryptography.
 *
 * Hand-written because no maintained npm package writes certificates with chosen critical options
 * and extensions through a documented API (decision in docs/provisioners.md#ssh); every format is
 * checked in the tests by OpenSSH's own `ssh-keygen` and `sshd`.
 */

const ed25519 = 'ssh-ed25519';
export const ed25519CertificateType = 'ssh-ed25519-cert-v01@openssh.com';
const userCertificate = 1;

/** RFC 4251 `string`: a uint32 length, then the bytes. */
function sshString(value: Uint8Array | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

function uint64(value: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(value);
  return out;
}

/** The wire blob of an Ed25519 public key (32 raw bytes). */
export function ed25519PublicKeyBlob(publicKey: Uint8Array): Buffer {
  if (publicKey.length !== 32) throw new TypeError('an Ed25519 public key is 32 bytes');
  return Buffer.concat([sshString(ed25519), sshString(publicKey)]);
}

/**
 * The raw Ed25519 keys of an authorized_keys-style text (a TrustedUserCAKeys file): one per
 * `ssh-ed25519 AAAA… [comment]` line. Comments and blank lines are skipped; lines of other key
 * types are returned in `others`, so a caller can say what it ignored.
 */
export function ed25519KeysOfAuthorizedKeys(text: string): { keys: Buffer[]; others: number } {
  const keys: Buffer[] = [];
  let others = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [type, data] = line.split(/\s+/);
    if (type !== ed25519 || !data) {
      others += 1;
      continue;
    }
    const reader = new SshReader(Buffer.from(data, 'base64'));
    if (reader.string().toString('latin1') !== ed25519)
      throw new TypeError('a key line does not match its type');
    const key = reader.string();
    if (key.length !== 32 || !reader.done()) throw new TypeError('a malformed ssh-ed25519 key line');
    keys.push(Buffer.from(key));
  }
  return { keys, others };
}

/** `ssh-ed25519 AAAA… comment`, as in authorized_keys and TrustedUserCAKeys files. */
export function authorizedKeyLine(publicKey: Uint8Array, comment: string): string {
  return `${ed25519} ${ed25519PublicKeyBlob(publicKey).toString('base64')} ${comment}`;
}

/** Name/value options of a certificate; an empty value is a flag (`permit-pty`). */
export type CertificateOptions = Readonly<Record<string, string>>;

export interface UserCertificateFields {
  /** The Ed25519 public key being certified (32 bytes). */
  readonly publicKey: Uint8Array;
  /** Random bytes that make the signed body unpredictable (32 recommended). */
  readonly nonce: Uint8Array;
  readonly serial: bigint;
  /** Logged by sshd with every login that uses the certificate. */
  readonly keyId: string;
  /** The accounts it may log in as; never empty (an empty list means "any" to OpenSSH). */
  readonly principals: readonly string[];
  /** Seconds since the epoch. */
  readonly validAfter: number;
  readonly validBefore: number;
  readonly criticalOptions: CertificateOptions;
  readonly extensions: CertificateOptions;
  /** The certificate authority's Ed25519 public key. */
  readonly caPublicKey: Uint8Array;
}

/** Options are sorted by name and each value is itself a string inside the data string. */
function encodeOptions(options: CertificateOptions): Buffer {
  const names = Object.keys(options).sort();
  return Buffer.concat(
    names.map((name) => {
      const value = options[name] as string;
      return Buffer.concat([sshString(name), sshString(value === '' ? Buffer.alloc(0) : sshString(value))]);
    }),
  );
}

/** The certificate up to its signature: what the certificate authority signs. */
export function userCertificateBody(fields: UserCertificateFields): Buffer {
  if (fields.principals.length === 0) throw new TypeError('a certificate needs at least one principal');
  if (fields.validBefore <= fields.validAfter) throw new TypeError('validBefore must be after validAfter');
  return Buffer.concat([
    sshString(ed25519CertificateType),
    sshString(fields.nonce),
    sshString(fields.publicKey),
    uint64(fields.serial),
    uint32(userCertificate),
    sshString(fields.keyId),
    sshString(Buffer.concat(fields.principals.map((p) => sshString(p)))),
    uint64(BigInt(fields.validAfter)),
    uint64(BigInt(fields.validBefore)),
    sshString(encodeOptions(fields.criticalOptions)),
    sshString(encodeOptions(fields.extensions)),
    sshString(''),
    sshString(ed25519PublicKeyBlob(fields.caPublicKey)),
  ]);
}

/** The signed certificate as one line: `ssh-ed25519-cert-v01@openssh.com AAAA… comment`. */
export function certificateLine(body: Uint8Array, signature: Uint8Array, comment: string): string {
  const blob = Buffer.concat([body, sshString(Buffer.concat([sshString(ed25519), sshString(signature)]))]);
  return `${ed25519CertificateType} ${blob.toString('base64')} ${comment}`;
}

/** The fields of a user certificate that a host-side reader needs (PROTOCOL.certkeys). */
export interface ParsedUserCertificate {
  readonly serial: bigint;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Seconds since the epoch. */
  readonly validAfter: number;
  readonly validBefore: number;
  /** The signing authority's raw Ed25519 public key. */
  readonly caPublicKey: Buffer;
  /** What the authority signed: every byte before the signature field. */
  readonly signedBody: Buffer;
  /** The raw 64-byte Ed25519 signature over `signedBody`. */
  readonly signature: Buffer;
}

/**
 * Reads an Ed25519 user certificate blob signed by an Ed25519 authority, as Portcullis issues
 * them, and undefined for any other kind of key or certificate. The signature is not checked here.
 *
 * @throws TypeError when the blob is truncated or malformed.
 */
export function parseUserCertificate(blob: Buffer): ParsedUserCertificate | undefined {
  const reader = new SshReader(blob);
  if (reader.string().toString('latin1') !== ed25519CertificateType) return undefined;
  reader.string(); // nonce
  if (reader.string().length !== 32) throw new TypeError('bad Ed25519 public key in the certificate');
  const serial = reader.uint64();
  if (reader.uint32() !== userCertificate) return undefined;
  const keyId = reader.string().toString('utf8');
  const principalList = new SshReader(reader.string());
  const principals: string[] = [];
  while (!principalList.done()) principals.push(principalList.string().toString('utf8'));
  const validAfter = reader.uint64();
  const validBefore = reader.uint64();
  reader.string(); // critical options
  reader.string(); // extensions
  reader.string(); // reserved
  const caKey = new SshReader(reader.string());
  if (caKey.string().toString('latin1') !== ed25519) return undefined;
  const caPublicKey = caKey.string();
  if (caPublicKey.length !== 32) throw new TypeError('bad Ed25519 key of the certificate authority');
  const signedBody = blob.subarray(0, reader.offset);
  const signatureField = new SshReader(reader.string());
  if (!reader.done()) throw new TypeError('bytes after the certificate');
  if (signatureField.string().toString('latin1') !== ed25519) return undefined;
  const signature = signatureField.string();
  if (signature.length !== 64 || !signatureField.done()) throw new TypeError('bad Ed25519 signature field');
  const seconds = (value: bigint) =>
    value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  return {
    serial,
    keyId,
    principals,
    validAfter: seconds(validAfter),
    validBefore: seconds(validBefore),
    caPublicKey: Buffer.from(caPublicKey),
    signedBody: Buffer.from(signedBody),
    signature: Buffer.from(signature),
  };
}

const privateKeyMagic = Buffer.from('openssh-key-v1\0', 'latin1');

/**
 * An unencrypted `openssh-key-v1` private key file, as `ssh-keygen` writes one without a passphrase.
 * `seed` is the 32-byte Ed25519 private key, `checkBytes` 4 random bytes (written twice, so a wrong
 * passphrase is noticed when a key is encrypted).
 */
export function openSshPrivateKey(
  seed: Uint8Array,
  publicKey: Uint8Array,
  comment: string,
  checkBytes: Uint8Array,
): string {
  if (seed.length !== 32 || checkBytes.length !== 4) throw new TypeError('bad Ed25519 seed or check bytes');
  const secret = [
    checkBytes,
    checkBytes,
    sshString(ed25519),
    sshString(publicKey),
    sshString(Buffer.concat([seed, publicKey])),
    sshString(comment),
  ].map((part) => Buffer.from(part));
  let section = Buffer.concat(secret);
  // Padded with 1, 2, 3… to the cipher block size (8 for "none").
  const padding = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const file = Buffer.concat([
    privateKeyMagic,
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(ed25519PublicKeyBlob(publicKey)),
    sshString(section),
  ]);
  const lines = file.toString('base64').match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Reads the Ed25519 seed of an unencrypted `openssh-key-v1` file (a CA key made by `ssh-keygen`). */
export function ed25519SeedOfOpenSshKey(pem: string): Buffer {
  const match = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(pem);
  if (!match) throw new TypeError('not an OpenSSH private key');
  const file = Buffer.from((match[1] as string).replace(/\s+/g, ''), 'base64');
  const reader = new SshReader(file);
  if (!reader.take(privateKeyMagic.length).equals(privateKeyMagic))
    throw new TypeError('not an openssh-key-v1 key');
  const cipher = reader.string().toString('latin1');
  reader.string(); // kdf name
  reader.string(); // kdf options
  if (cipher !== 'none')
    throw new TypeError('the key is encrypted: give Portcullis an unencrypted copy (a secret)');
  if (reader.uint32() !== 1) throw new TypeError('the file must hold exactly one key');
  reader.string(); // public key blob
  const secret = new SshReader(reader.string());
  if (secret.uint32() !== secret.uint32()) throw new TypeError('the key file is damaged');
  if (secret.string().toString('latin1') !== ed25519) throw new TypeError('the key is not Ed25519');
  secret.string(); // public key
  const pair = secret.string();
  if (pair.length !== 64) throw new TypeError('the key file is damaged');
  return pair.subarray(0, 32);
}

class SshReader {
  #offset = 0;
  constructor(private readonly bytes: Buffer) {}

  get offset(): number {
    return this.#offset;
  }

  done(): boolean {
    return this.#offset === this.bytes.length;
  }

  take(length: number): Buffer {
    if (this.#offset + length > this.bytes.length) throw new TypeError('truncated SSH data');
    const out = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  uint32(): number {
    return this.take(4).readUInt32BE();
  }

  uint64(): bigint {
    return this.take(8).readBigUInt64BE();
  }

  string(): Buffer {
    return this.take(this.uint32());
  }
}

const krlMagic = Buffer.from('SSHKRL\n\0', 'latin1');
const krlFormatVersion = 1;
const krlSectionCertificates = 1;
const krlSectionCertSerialList = 0x20;

/**
 * A key revocation list (sshd's `RevokedKeys`) revoking certificates of one certificate authority
 * by serial number. `version` must grow with every list a host may load.
 */
export function keyRevocationList(input: {
  readonly caPublicKey: Uint8Array;
  readonly serials: readonly bigint[];
  readonly version: bigint;
  /** Seconds since the epoch. */
  readonly generatedAt: number;
  readonly comment: string;
}): Buffer {
  const serials = [...new Set(input.serials)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const certificateSections =
    serials.length === 0
      ? Buffer.alloc(0)
      : Buffer.concat([
          Buffer.from([krlSectionCertSerialList]),
          sshString(Buffer.concat(serials.map(uint64))),
        ]);
  const certificates = Buffer.concat([
    sshString(ed25519PublicKeyBlob(input.caPublicKey)),
    sshString(''),
    certificateSections,
  ]);
  return Buffer.concat([
    krlMagic,
    uint32(krlFormatVersion),
    uint64(input.version),
    uint64(BigInt(input.generatedAt)),
    uint64(0n),
    sshString(''),
    sshString(input.comment),
    Buffer.from([krlSectionCertificates]),
    sshString(certificates),
  ]);
}
