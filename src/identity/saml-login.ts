/**
 * Browser sign-in with one SAML 2.0 identity provider (Portcullis is the service provider):
 * SP-initiated, AuthnRequest over HTTP-Redirect, Response over HTTP-POST to the ACS URL.
 *
 * What a Response must be to be accepted (anything else is `login_failed` with a `reason`):
 * - signed by a key in the IdP's metadata (`want_assertions_signed` / `want_response_signed`;
 *   with both off, the Response or the Assertion still must be), one assertion only, and the
 *   principal is read from the signed XML only (signature wrapping fails: `signature_invalid`);
 * - an answer to an AuthnRequest this Portcullis sent, not older than the pending-login TTL, not
 *   answered before, from the browser that started it (`request_unknown`, `browser_mismatch`);
 * - issued by the IdP's entity id (`issuer_mismatch`), for our entity id (`audience_mismatch`),
 *   to our ACS URL as bearer `Recipient` and `Destination` (`recipient_mismatch`), within
 *   `NotBefore`/`NotOnOrAfter` ± `clock_skew` (`assertion_expired`);
 * - an assertion id not seen before (`assertion_replayed`): ids stay in the replay cache until
 *   the assertion expires.
 *
 * Pending sign-ins (kind `saml-request`, key = AuthnRequest ID) and the replay cache (kind
 * `saml-assertion`) live in the shared {@link EphemeralStore}, so any replica can finish a sign-in.
 *
 * @example
 * const login = new SamlLogin(settings, { ephemeral: store.ephemeral, publicUrl });
 * // GET /auth/saml/corp/login → 302 to authorizationUrl, loginId in a cookie
 * const { authorizationUrl, loginId } = await login.begin({ redirectUri: login.acsUrl });
 * // POST /auth/saml/corp/acs (SAMLResponse, RelayState)
 * const { principal } = await login.complete(acsUrl, loginIdFromCookie, formFields);
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  type CacheProvider,
  generateServiceProviderMetadata,
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
} from '@node-saml/node-saml';
import { DOMParser, type Element } from '@xmldom/xmldom';
import type { EphemeralStore } from '../app/ports.js';
import type { SamlProviderSettings } from '../config/load.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { principalFromClaims } from './idp-claims.js';
import { type IdpMetadata, SamlMetadataSource } from './saml-metadata.js';

export const samlRequestKind = 'saml-request';
export const samlAssertionKind = 'saml-assertion';

const pendingTtlMs = 600_000;
const maxResponseChars = 400_000;
const maxSubjectLength = 255;
const assertionNs = 'urn:oasis:names:tc:SAML:2.0:assertion';
const protocolNs = 'urn:oasis:names:tc:SAML:2.0:protocol';
const bearer = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

export type SamlFailureReason =
  | 'signature_invalid'
  | 'assertion_expired'
  | 'audience_mismatch'
  | 'recipient_mismatch'
  | 'issuer_mismatch'
  | 'assertion_replayed'
  | 'request_unknown'
  | 'browser_mismatch'
  | 'idp_error'
  | 'invalid_response';

function failure(reason: SamlFailureReason, message: string, cause?: unknown): PortcullisError {
  return new PortcullisError(
    'login_failed',
    message,
    { reason },
    cause === undefined ? undefined : { cause },
  );
}

/** What node-saml says, turned into a stable reason; never echoes the IdP's free text. */
function classify(error: unknown): PortcullisError {
  if (error instanceof PortcullisError) return error;
  if (error instanceof SamlStatusError)
    return failure('idp_error', 'the identity provider refused the sign-in', error);
  const message = error instanceof Error ? error.message : String(error);
  if (/InResponseTo/i.test(message))
    return failure(
      'request_unknown',
      'this response answers no sign-in started here (or one already finished)',
      error,
    );
  if (/signature/i.test(message))
    return failure('signature_invalid', 'the response is not signed by this identity provider', error);
  if (/expired|not yet valid|subject confirmation/i.test(message))
    return failure('assertion_expired', 'the assertion is expired or not yet valid (check clocks)', error);
  if (/audience/i.test(message))
    return failure('audience_mismatch', 'the assertion is meant for another service provider', error);
  return failure('invalid_response', 'the identity provider sent an invalid SAML response', error);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

interface PendingSamlLogin {
  readonly v: 1;
  readonly idp: string;
  readonly returnTo: string | undefined;
  readonly context: string | undefined;
  readonly loginIdHash: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

function parsePending(raw: string | undefined): PendingSamlLogin | undefined {
  if (raw === undefined) return undefined;
  try {
    const value = JSON.parse(raw) as Partial<PendingSamlLogin>;
    return value.v === 1 && typeof value.idp === 'string' && typeof value.loginIdHash === 'string'
      ? (value as PendingSamlLogin)
      : undefined;
  } catch {
    return undefined;
  }
}

function children(parent: Element, ns: string, name: string): Element[] {
  return Array.from(parent.getElementsByTagNameNS(ns, name));
}

function instant(value: string | null): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

type SamlClaimKeys = Pick<
  SamlProviderSettings,
  'subject_attribute' | 'email_attribute' | 'name_attribute' | 'groups_attribute'
>;

/**
 * The claims a SAML sign-in is judged on: every attribute by its Name, plus `sub` (the NameID or
 * `subject_attribute`), `email` and `name` from the configured attributes (first values).
 */
export function samlClaims(
  attributes: Readonly<Record<string, unknown>>,
  nameId: unknown,
  settings: SamlClaimKeys,
): Record<string, unknown> {
  const first = (value: unknown) => (Array.isArray(value) ? value[0] : value);
  return {
    ...attributes,
    sub: settings.subject_attribute ? first(attributes[settings.subject_attribute]) : nameId,
    email: first(attributes[settings.email_attribute]),
    name: first(attributes[settings.name_attribute]),
  };
}

/** A SAML provider's settings as the shared claim mapping reads them (groups from an attribute). */
export function samlClaimSettings<T extends SamlClaimKeys>(settings: T): T & { groups_claim: string } {
  return { ...settings, groups_claim: settings.groups_attribute };
}

export interface SamlLoginOptions {
  readonly ephemeral: EphemeralStore;
  /** Portcullis' public URL; the ACS and metadata URLs hang off it. */
  readonly publicUrl: string;
  readonly clock?: Clock;
}

export class SamlLogin {
  readonly id: string;
  readonly displayName: string;
  readonly protocol = 'saml' as const;
  readonly acsUrl: string;
  readonly metadataUrl: string;
  readonly spEntityId: string;
  readonly #settings: SamlProviderSettings;
  readonly #store: EphemeralStore;
  readonly #clock: Clock;
  readonly #metadata: SamlMetadataSource;
  readonly #validator: SAML;

  /** Throws when `metadata_file` is not usable IdP metadata (message names the problem). */
  constructor(settings: SamlProviderSettings, options: SamlLoginOptions) {
    this.id = settings.id;
    this.displayName = settings.display_name;
    this.#settings = settings;
    this.#store = options.ephemeral;
    this.#clock = options.clock ?? systemClock;
    const base = `${options.publicUrl.replace(/\/$/, '')}/auth/saml/${encodeURIComponent(settings.id)}`;
    this.acsUrl = `${base}/acs`;
    this.metadataUrl = `${base}/metadata`;
    this.spEntityId = settings.sp_entity_id ?? this.metadataUrl;
    this.#metadata = new SamlMetadataSource({
      idp: settings.id,
      xml: settings.metadataXml,
      url: settings.metadata_url,
      refreshIntervalSeconds: settings.metadata_refresh_interval,
      timeoutSeconds: settings.timeout,
      clock: this.#clock,
    });
    const store = this.#store;
    const clock = this.#clock;
    // node-saml checks InResponseTo against this: a live pending sign-in of this IdP. It never
    // consumes it: complete() takes it atomically afterwards, so two racing POSTs cannot both win.
    const requestIds: CacheProvider = {
      saveAsync: async () => null,
      getAsync: async (key) => {
        const pending = parsePending(await store.peek(samlRequestKind, key, clock.now()));
        return pending && pending.idp === settings.id ? new Date(pending.createdAt).toISOString() : null;
      },
      removeAsync: async () => null,
    };
    this.#validator = new SAML({
      ...this.#samlOptions(),
      idpCert: (callback) => callback(null, [...(this.#metadata.known?.certificates ?? [])]),
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: pendingTtlMs,
      cacheProvider: requestIds,
    });
  }

  #samlOptions() {
    return {
      issuer: this.spEntityId,
      callbackUrl: this.acsUrl,
      audience: this.spEntityId,
      wantAssertionsSigned: this.#settings.want_assertions_signed,
      wantAuthnResponseSigned: this.#settings.want_response_signed,
      acceptedClockSkewMs: this.#settings.clock_skew * 1000,
      identifierFormat: this.#settings.name_id_format ?? null,
      disableRequestedAuthnContext: true,
    };
  }

  /** This service provider's metadata, to register at the IdP. */
  serviceProviderMetadata(): string {
    return generateServiceProviderMetadata({
      issuer: this.spEntityId,
      callbackUrl: this.acsUrl,
      identifierFormat: this.#settings.name_id_format ?? null,
      wantAssertionsSigned: this.#settings.want_assertions_signed,
    });
  }

  /**
   * Starts a sign-in: an AuthnRequest to the IdP's SSO URL. Throws `identity_provider_unavailable`
   * when the metadata URL cannot be read and nothing is known yet.
   */
  async begin(input: { redirectUri: string; returnTo?: string; context?: string }): Promise<{
    authorizationUrl: string;
    loginId: string;
    expiresAt: number;
  }> {
    const idp = await this.#metadata.current();
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const saml = new SAML({
      ...this.#samlOptions(),
      entryPoint: idp.ssoUrl,
      idpCert: [...idp.certificates],
      generateUniqueId: () => requestId,
    });
    const authorizationUrl = await saml.getAuthorizeUrlAsync('', undefined, {});
    const loginId = randomBytes(32).toString('base64url');
    const now = this.#clock.now();
    const pending: PendingSamlLogin = {
      v: 1,
      idp: this.id,
      returnTo: input.returnTo,
      context: input.context,
      loginIdHash: sha256(loginId).toString('base64url'),
      createdAt: now,
      expiresAt: now + pendingTtlMs,
    };
    await this.#store.put(samlRequestKind, requestId, JSON.stringify(pending), pending.expiresAt);
    return { authorizationUrl, loginId, expiresAt: pending.expiresAt };
  }

  /**
   * Finishes a sign-in from the ACS POST. `form` holds `SAMLResponse` (and `RelayState`);
   * `loginId` is the browser's cookie ('' or a wrong value: `browser_mismatch`).
   */
  async complete(
    _acsUrl: URL,
    loginId: string | undefined,
    form?: Readonly<Record<string, unknown>>,
  ): Promise<{ principal: Principal; returnTo: string | undefined; context: string | undefined }> {
    const encoded = form?.SAMLResponse;
    if (typeof encoded !== 'string' || encoded === '' || encoded.length > maxResponseChars)
      throw failure('invalid_response', 'the POST carries no usable SAMLResponse');
    const idp = await this.#metadata.current();
    let profile: Awaited<ReturnType<SAML['validatePostResponseAsync']>>['profile'];
    try {
      profile = (await this.#validator.validatePostResponseAsync({ SAMLResponse: encoded })).profile;
    } catch (error) {
      const classified = await this.#replayedOr(classify(error), encoded);
      // A rotated IdP key: re-read the metadata (rate-limited) and try once more.
      if (
        classified.details.reason !== 'signature_invalid' ||
        !(await this.#metadata.refreshAfterSignatureFailure())
      )
        throw classified;
      try {
        profile = (await this.#validator.validatePostResponseAsync({ SAMLResponse: encoded })).profile;
      } catch (again) {
        throw classify(again);
      }
    }
    if (!profile) throw failure('invalid_response', 'the response carries no assertion');
    const checked = this.#checkAssertion(
      profile.getAssertionXml?.() ?? '',
      encoded,
      this.#metadata.known ?? idp,
    );
    const inResponseTo = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : undefined;
    if (inResponseTo === undefined)
      throw failure('request_unknown', 'unsolicited responses are not accepted');

    const now = this.#clock.now();
    const replayKey = `${this.id}:${checked.assertionId}`;
    if (await this.#store.peek(samlAssertionKind, replayKey, now))
      throw failure('assertion_replayed', 'this assertion was already used');
    const pending = parsePending(await this.#store.take(samlRequestKind, inResponseTo, now));
    // The assertion id is remembered whatever follows, so this response can never be tried again.
    await this.#store.put(
      samlAssertionKind,
      replayKey,
      '1',
      checked.expiresAt + this.#settings.clock_skew * 1000,
    );
    if (!pending || pending.idp !== this.id || pending.expiresAt <= now)
      throw failure(
        'request_unknown',
        'this response answers no sign-in started here (or one already finished)',
      );
    if (!timingSafeEqual(sha256(loginId ?? ''), Buffer.from(pending.loginIdHash, 'base64url')))
      throw failure('browser_mismatch', 'this sign-in was started in another browser; start again');

    const claims = samlClaims(
      (profile.attributes ?? {}) as Record<string, unknown>,
      profile.nameID,
      this.#settings,
    );
    const subject = claims.sub;
    if (typeof subject !== 'string' || subject === '' || subject.length > maxSubjectLength)
      throw failure('invalid_response', 'the assertion has no usable subject');
    const principal = principalFromClaims(subject, claims, samlClaimSettings(this.#settings));
    return { principal, returnTo: pending.returnTo, context: pending.context };
  }

  /**
   * node-saml refuses an answered request before it looks at signatures. When the assertion id in
   * the (unverified) response is one this IdP already used, say so: it is a replay.
   */
  async #replayedOr(error: PortcullisError, encoded: string): Promise<PortcullisError> {
    if (error.details.reason !== 'request_unknown') return error;
    const xml = Buffer.from(encoded, 'base64').toString('utf8');
    const id = /<(?:\w+:)?Assertion\b[^>]*\bID="([^"]{1,128})"/.exec(xml)?.[1];
    if (id && (await this.#store.peek(samlAssertionKind, `${this.id}:${id}`, this.#clock.now())))
      return failure('assertion_replayed', 'this assertion was already used');
    return error;
  }

  /** Checks node-saml leaves to us on the signed assertion: issuer, bearer recipient, destination. */
  #checkAssertion(
    assertionXml: string,
    encodedResponse: string,
    idp: IdpMetadata,
  ): { assertionId: string; expiresAt: number } {
    const parser = new DOMParser({ onError: () => {} });
    const assertion = parser.parseFromString(assertionXml, 'text/xml').documentElement;
    if (!assertion || assertion.localName !== 'Assertion')
      throw failure('invalid_response', 'the signed assertion could not be read');
    const issuer = children(assertion, assertionNs, 'Issuer')[0]?.textContent?.trim();
    if (issuer !== idp.entityId)
      throw failure('issuer_mismatch', 'the assertion was issued by another identity provider');
    const assertionId = assertion.getAttribute('ID') ?? '';
    if (assertionId === '') throw failure('invalid_response', 'the assertion has no ID');
    const confirmations = children(assertion, assertionNs, 'SubjectConfirmation').filter(
      (c) => c.getAttribute('Method') === bearer,
    );
    const data = confirmations.flatMap((c) => children(c, assertionNs, 'SubjectConfirmationData'));
    const now = this.#clock.now();
    const usable = data.filter((d) => d.getAttribute('Recipient') === this.acsUrl);
    if (usable.length === 0) throw failure('recipient_mismatch', 'the assertion is addressed to another URL');
    const ends = [
      ...usable.map((d) => instant(d.getAttribute('NotOnOrAfter'))),
      ...children(assertion, assertionNs, 'Conditions').map((c) => instant(c.getAttribute('NotOnOrAfter'))),
    ].filter((t): t is number => t !== undefined);
    if (ends.length === 0) throw failure('invalid_response', 'the assertion has no NotOnOrAfter');
    const expiresAt = Math.min(...ends);
    if (now - this.#settings.clock_skew * 1000 >= expiresAt)
      throw failure('assertion_expired', 'the assertion is expired (check clocks)');
    // The Response's Destination (signed or not, it must not name another endpoint).
    const response = parser.parseFromString(
      Buffer.from(encodedResponse, 'base64').toString('utf8'),
      'text/xml',
    ).documentElement;
    if (response?.namespaceURI === protocolNs) {
      const destination = response.getAttribute('Destination');
      if (destination && destination !== this.acsUrl)
        throw failure('recipient_mismatch', 'the response is addressed to another URL');
    }
    return { assertionId, expiresAt };
  }
}
