/**
 * Helpers for identity tests against real OpenID Connect providers on loopback:
 * - {@link MemoryEphemeralStore}: the EphemeralStore port in memory, with `tamper` for tests that
 *   change a pending value (the real adapters live in src/storage);
 * - {@link oidcSettings}: IdentityProviderSettings as the config loader would produce them;
 * - {@link demoIdpSettings}: the same, pointing at a running demo identity provider;
 * - {@link obtainIdpAccessToken}: an IdP-issued access token for a user, through the real
 *   authorization code flow (browser sign-in included) with a resource indicator;
 * - {@link closedPort} and {@link startSilentServer}: an IdP that is down, and one that accepts
 *   connections but never answers.
 */
import { createServer, type Server, type Socket } from 'node:net';
import * as client from 'openid-client';
import type { EphemeralStore } from '../src/app/ports.js';
import type { IdentityProviderSettings } from '../src/config/load.js';
import { Secret } from '../src/config/secret.js';
import type { DemoIdentityProvider } from '../src/identity/demo-identity-provider.js';
import { freePort } from './free-port.js';
import { signInThroughBrowser } from './oidc-browser.js';

export class MemoryEphemeralStore implements EphemeralStore {
  readonly #values = new Map<string, { value: string; expiresAt: number }>();

  async put(kind: string, key: string, value: string, expiresAt: number): Promise<void> {
    this.#values.set(`${kind}\u0000${key}`, { value, expiresAt });
  }

  async putIfAbsent(
    kind: string,
    key: string,
    value: string,
    now: number,
    expiresAt: number,
  ): Promise<boolean> {
    if ((await this.peek(kind, key, now)) !== undefined) return false;
    await this.put(kind, key, value, expiresAt);
    return true;
  }

  async take(kind: string, key: string, now: number): Promise<string | undefined> {
    const id = `${kind}\u0000${key}`;
    const entry = this.#values.get(id);
    this.#values.delete(id);
    return entry !== undefined && entry.expiresAt > now ? entry.value : undefined;
  }

  async peek(kind: string, key: string, now: number): Promise<string | undefined> {
    const entry = this.#values.get(`${kind}\u0000${key}`);
    return entry && now < entry.expiresAt ? entry.value : undefined;
  }

  async list(kind: string, now: number): Promise<{ key: string; value: string }[]> {
    const prefix = `${kind}\u0000`;
    return [...this.#values]
      .filter(([id, entry]) => id.startsWith(prefix) && now < entry.expiresAt)
      .map(([id, entry]) => ({ key: id.slice(prefix.length), value: entry.value }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async purgeExpired(now: number): Promise<number> {
    let purged = 0;
    for (const [id, entry] of this.#values) {
      if (entry.expiresAt <= now) {
        this.#values.delete(id);
        purged++;
      }
    }
    return purged;
  }

  /** Test hook: rewrites a stored value in place (e.g. to change a pending login's nonce). */
  tamper(kind: string, key: string, change: (value: string) => string): void {
    const id = `${kind}\u0000${key}`;
    const entry = this.#values.get(id);
    if (entry === undefined) throw new Error(`nothing stored under ${kind}/${key}`);
    this.#values.set(id, { ...entry, value: change(entry.value) });
  }

  /** Test hook: copies a stored value to another key (e.g. to replay a pending login). */
  copy(kind: string, from: string, to: string): void {
    const entry = this.#values.get(`${kind}\u0000${from}`);
    if (entry === undefined) throw new Error(`nothing stored under ${kind}/${from}`);
    this.#values.set(`${kind}\u0000${to}`, { ...entry });
  }

  get size(): number {
    return this.#values.size;
  }
}

type SettingsOverrides = Partial<Omit<IdentityProviderSettings, 'clientSecret'>> & {
  readonly clientSecret?: string;
};

/** Settings with the schema's defaults; `id`, `issuer` and `client_id` are usually overridden. */
export function oidcSettings(overrides: SettingsOverrides = {}): IdentityProviderSettings {
  const { clientSecret, ...rest } = overrides;
  return {
    id: 'corp',
    type: 'oidc',
    display_name: 'Corp SSO',
    issuer: 'http://127.0.0.1:1',
    client_id: 'portcullis',
    scopes: ['openid', 'profile', 'email', 'groups'],
    groups_claim: 'groups',
    group_mapping: {},
    mapping_rules: [],
    allow: [],
    deny: [],
    api_audiences: [],
    allowed_algorithms: ['RS256', 'ES256', 'EdDSA'],
    timeout: 5,
    ...rest,
    clientSecret: clientSecret === undefined ? undefined : new Secret(clientSecret, 'test client secret'),
  };
}

export function demoIdpSettings(
  idp: DemoIdentityProvider,
  overrides: SettingsOverrides = {},
): IdentityProviderSettings {
  return oidcSettings({
    issuer: idp.issuer,
    client_id: idp.clientId,
    clientSecret: idp.clientSecret,
    ...(idp.apiAudience ? { api_audiences: [idp.apiAudience] } : {}),
    ...overrides,
  });
}

/**
 * Gets an access token for `username` from the demo IdP the way a CLI would: authorization code
 * flow with PKCE, the user signing in through {@link signInThroughBrowser}, and `resource` set to
 * the IdP's API audience so the token is a JWT for Portcullis.
 */
export async function obtainIdpAccessToken(
  idp: DemoIdentityProvider,
  credentials: { readonly username: string; readonly password: string },
  redirectUri: string,
): Promise<string> {
  if (idp.apiAudience === undefined) throw new Error('the demo IdP was started without apiAudience');
  const configuration = await client.discovery(
    new URL(idp.issuer),
    idp.clientId,
    undefined,
    client.ClientSecretBasic(idp.clientSecret),
    {
      execute: [client.allowInsecureRequests],
    },
  );
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(configuration, {
    redirect_uri: redirectUri,
    scope: 'openid api',
    resource: idp.apiAudience,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const callback = await signInThroughBrowser(url, credentials);
  const tokens = await client.authorizationCodeGrant(
    configuration,
    callback,
    { pkceCodeVerifier: verifier, expectedState: state },
    { resource: idp.apiAudience },
  );
  return tokens.access_token;
}

/** A loopback port nothing listens on (bound, then released): an IdP that is down. */
export function closedPort(): Promise<number> {
  return freePort();
}

/** A TCP server that accepts connections and never answers: an IdP that hangs. */
export async function startSilentServer(): Promise<{ readonly url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
