/**
 * The WebAuthn (security key) second factor of break-glass custodians, server side, through
 * `@simplewebauthn/server`. Two ceremonies, each in two steps:
 *
 * - **Enrolment:** {@link SecurityKeyCeremonies.registrationOptions} → the browser's
 *   `navigator.credentials.create()` → {@link SecurityKeyCeremonies.verifyRegistration}, which
 *   returns the {@link StoredSecurityKey} to keep (public material only).
 * - **Sign-in:** {@link SecurityKeyCeremonies.authenticationOptions} → `navigator.credentials.get()`
 *   → {@link SecurityKeyCeremonies.verifyAuthentication}, which returns the new signature counter.
 *
 * What is enforced: user verification (PIN or biometric on the key) on both ceremonies; the RP id
 * and the origins from configuration; attestation `none` requested (any attestation the key still
 * sends is verified by the library, none is required); ES256, EdDSA or RS256 keys; challenges of
 * 32 random bytes, bound to one custodian and one ceremony, single-use (taken from the store before
 * anything else is checked, so a replayed or failed response burns its challenge) and expiring;
 * signature counters that never go back; by default no synced passkeys (a break-glass factor must
 * be a key someone holds, not a copy in a cloud account that may depend on the broken IdP).
 *
 * Every refusal is a {@link SecurityKeyRefused}: the code `break_glass_auth_failed` and a generic
 * message for the caller, and a `reason` for the audit log only.
 *
 * INVARIANT: the caller stores the returned counter with a compare-and-swap on the counter it
 * passed in, so that two assertions racing with the same counter cannot both succeed.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import {
  decodeAttestationObject,
  isoBase64URL,
  parseAuthenticatorData,
} from '@simplewebauthn/server/helpers';
import { z } from 'zod';
import type { EphemeralStore } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import type { StoredSecurityKey } from './ports.js';

/** The slice of the app's EphemeralStore the ceremonies use: put, and an atomic single-use take. */
export type ChallengeStore = Pick<EphemeralStore, 'put' | 'take'>;

/** Why a security key was refused; for the audit log, never shown to the caller. */
export type SecurityKeyRefusal =
  | 'malformed_response'
  | 'challenge_unknown'
  | 'wrong_type'
  | 'origin_mismatch'
  | 'rp_id_mismatch'
  | 'user_not_present'
  | 'user_not_verified'
  | 'unknown_credential'
  | 'user_mismatch'
  | 'counter_regression'
  | 'duplicate_credential'
  | 'synced_credential'
  | 'no_security_key'
  | 'verification_failed';

export class SecurityKeyRefused extends PortcullisError {
  readonly reason: SecurityKeyRefusal;

  constructor(reason: SecurityKeyRefusal, cause?: unknown) {
    super(
      'break_glass_auth_failed',
      'The emergency credentials were not accepted',
      {},
      cause === undefined ? undefined : { cause },
    );
    this.name = 'SecurityKeyRefused';
    this.reason = reason;
  }
}

/** `break_glass.webauthn` in the configuration. */
export const webauthnConfigSchema = z
  .object({
    /** Relying-party id: the host name custodians see (default: the host of `server.public_url`). */
    rp_id: z.string().min(1).optional(),
    /** Shown by the browser and the key during enrolment. */
    rp_name: z.string().min(1).default('Portcullis break-glass'),
    /** Origins the ceremonies may run on (default: the origin of `server.public_url`). */
    origins: z.array(z.url()).optional(),
    /** Accept synced (multi-device, backed-up) passkeys at enrolment. */
    allow_synced_passkeys: z.boolean().default(false),
  })
  .strict();
export type WebAuthnConfig = z.output<typeof webauthnConfigSchema>;

export interface WebAuthnSettings {
  readonly rpId: string;
  readonly rpName: string;
  readonly origins: readonly string[];
  readonly allowSyncedPasskeys: boolean;
  /** Lifetime of a challenge (and the browser's timeout). Default 5 minutes. */
  readonly challengeTtlMs?: number;
}

