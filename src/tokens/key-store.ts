/**
 * Signing keys: key pairs kept in the database through the KeyRepository port, private halves
 * sealed with the key-encryption key. One key per purpose signs; retired keys stay published until
 * their overlap ends, so what they signed keeps verifying. Token keys are Ed25519 (EdDSA) or P-256
 * (ES256), as configured when each key is made; audit keys are always Ed25519.
 *
 * Several processes share the table (API replicas, and `portcullis keys rotate` as its own
 * process), so the in-memory view is re-read on a short interval and, rate-limited, when a token
 * names a key id this process has not seen yet.
 */
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';
import type { KeyRepository, SecretBox, StoredKey } from '../app/ports.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import {
  auditSigningAlgorithm,
  keyGenerationOptions,
  type PublicKeyMembers,
  type PublicSigningJwk,
  publicKeyMembersFor,
  type SigningAlgorithm,
  samePublicKey,
  signingAlgorithmsFor,
} from './signing-algorithms.js';

export type { PublicSigningJwk, SigningAlgorithm } from './signing-algorithms.js';

/** Purposes of keys that sign (the `recovery` row holds only a public key; see recovery-key.ts). */
export type KeyPurpose = Exclude<StoredKey['purpose'], 'recovery'>;

/**
 * Label of sealed signing keys. The store binds it into every sealed private key; bind the store's
 * secret box to it as well (`box.withPurpose(signingKeySealPurpose)`) so the JWE header says so
 * and no other box's values open as a signing key.
 */
export const signingKeySealPurpose = 'portcullis/signing-key';

/** The key that signs new material for a purpose. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** When the key was made (ms since the epoch): the age a scheduled rotation goes by. */
  readonly createdAt: number;
  /** Non-extractable private key. */
  readonly privateKey: CryptoKey;
  readonly publicJwk: PublicSigningJwk;
}

/** A public key that verifies, and the one algorithm it verifies under. */
export interface VerificationKey {
  readonly alg: SigningAlgorithm;
  readonly publicKey: CryptoKey;
}

/** A JSON Web Key Set document (RFC 7517 §5), as served at `/.well-known/jwks.json`. */
export type JsonWebKeySet = {
  keys: PublicSigningJwk[];
};

export interface RotationResult {
  /** The new active key. */
  readonly kid: string;
  /** Its algorithm. */
  readonly alg: SigningAlgorithm;
  /** Keys that were active until now and stay published until `publishUntil`. */
  readonly retiredKids: readonly string[];
  /** When the retired keys leave the JWKS (ms since the epoch). */
  readonly publishUntil: number;
  /** How many keys whose publication had ended were deleted. */
  readonly deleted: number;
}

export interface SigningKeyStoreOptions {
  /**
   * Longest lifetime of anything signed with a `token` key (the larger of the access token and
   * session token lifetimes). A rotation overlap shorter than this is refused.
   */
  readonly longestTokenLifetimeSeconds: number;
  /**
   * Algorithm of the `token` keys this store creates (`tokens.signing_algorithm`). Keys already
   * made keep theirs; both kinds verify. Default: EdDSA.
   */
  readonly tokenAlgorithm?: SigningAlgorithm;
  /** Time source for cache ageing. Default: the system clock. */
  readonly clock?: Clock;
  /** How long the in-memory view of the keys is trusted before it is re-read. Default 5000 ms. */
  readonly refreshIntervalMs?: number;
  /**
   * Minimum time between re-reads triggered by an unknown key id, so tokens with made-up key ids
   * cannot turn into a stream of database queries. Default 1000 ms.
   */
  readonly unknownKidRefreshMs?: number;
}

