/**
 * A SAML IdP's metadata: its entity id, HTTP-Redirect single sign-on URL and signing
 * certificates, read from a file (once) or a URL (lazily, re-read when older than the refresh
 * interval, and after a signature failure at most once per cooldown so a rotated key is picked up
 * without a restart). A URL that cannot be read while older metadata is known keeps the old
 * metadata: an IdP outage must not end sign-ins that could still succeed.
 */
import { DOMParser, type Element } from '@xmldom/xmldom';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';

const mdNs = 'urn:oasis:names:tc:SAML:2.0:metadata';
const dsNs = 'http://www.w3.org/2000/09/xmldsig#';
const redirectBinding = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const maxMetadataBytes = 1_048_576;

export interface IdpMetadata {
  readonly entityId: string;
  /** Where AuthnRequests go (HTTP-Redirect binding). */
  readonly ssoUrl: string;
  /** Base64 DER certificates whose keys may sign responses and assertions. */
  readonly certificates: readonly string[];
}

function elements(parent: Element, ns: string, name: string): Element[] {
  return Array.from(parent.getElementsByTagNameNS(ns, name));
}

/** Parses IdP metadata; throws an Error whose message says what is missing. */
export function parseIdpMetadata(xml: string): IdpMetadata {
  let root: Element | null;
  try {
    root = new DOMParser({ onError: () => {} }).parseFromString(xml, 'text/xml').documentElement;
  } catch {
    root = null;
  }
  if (!root || root.namespaceURI !== mdNs)
    throw new Error('is not SAML 2.0 metadata (no md:EntityDescriptor)');
  const descriptors = (
    root.localName === 'EntityDescriptor' ? [root] : elements(root, mdNs, 'EntityDescriptor')
  ).filter((e) => elements(e, mdNs, 'IDPSSODescriptor').length > 0);
  if (descriptors.length !== 1)
    throw new Error('must describe exactly one identity provider (IDPSSODescriptor)');
  const entity = descriptors[0] as Element;
  const entityId = entity.getAttribute('entityID') ?? '';
  if (entityId === '') throw new Error('has no entityID');
  const idp = elements(entity, mdNs, 'IDPSSODescriptor')[0] as Element;
  const sso = elements(idp, mdNs, 'SingleSignOnService').find(
    (e) => e.getAttribute('Binding') === redirectBinding,
  );
  const ssoUrl = URL.parse(sso?.getAttribute('Location') ?? '');
  if (!ssoUrl || (ssoUrl.protocol !== 'https:' && ssoUrl.protocol !== 'http:'))
    throw new Error('has no HTTP-Redirect SingleSignOnService with an http(s) Location');
  const certificates = elements(idp, mdNs, 'KeyDescriptor')
    .filter((k) => (k.getAttribute('use') ?? 'signing') === 'signing')
    .flatMap((k) => elements(k, dsNs, 'X509Certificate'))
    .map((c) => (c.textContent ?? '').replace(/\s+/g, ''))
    .filter((c) => /^[A-Za-z0-9+/]+=*$/.test(c));
  if (certificates.length === 0) throw new Error('has no signing certificate (KeyDescriptor use="signing")');
  return { entityId, ssoUrl: ssoUrl.href, certificates: [...new Set(certificates)] };
}

export interface SamlMetadataSourceOptions {
  readonly idp: string;
  /** Metadata text (from `metadata_file`); parsed at once, a problem throws. */
  readonly xml?: string;
  readonly url?: string;
  readonly refreshIntervalSeconds: number;
  readonly timeoutSeconds: number;
  readonly clock?: Clock;
  /** Least time between two re-reads caused by signature failures. Default 60 s. */
  readonly cooldownSeconds?: number;
}

export class SamlMetadataSource {
  readonly #options: SamlMetadataSourceOptions;
  readonly #clock: Clock;
  #current: IdpMetadata | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #lastForcedAt = Number.NEGATIVE_INFINITY;
  #failedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<IdpMetadata> | undefined;

  constructor(options: SamlMetadataSourceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    if (options.xml !== undefined) this.#current = parseIdpMetadata(options.xml);
  }

  /** The last metadata read, if any (no I/O). */
  get known(): IdpMetadata | undefined {
    return this.#current;
  }

  /**
   * Current metadata, fetched when never read or older than the refresh interval. Throws
   * `identity_provider_unavailable` only when nothing usable is known.
   */
  async current(): Promise<IdpMetadata> {
    const known = this.#current;
    if (known && (this.#options.url === undefined || !this.#stale())) return known;
    // A refresh that failed recently is not retried on every sign-in while older metadata works.
    if (known && this.#clock.now() - this.#failedAt < this.#cooldownMs()) return known;
    try {
      return await this.#fetch();
    } catch (error) {
      this.#failedAt = this.#clock.now();
      if (known) return known;
      throw error;
    }
  }

  /**
   * After a signature failure: re-reads the metadata URL unless that happened within the
   * cooldown. Returns true when the signing certificates changed (worth validating again).
   */
  async refreshAfterSignatureFailure(): Promise<boolean> {
    if (this.#options.url === undefined) return false;
    const now = this.#clock.now();
    if (now - this.#lastForcedAt < this.#cooldownMs()) return false;
    this.#lastForcedAt = now;
    const before = this.#current?.certificates.join(',');
    try {
      const after = await this.#fetch();
      return after.certificates.join(',') !== before;
    } catch {
      return false;
    }
  }

  #cooldownMs(): number {
    return (this.#options.cooldownSeconds ?? 60) * 1000;
  }

  #stale(): boolean {
    return this.#clock.now() - this.#fetchedAt >= this.#options.refreshIntervalSeconds * 1000;
  }

  #fetch(): Promise<IdpMetadata> {
    this.#inflight ??= this.#download().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #download(): Promise<IdpMetadata> {
    const url = this.#options.url as string;
    const unavailable = (reason: string, cause?: unknown) =>
      new PortcullisError(
        'identity_provider_unavailable',
        `The SAML metadata of "${this.#options.idp}" could not be read (${reason})`,
        { idp: this.#options.idp, reason },
        cause === undefined ? undefined : { cause },
      );
    let text: string;
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(this.#options.timeoutSeconds * 1000),
        redirect: 'error',
      });
      if (!response.ok) throw unavailable('unreachable');
      text = await response.text();
    } catch (error) {
      if (error instanceof PortcullisError) throw error;
      const timedOut =
        error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw unavailable(timedOut ? 'timeout' : 'unreachable', error);
    }
    if (text.length > maxMetadataBytes) throw unavailable('invalid_metadata');
    let parsed: IdpMetadata;
    try {
      parsed = parseIdpMetadata(text);
    } catch (error) {
      throw unavailable('invalid_metadata', error);
    }
    this.#current = parsed;
    this.#fetchedAt = this.#clock.now();
    return parsed;
  }
}