/** Settings from the configuration, with the RP id and origin defaulting to `server.public_url`. */
export function webauthnSettings(config: WebAuthnConfig, publicUrl: string | undefined): WebAuthnSettings {
  const url = publicUrl ? new URL(publicUrl) : undefined;
  const rpId = config.rp_id ?? url?.hostname;
  const origins = config.origins ?? (url ? [url.origin] : []);
  if (!rpId || origins.length === 0) {
    throw new PortcullisError(
      'config_invalid',
      'break_glass.webauthn needs rp_id and origins, or server.public_url',
      {
        issues: [{ path: 'break_glass.webauthn', message: 'set rp_id and origins, or server.public_url' }],
      },
    );
  }
  for (const origin of origins) {
    const host = new URL(origin).hostname;
    if (host !== rpId && !host.endsWith(`.${rpId}`)) {
      throw new PortcullisError('config_invalid', `origin ${origin} is not within the RP id ${rpId}`, {
        issues: [
          {
            path: 'break_glass.webauthn.origins',
            message: `${origin} is not ${rpId} or one of its subdomains`,
          },
        ],
      });
    }
  }
  return {
    rpId,
    rpName: config.rp_name,
    origins: origins.map((o) => new URL(o).origin),
    allowSyncedPasskeys: config.allow_synced_passkeys,
  };
}

/** COSE algorithms accepted: EdDSA, ES256, RS256 (what security keys implement). */
const supportedAlgorithmIDs = [-8, -7, -257];

const registrationKind = 'webauthn.registration';
const authenticationKind = 'webauthn.authentication';

/** The WebAuthn user handle of a custodian: stable, opaque, not the custodian id itself. */
export function custodianUserHandle(custodianId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(
    createHash('sha256').update(`portcullis.break-glass.custodian:${custodianId}`).digest(),
  );
}

/** What a verified enrolment returns: the key to store, and facts for the audit event. */
export interface EnrolledSecurityKey extends StoredSecurityKey {
  /** Authenticator model (AAGUID), all zeros when the key does not say. */
  readonly aaguid: string;
  readonly backedUp: boolean;
}

export interface VerifiedAssertion {
  readonly credentialId: string;
  /** Store this (compare-and-swap on the previous value). */
  readonly newCounter: number;
}

interface CheckedClientData {
  readonly challenge: string;
  readonly type: string;
  readonly origin: string;
}

function clientData(encoded: unknown): CheckedClientData {
  try {
    if (typeof encoded !== 'string') throw new Error('clientDataJSON is not a string');
    const parsed = JSON.parse(isoBase64URL.toUTF8String(encoded)) as Record<string, unknown>;
    const { challenge, type, origin } = parsed;
    if (typeof challenge !== 'string' || typeof type !== 'string' || typeof origin !== 'string') {
      throw new Error('clientDataJSON lacks challenge, type or origin');
    }
    return { challenge, type, origin };
  } catch (error) {
    throw new SecurityKeyRefused('malformed_response', error);
  }
}

export class SecurityKeyCeremonies {
  readonly #settings: WebAuthnSettings;
  readonly #challenges: ChallengeStore;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #rpIdHash: Buffer;

  constructor(settings: WebAuthnSettings, challenges: ChallengeStore, now: () => number = Date.now) {
    this.#settings = settings;
    this.#challenges = challenges;
    this.#now = now;
    this.#ttlMs = settings.challengeTtlMs ?? 5 * 60_000;
    this.#rpIdHash = createHash('sha256').update(settings.rpId).digest();
  }