/** The store's options from the `tokens` settings, the same in the server and every CLI command. */
export function signingKeyStoreOptions(tokens: {
  readonly accessTokenTtlSeconds: number;
  readonly sessionTtlSeconds: number;
  readonly signingAlgorithm: SigningAlgorithm;
}): SigningKeyStoreOptions {
  return {
    longestTokenLifetimeSeconds: Math.max(tokens.accessTokenTtlSeconds, tokens.sessionTtlSeconds),
    tokenAlgorithm: tokens.signingAlgorithm,
  };
}

/**
 * Audit checkpoint keys are never unpublished: a checkpoint must verify offline for as long as
 * the log is kept, so its key outlives any overlap. Stored as the largest safe timestamp.
 */
const retainedForever = Number.MAX_SAFE_INTEGER;

/**
 * A token key published ahead of its rotation (`tokens.rotation_prepublish`): not active, and
 * published without an end until a rotation makes it the signing key. Retired token keys always
 * have a finite end, so for tokens this value marks the next key and nothing else.
 */
const nextKeyPublishUntil = Number.MAX_SAFE_INTEGER;

function isNextKey(key: StoredKey): boolean {
  return key.purpose === 'token' && !key.active && key.publishUntil === nextKeyPublishUntil;
}

/**
 * What is sealed for a key: the private JWK bound to its use, purpose and kid, so that whatever
 * secret box the store is given, no other sealed value can be opened as this key.
 */
interface SealedSigningKey {
  readonly use: typeof signingKeySealPurpose;
  readonly purpose: KeyPurpose;
  readonly kid: string;
  readonly jwk: JWK;
}

interface KeyEntry {
  readonly stored: StoredKey;
  readonly alg: SigningAlgorithm;
  readonly publicJwk: PublicSigningJwk;
  readonly publicKey: CryptoKey;
}

interface KeySnapshot {
  /** Order in which the read started, so a slow older read never overwrites a newer one. */
  readonly sequence: number;
  readonly loadedAt: number;
  readonly entries: ReadonlyMap<string, KeyEntry>;
  /** The newest active key: the one that signs. */
  readonly signingKid: string | null;
}

function isPublished(key: StoredKey, now: number): boolean {
  return key.active || (key.publishUntil !== null && now < key.publishUntil);
}

/**
 * Which active key signs. Normally there is exactly one; if two processes raced to create one,
 * every replica picks the same (newest, then highest kid) and both stay published.
 */
function newestActive(entries: Iterable<KeyEntry>): string | null {
  let chosen: StoredKey | null = null;
  for (const { stored } of entries) {
    if (!stored.active) continue;
    if (
      chosen === null ||
      stored.createdAt > chosen.createdAt ||
      (stored.createdAt === chosen.createdAt && stored.kid > chosen.kid)
    ) {
      chosen = stored;
    }
  }
  return chosen?.kid ?? null;
}

/** The algorithms whose keys a purpose may hold; a row with any other is not ours to use. */
function acceptsAlgorithm(purpose: KeyPurpose, alg: string): alg is SigningAlgorithm {
  return (signingAlgorithmsFor(purpose) as readonly string[]).includes(alg);
}

function parsePublicKey(stored: StoredKey, alg: SigningAlgorithm): PublicKeyMembers {
  const members = publicKeyMembersFor(alg, JSON.parse(stored.publicJwk) as JWK);
  if (members === null) {
    throw new PortcullisError('internal', `Signing key ${stored.kid} has an unusable ${alg} public key`);
  }
  return members;
}

function publishedJwk(members: PublicKeyMembers, kid: string, alg: SigningAlgorithm): PublicSigningJwk {
  return { ...members, kid, alg, use: 'sig' };
}

/**
 * Creates, rotates, caches and publishes signing keys for the `token` and `audit` purposes.
 *
 * @example
 * const keys = new SigningKeyStore(store.keys, box.withPurpose(signingKeySealPurpose), {
 *   ...signingKeyStoreOptions(config.tokens),
 *   clock,
 * });
 * await keys.ensureActiveKey('token', clock.now());
 * const jwks = await keys.publicKeys('token', clock.now());
 */
