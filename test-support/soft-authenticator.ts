/**
 * A software WebAuthn authenticator (a "security key" in memory) and the browser's part of the
 * ceremonies, for tests that drive the real @simplewebauthn/server verification:
 * a node:crypto P-256 key, a real CBOR attestation object (`fmt: none`) and authenticator data
 * built byte by byte, and real ES256 (DER) signatures over `authData ‖ SHA-256(clientDataJSON)`.
 *
 * Every field a test may want to falsify is an override: origin, RP id, challenge, flags, counter.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';

const flagUP = 0x01;
const flagUV = 0x04;
const flagBE = 0x08;
const flagBS = 0x10;
const flagAT = 0x40;

export interface CeremonyOverrides {
  /** Origin the "browser" puts in clientDataJSON. */
  readonly origin?: string;
  /** RP id whose hash goes into authenticatorData. */
  readonly rpId?: string;
  /** Challenge signed instead of the one in the options. */
  readonly challenge?: string;
  readonly type?: string;
  readonly userPresent?: boolean;
  readonly userVerified?: boolean;
  /** Signature counter to report (default: the next one). */
  readonly counter?: number;
  readonly userHandle?: string;
}

export class SoftAuthenticator {
  readonly credentialId: Uint8Array;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #origin: string;
  readonly #backedUp: boolean;
  #counter: number;
  #userHandle: string | undefined;

  /**
   * @param origin what the browser reports as the page's origin.
   * @param options `backedUp` simulates a synced passkey (BE and BS flags); `counter` the start value.
   */
  constructor(origin: string, options: { backedUp?: boolean; counter?: number } = {}) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = pair.privateKey;
    this.#publicKey = pair.publicKey;
    this.credentialId = new Uint8Array(randomBytes(16));
    this.#origin = origin;
    this.#backedUp = options.backedUp ?? false;
    this.#counter = options.counter ?? 0;
  }

  get id(): string {
    return isoBase64URL.fromBuffer(this.credentialId as Uint8Array<ArrayBuffer>);
  }

  get counter(): number {
    return this.#counter;
  }

  /** COSE_Key (RFC 9053): EC2, ES256, P-256, x, y. */
  #coseKey(): Uint8Array {
    const jwk = this.#publicKey.export({ format: 'jwk' });
    const cose = new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))],
    ]);
    return isoCBOR.encode(cose);
  }

  #authData(rpId: string, flags: number, counter: number, attested: boolean): Uint8Array {
    const parts: Uint8Array[] = [createHash('sha256').update(rpId).digest(), Uint8Array.of(flags)];
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    parts.push(count);
    if (attested) {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(this.credentialId.length);
      parts.push(new Uint8Array(16), length, this.credentialId, this.#coseKey());
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  #flags(o: CeremonyOverrides, attested: boolean): number {
    let flags = 0;
    if (o.userPresent ?? true) flags |= flagUP;
    if (o.userVerified ?? true) flags |= flagUV;
    if (this.#backedUp) flags |= flagBE | flagBS;
    if (attested) flags |= flagAT;
    return flags;
  }

  #clientData(type: string, challenge: string, o: CeremonyOverrides): Buffer {
    return Buffer.from(
      JSON.stringify({
        type: o.type ?? type,
        challenge: o.challenge ?? challenge,
        origin: o.origin ?? this.#origin,
        crossOrigin: false,
      }),
    );
  }

  /** `navigator.credentials.create()`: a new credential with a `none` attestation. */
  create(
    options: PublicKeyCredentialCreationOptionsJSON,
    o: CeremonyOverrides = {},
  ): RegistrationResponseJSON {
    this.#userHandle = options.user.id;
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, o);
    const authData = this.#authData(
      o.rpId ?? options.rp.id ?? '',
      this.#flags(o, true),
      o.counter ?? this.#counter,
      true,
    );
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Uint8Array | Map<string, string>>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, string>()],
        ['authData', authData],
      ]),
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        attestationObject: Buffer.from(attestationObject).toString('base64url'),
        transports: ['usb', 'nfc'],
      },
      authenticatorAttachment: 'cross-platform',
      clientExtensionResults: {},
    };
  }

  /** `navigator.credentials.get()`: an ES256 assertion; the counter goes up by one. */
  get(options: PublicKeyCredentialRequestOptionsJSON, o: CeremonyOverrides = {}): AuthenticationResponseJSON {
    const counter = o.counter ?? this.#counter + 1;
    this.#counter = Math.max(this.#counter, counter);
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, o);
    const authData = this.#authData(o.rpId ?? options.rpId ?? '', this.#flags(o, false), counter, false);
    const signature = sign(
      'sha256',
      Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]),
      { key: this.#privateKey, dsaEncoding: 'der' },
    );
    const userHandle = o.userHandle ?? this.#userHandle;
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: Buffer.from(authData).toString('base64url'),
        signature: signature.toString('base64url'),
        ...(userHandle !== undefined ? { userHandle } : {}),
      },
      authenticatorAttachment: 'cross-platform',
      clientExtensionResults: {},
    };
  }
}