  /** Options for `navigator.credentials.create()`; the challenge is remembered for this custodian. */
  async registrationOptions(input: {
    readonly custodianId: string;
    readonly displayName?: string;
    /** Keys the custodian already has, so the same key is not enrolled twice. */
    readonly existing: readonly StoredSecurityKey[];
  }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const challenge = isoBase64URL.fromBuffer(randomBytes(32));
    const options = await generateRegistrationOptions({
      rpName: this.#settings.rpName,
      rpID: this.#settings.rpId,
      userName: input.custodianId,
      userDisplayName: input.displayName ?? input.custodianId,
      userID: custodianUserHandle(input.custodianId),
      challenge: isoBase64URL.toBuffer(challenge),
      timeout: this.#ttlMs,
      attestationType: 'none',
      excludeCredentials: input.existing.map((key) => ({
        id: key.credentialId,
        transports: [...key.transports],
      })),
      authenticatorSelection: {
        authenticatorAttachment: 'cross-platform',
        residentKey: 'discouraged',
        userVerification: 'required',
      },
      supportedAlgorithmIDs,
      preferredAuthenticatorType: 'securityKey',
    });
    await this.#challenges.put(
      registrationKind,
      `${input.custodianId}:${options.challenge}`,
      input.custodianId,
      this.#now() + this.#ttlMs,
    );
    return options;
  }

  /** Verifies `navigator.credentials.create()`'s answer; returns the key to store. */
  async verifyRegistration(input: {
    readonly custodianId: string;
    readonly response: RegistrationResponseJSON;
    readonly existing: readonly StoredSecurityKey[];
  }): Promise<EnrolledSecurityKey> {
    const data = clientData(input.response?.response?.clientDataJSON);
    await this.#takeChallenge(registrationKind, input.custodianId, data.challenge);
    this.#checkClientData(data, 'webauthn.create');
    let authData: ReturnType<typeof parseAuthenticatorData>;
    try {
      const attestation = isoBase64URL.toBuffer(input.response.response.attestationObject);
      authData = parseAuthenticatorData(attestationAuthData(attestation));
    } catch (error) {
      throw new SecurityKeyRefused('malformed_response', error);
    }
    this.#checkAuthData(authData);

    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({
        response: input.response,
        expectedChallenge: data.challenge,
        expectedOrigin: [...this.#settings.origins],
        expectedRPID: this.#settings.rpId,
        expectedType: 'webauthn.create',
        requireUserPresence: true,
        requireUserVerification: true,
        supportedAlgorithmIDs,
      });
    } catch (error) {
      throw new SecurityKeyRefused('verification_failed', error);
    }
    if (!verified.verified) throw new SecurityKeyRefused('verification_failed');
    const info = verified.registrationInfo;
    if (!info.userVerified) throw new SecurityKeyRefused('user_not_verified');
    if (info.credentialDeviceType === 'multiDevice' && !this.#settings.allowSyncedPasskeys) {
      throw new SecurityKeyRefused('synced_credential');
    }
    if (input.existing.some((key) => key.credentialId === info.credential.id)) {
      throw new SecurityKeyRefused('duplicate_credential');
    }
    return {
      credentialId: info.credential.id,
      publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
      counter: info.credential.counter,
      transports: info.credential.transports ?? input.response.response.transports ?? [],
      aaguid: info.aaguid,
      backedUp: info.credentialBackedUp,
    };
  }

  /** Options for `navigator.credentials.get()` limited to the custodian's enrolled keys. */
  async authenticationOptions(input: {
    readonly custodianId: string;
    readonly keys: readonly StoredSecurityKey[];
  }): Promise<PublicKeyCredentialRequestOptionsJSON> {
    if (input.keys.length === 0) throw new SecurityKeyRefused('no_security_key');
    const options = await generateAuthenticationOptions({
      rpID: this.#settings.rpId,
      allowCredentials: input.keys.map((key) => ({
        id: key.credentialId,
        transports: [...key.transports],
      })),
      challenge: randomBytes(32),
      timeout: this.#ttlMs,
      userVerification: 'required',
    });
    await this.#challenges.put(
      authenticationKind,
      `${input.custodianId}:${options.challenge}`,
      input.custodianId,
      this.#now() + this.#ttlMs,
    );
    return options;
  }

  /** Verifies `navigator.credentials.get()`'s answer against the custodian's keys. */
  async verifyAuthentication(input: {
    readonly custodianId: string;
    readonly response: AuthenticationResponseJSON;
    readonly keys: readonly StoredSecurityKey[];
  }): Promise<VerifiedAssertion> {
    const data = clientData(input.response?.response?.clientDataJSON);
    await this.#takeChallenge(authenticationKind, input.custodianId, data.challenge);
    const key = input.keys.find((k) => k.credentialId === input.response.id);
    if (!key || input.response.rawId !== input.response.id)
      throw new SecurityKeyRefused('unknown_credential');
    this.#checkClientData(data, 'webauthn.get');
    let authData: ReturnType<typeof parseAuthenticatorData>;
    try {
      authData = parseAuthenticatorData(isoBase64URL.toBuffer(input.response.response.authenticatorData));
    } catch (error) {
      throw new SecurityKeyRefused('malformed_response', error);
    }
    this.#checkAuthData(authData);
    const { userHandle } = input.response.response;
    if (
      userHandle !== undefined &&
      userHandle !== isoBase64URL.fromBuffer(custodianUserHandle(input.custodianId))
    ) {
      throw new SecurityKeyRefused('user_mismatch');
    }
    if ((authData.counter > 0 || key.counter > 0) && authData.counter <= key.counter) {
      throw new SecurityKeyRefused('counter_regression');
    }

    let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      verified = await verifyAuthenticationResponse({
        response: input.response,
        expectedChallenge: data.challenge,
        expectedOrigin: [...this.#settings.origins],
        expectedRPID: this.#settings.rpId,
        expectedType: 'webauthn.get',
        credential: {
          id: key.credentialId,
          publicKey: isoBase64URL.toBuffer(key.publicKey),
          counter: key.counter,
          transports: [...key.transports],
        },
        requireUserVerification: true,
      });
    } catch (error) {
      throw new SecurityKeyRefused('verification_failed', error);
    }
    if (!verified.verified || !verified.authenticationInfo.userVerified) {
      throw new SecurityKeyRefused('verification_failed');
    }
    return { credentialId: key.credentialId, newCounter: verified.authenticationInfo.newCounter };
  }

  async #takeChallenge(kind: string, custodianId: string, challenge: string): Promise<void> {
    const owner = await this.#challenges.take(kind, `${custodianId}:${challenge}`, this.#now());
    if (owner !== custodianId) throw new SecurityKeyRefused('challenge_unknown');
  }

  // These checks duplicate some of the library's, to give the audit log a precise reason; the
  // library's verification stays the judge.
  #checkClientData(data: CheckedClientData, type: string): void {
    if (data.type !== type) throw new SecurityKeyRefused('wrong_type');
    if (!this.#settings.origins.includes(data.origin)) throw new SecurityKeyRefused('origin_mismatch');
  }

  #checkAuthData(authData: ReturnType<typeof parseAuthenticatorData>): void {
    if (!this.#rpIdHash.equals(authData.rpIdHash)) throw new SecurityKeyRefused('rp_id_mismatch');
    if (!authData.flags.up) throw new SecurityKeyRefused('user_not_present');
    if (!authData.flags.uv) throw new SecurityKeyRefused('user_not_verified');
  }
}

/** The `authData` bytes of a CBOR attestation object. */
function attestationAuthData(
  attestationObject: Parameters<typeof decodeAttestationObject>[0],
): Parameters<typeof parseAuthenticatorData>[0] {
  const decoded = decodeAttestationObject(attestationObject);
  const authData = decoded.get('authData');
  if (!(authData instanceof Uint8Array)) throw new Error('attestation object without authData');
  return authData;
}