export class SigningKeyStore {
  readonly #repository: KeyRepository;
  readonly #box: SecretBox;
  readonly #clock: Clock;
  readonly #longestTokenLifetimeSeconds: number;
  readonly #tokenAlgorithm: SigningAlgorithm;
  readonly #refreshIntervalMs: number;
  readonly #unknownKidRefreshMs: number;
  readonly #snapshots = new Map<KeyPurpose, KeySnapshot>();
  readonly #loading = new Map<KeyPurpose, Promise<KeySnapshot>>();
  #reads = 0;
  /** Decrypted private keys by kid; opened once, dropped when the key leaves the table. */
  readonly #privateKeys = new Map<string, Promise<CryptoKey>>();

  constructor(repository: KeyRepository, box: SecretBox, options: SigningKeyStoreOptions) {
    if (!Number.isFinite(options.longestTokenLifetimeSeconds) || options.longestTokenLifetimeSeconds <= 0) {
      throw new TypeError('longestTokenLifetimeSeconds must be a positive number of seconds');
    }
    this.#repository = repository;
    this.#box = box;
    this.#clock = options.clock ?? systemClock;
    this.#longestTokenLifetimeSeconds = options.longestTokenLifetimeSeconds;
    this.#tokenAlgorithm = options.tokenAlgorithm ?? 'EdDSA';
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 5000;
    this.#unknownKidRefreshMs = options.unknownKidRefreshMs ?? 1000;
  }

  /**
   * Makes sure a key signs for `purpose`, creating the first one when there is none. Run at
   * start-up; returns the signing key.
   */
  async ensureActiveKey(purpose: KeyPurpose, now: number): Promise<SigningKey> {
    const snapshot = await this.#reload(purpose, true);
    if (snapshot.signingKid === null) {
      await this.#repository.insert(await this.#createKey(purpose, now));
      await this.#reload(purpose, true);
    }
    return this.activeSigningKey(purpose);
  }

  /** The key that signs for `purpose` now. Throws when there is none (see {@link ensureActiveKey}). */
  async activeSigningKey(purpose: KeyPurpose): Promise<SigningKey> {
    const snapshot = await this.#current(purpose);
    const entry = snapshot.signingKid === null ? undefined : snapshot.entries.get(snapshot.signingKid);
    if (!entry) {
      throw new PortcullisError(
        'internal',
        `There is no active ${purpose} signing key; restart Portcullis or run \`portcullis keys rotate\``,
      );
    }
    return {
      kid: entry.stored.kid,
      alg: entry.alg,
      createdAt: entry.stored.createdAt,
      privateKey: await this.#privateKey(entry),
      publicJwk: entry.publicJwk,
    };
  }

  /** The JWKS for `purpose`: the active key first, then retired keys still within their overlap. */
  async publicKeys(purpose: KeyPurpose, now: number): Promise<JsonWebKeySet> {
    const snapshot = await this.#current(purpose);
    const published = [...snapshot.entries.values()]
      .filter((entry) => isPublished(entry.stored, now))
      .sort(
        (a, b) =>
          Number(b.stored.kid === snapshot.signingKid) - Number(a.stored.kid === snapshot.signingKid) ||
          b.stored.createdAt - a.stored.createdAt,
      );
    return { keys: published.map((entry) => entry.publicJwk) };
  }

