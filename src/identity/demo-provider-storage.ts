/**
 * In-memory storage for the demo identity provider's oidc-provider models (sessions,
 * interactions, codes, grants). One instance per demo IdP: oidc-provider's own development
 * adapter shares one store across every provider in the process, which would let a second IdP in
 * the same test process find the first one's authorization codes.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  readonly payload: AdapterPayload;
  readonly expiresAt: number;
}

/** A demo never needs more; beyond it the oldest entries go first. */
const maxEntries = 10_000;

export class DemoProviderStorage {
  readonly #entries = new Map<string, Entry>();
  readonly #sessionByUid = new Map<string, string>();
  /** Device flow (RFC 8628): user code → DeviceCode id. */
  readonly #deviceByUserCode = new Map<string, string>();

  /** The adapter factory to pass as oidc-provider's `adapter` option. */
  readonly adapterFor = (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    return {
      upsert: async (id, payload, expiresIn) => {
        this.#set(key(id), payload, expiresIn);
        if (model === 'Session' && typeof payload.uid === 'string') this.#sessionByUid.set(payload.uid, id);
        if (model === 'DeviceCode' && typeof payload.userCode === 'string')
          this.#deviceByUserCode.set(payload.userCode, id);
      },
      find: async (id) => this.#get(key(id)),
      findByUid: async (uid) => {
        const id = this.#sessionByUid.get(uid);
        return id === undefined ? undefined : this.#get(key(id));
      },
      findByUserCode: async (userCode) => {
        const id = this.#deviceByUserCode.get(userCode);
        return id === undefined ? undefined : this.#get(key(id));
      },
      consume: async (id) => {
        const payload = this.#get(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        const payload = this.#get(key(id));
        this.#entries.delete(key(id));
        if (model === 'Session' && typeof payload?.uid === 'string') this.#sessionByUid.delete(payload.uid);
        if (model === 'DeviceCode' && typeof payload?.userCode === 'string')
          this.#deviceByUserCode.delete(payload.userCode);
      },
      revokeByGrantId: async (grantId) => {
        for (const [entryKey, entry] of this.#entries) {
          if (entryKey.startsWith(`${model}:`) && entry.payload.grantId === grantId)
            this.#entries.delete(entryKey);
        }
      },
    };
  };

  #get(key: string): AdapterPayload | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  #set(key: string, payload: AdapterPayload, expiresIn: number | undefined): void {
    this.#entries.delete(key);
    const expiresAt =
      typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
    this.#entries.set(key, { payload, expiresAt });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= maxEntries) break;
      this.#entries.delete(oldest);
    }
  }
}