  /**
   * The next token key, published ahead of the rotation that will make it sign, so that verifiers
   * holding a cached JWKS know it before the first token it signs: the existing one when there is
   * one (and it has the configured algorithm), else a new one. Returns its kid and whether it was
   * made now.
   */
  async publishNext(now: number): Promise<{ readonly kid: string; readonly created: boolean }> {
    const existing = (await this.#repository.list('token')).find(
      (key) => isNextKey(key) && key.alg === this.#tokenAlgorithm,
    );
    if (existing) return { kid: existing.kid, created: false };
    const key = {
      ...(await this.#createKey('token', now)),
      active: false,
      publishUntil: nextKeyPublishUntil,
    };
    await this.#repository.insert(key);
    await this.#reload('token', true);
    return { kid: key.kid, created: true };
  }

  /** The kid of the token key published ahead of its rotation, if there is one. */
  async nextKid(): Promise<string | undefined> {
    const snapshot = await this.#current('token');
    return [...snapshot.entries.values()].find((entry) => isNextKey(entry.stored))?.stored.kid;
  }

  /**
   * The algorithm every new key of `purpose` gets: the configured one for tokens, EdDSA for audit.
   * The active key may still have another (the configuration changed since it was made); the next
   * rotation brings it in line.
   */
  algorithmFor(purpose: KeyPurpose): SigningAlgorithm {
    return purpose === 'token' ? this.#tokenAlgorithm : auditSigningAlgorithm;
  }

  /**
   * The public key that verifies material signed under `kid`, with the one algorithm it verifies
   * under, or undefined when the key is unknown or no longer published at `now`. An unknown kid
   * triggers a (rate-limited) re-read, so a key another process has just created is found.
   */
  async verificationKey(purpose: KeyPurpose, kid: string, now: number): Promise<VerificationKey | undefined> {
    let snapshot = await this.#current(purpose);
    if (!snapshot.entries.has(kid) && this.#clock.now() - snapshot.loadedAt >= this.#unknownKidRefreshMs) {
      snapshot = await this.#reload(purpose);
    }
    const entry = snapshot.entries.get(kid);
    return entry && isPublished(entry.stored, now)
      ? { alg: entry.alg, publicKey: entry.publicKey }
      : undefined;
  }

  /**
   * Creates a new active key for `purpose`; the previous ones stop signing and stay published for
   * `overlapSeconds` (token keys) so material they signed keeps verifying until it expires. Keys
   * whose publication has ended are deleted. Audit keys are retained for good, whatever the
   * overlap. Refuses an overlap shorter than the longest token lifetime.
   */
  async rotate(purpose: KeyPurpose, now: number, overlapSeconds: number): Promise<RotationResult> {
    const result = await this.#rotate(purpose, now, overlapSeconds, null);
    if (result === null) throw new PortcullisError('internal', 'The rotation did not happen');
    return result;
  }

  /**
   * {@link rotate}, but only if `expectedKid` is still the active key when the rotation starts:
   * of several replicas that find the same key due at once, one rotates and the others get null.
   * Run it inside the transaction that writes the audit event.
   */
  rotateIfStillActive(
    purpose: KeyPurpose,
    expectedKid: string,
    now: number,
    overlapSeconds: number,
  ): Promise<RotationResult | null> {
    return this.#rotate(purpose, now, overlapSeconds, expectedKid);
  }

  async #rotate(
    purpose: KeyPurpose,
    now: number,
    overlapSeconds: number,
    expectedKid: string | null,
  ): Promise<RotationResult | null> {
    if (!Number.isFinite(overlapSeconds) || overlapSeconds < 0) {
      throw new PortcullisError('validation_failed', 'The rotation overlap must be a number of seconds', {
        overlapSeconds,
      });
    }
    if (purpose === 'token' && overlapSeconds < this.#longestTokenLifetimeSeconds) {
      throw new PortcullisError(
        'validation_failed',
        `A rotation overlap of ${overlapSeconds}s is shorter than the longest token lifetime (${this.#longestTokenLifetimeSeconds}s): tokens issued before the rotation would stop verifying before they expire`,
        { overlapSeconds, longestTokenLifetimeSeconds: this.#longestTokenLifetimeSeconds },
      );
    }
    const publishUntil = purpose === 'audit' ? retainedForever : now + overlapSeconds * 1000;
    // First, so that the row lock it takes makes a concurrent conditional rotation wait, then stop.
    if (
      expectedKid !== null &&
      !(await this.#repository.retireIfActive(purpose, expectedKid, publishUntil))
    ) {
      return null;
    }
    const before = await this.#repository.list(purpose);
    const retiredKids = [
      ...(expectedKid === null ? [] : [expectedKid]),
      ...before.filter((key) => key.active).map((key) => key.kid),
    ];

    // The next key published ahead, when there is one: verifiers already know it.
    const next = before.find((key) => isNextKey(key) && key.alg === this.algorithmFor(purpose));
    let kid: string;
    if (next && (await this.#repository.activateIfNext(purpose, next.kid, nextKeyPublishUntil))) {
      kid = next.kid;
    } else {
      const key = await this.#createKey(purpose, now);
      await this.#repository.insert(key);
      kid = key.kid;
    }
    await this.#repository.retireOthers(purpose, kid, publishUntil);
    const deleted = await this.#repository.deleteUnpublished(purpose, now);
    await this.#reload(purpose, true);
    return { kid, alg: this.algorithmFor(purpose), retiredKids, publishUntil, deleted };
  }

  /**
   * Emergency rotation: creates a new `token` key and retires **every** other token key at once,
   * with no overlap — their rows (sealed private halves included) are deleted, so nothing they
   * signed verifies any more, on any replica, once its key view refreshes (within
   * `refreshIntervalMs`). The old keys are never opened: this works when they are lost.
   *
   * `authorize` sees the plan (new kid, kids to retire) before anything is written and throws to
   * refuse it (the recovery-key check). Run it inside the transaction that writes the audit event.
   */
  async replaceAll(
    purpose: 'token',
    now: number,
    authorize: (plan: { readonly install: string; readonly retire: readonly string[] }) => Promise<void>,
  ): Promise<{
    readonly kid: string;
    readonly alg: SigningAlgorithm;
    readonly retiredKids: readonly string[];
    readonly deleted: number;
  }> {
    const retiredKids = (await this.#repository.list(purpose)).map((key) => key.kid);
    const key = await this.#createKey(purpose, now);
    await authorize({ install: key.kid, retire: retiredKids });
    await this.#repository.insert(key);
    await this.#repository.retireOthers(purpose, key.kid, now);
    const deleted = await this.#repository.deleteUnpublished(purpose, now);
    await this.#reload(purpose, true);
    return { kid: key.kid, alg: this.algorithmFor(purpose), retiredKids, deleted };
  }

  /** Forgets the in-memory view; the next call re-reads the repository. */
  invalidate(): void {
    this.#snapshots.clear();
  }

  async #createKey(purpose: KeyPurpose, now: number): Promise<StoredKey> {
    const alg = this.algorithmFor(purpose);
    const { privateKey, publicKey } = await generateKeyPair(alg, {
      ...keyGenerationOptions(alg),
      extractable: true,
    });
    const members = publicKeyMembersFor(alg, await exportJWK(publicKey));
    if (members === null) throw new PortcullisError('internal', `${alg} key generation gave no public key`);
    const kid = await calculateJwkThumbprint(members);
    const publicJwk = publishedJwk(members, kid, alg);
    const sealed: SealedSigningKey = {
      use: signingKeySealPurpose,
      purpose,
      kid,
      jwk: await exportJWK(privateKey),
    };
    return {
      kid,
      purpose,
      alg,
      publicJwk: JSON.stringify(publicJwk),
      sealedPrivateJwk: await this.#box.seal(JSON.stringify(sealed)),
      createdAt: now,
      active: true,
      publishUntil: null,
    };
  }

  async #current(purpose: KeyPurpose): Promise<KeySnapshot> {
    const snapshot = this.#snapshots.get(purpose);
    if (snapshot && this.#clock.now() - snapshot.loadedAt < this.#refreshIntervalMs) return snapshot;
    return this.#reload(purpose);
  }

  /**
   * Re-reads the keys of a purpose. Concurrent refreshes share one read; after a write of our own
   * (`afterWrite`) a new read starts, since a read already under way may predate the write.
   */
  #reload(purpose: KeyPurpose, afterWrite = false): Promise<KeySnapshot> {
    const pending = this.#loading.get(purpose);
    if (pending && !afterWrite) return pending;
    const loading: Promise<KeySnapshot> = this.#read(purpose).finally(() => {
      if (this.#loading.get(purpose) === loading) this.#loading.delete(purpose);
    });
    this.#loading.set(purpose, loading);
    return loading;
  }

  async #read(purpose: KeyPurpose): Promise<KeySnapshot> {
    const loadedAt = this.#clock.now();
    const sequence = ++this.#reads;
    const previous = this.#snapshots.get(purpose)?.entries;
    const entries = new Map<string, KeyEntry>();
    for (const stored of await this.#repository.list(purpose)) {
      // Written by a newer version with another algorithm: not ours to publish or use.
      const alg = stored.alg;
      if (!acceptsAlgorithm(purpose, alg)) continue;
      const known = previous?.get(stored.kid);
      if (known && known.stored.publicJwk === stored.publicJwk && known.alg === alg) {
        entries.set(stored.kid, { ...known, stored });
        continue;
      }
      const members = parsePublicKey(stored, alg);
      // INVARIANT: a kid is the thumbprint of its public key; a row that says otherwise is refused.
      if ((await calculateJwkThumbprint(members)) !== stored.kid) {
        throw new PortcullisError('internal', `Signing key ${stored.kid} does not match its public key`);
      }
      const publicKey = (await importJWK(members, alg)) as CryptoKey;
      entries.set(stored.kid, { stored, alg, publicJwk: publishedJwk(members, stored.kid, alg), publicKey });
    }
    for (const kid of this.#privateKeys.keys()) {
      if (!entries.has(kid) && previous?.has(kid)) this.#privateKeys.delete(kid);
    }
    const snapshot: KeySnapshot = { sequence, loadedAt, entries, signingKid: newestActive(entries.values()) };
    // A read that started earlier but finished later must not replace a fresher view.
    const current = this.#snapshots.get(purpose);
    if (!current || current.sequence < sequence) this.#snapshots.set(purpose, snapshot);
    return snapshot;
  }

  #privateKey(entry: KeyEntry): Promise<CryptoKey> {
    let key = this.#privateKeys.get(entry.stored.kid);
    if (!key) {
      key = this.#openPrivateKey(entry);
      // A failed open is not cached: the next call tries again (e.g. after a KEK fix and restart).
      key.catch(() => this.#privateKeys.delete(entry.stored.kid));
      this.#privateKeys.set(entry.stored.kid, key);
    }
    return key;
  }

  async #openPrivateKey(entry: KeyEntry): Promise<CryptoKey> {
    const { kid, purpose } = entry.stored;
    const mismatch = () =>
      new PortcullisError('internal', `The private key of ${kid} does not match its public key`);
    let envelope: Partial<SealedSigningKey>;
    try {
      envelope = JSON.parse(await this.#box.open(entry.stored.sealedPrivateJwk)) as Partial<SealedSigningKey>;
    } catch (error) {
      if (error instanceof SyntaxError) throw mismatch();
      throw error;
    }
    // A sealed half pasted from another row, another purpose or another kind of secret is refused:
    // it would sign under a kid that is not its own.
    const jwk = envelope.jwk;
    if (
      envelope.use !== signingKeySealPurpose ||
      envelope.purpose !== purpose ||
      envelope.kid !== kid ||
      typeof jwk !== 'object' ||
      jwk === null ||
      !samePublicKey(entry.publicJwk, jwk) ||
      typeof jwk.d !== 'string'
    ) {
      throw mismatch();
    }
    return (await importJWK(jwk, entry.alg, { extractable: false })) as CryptoKey;
  }
}
