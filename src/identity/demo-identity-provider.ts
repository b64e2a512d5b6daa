/**
 * A real OpenID Connect provider (oidc-provider) for the `npm start` demo and for tests. DEMO
 * ONLY: its users and passwords are public (see {@link demoUsers}), its state is in memory and
 * its keys are generated at start.
 *
 * What it offers:
 * - one confidential client for Portcullis (`client_secret_basic`, PKCE S256 required, the given
 *   redirect URIs), consent granted automatically for it;
 * - scopes `openid profile email groups`; the `groups` claim lists the user's demo groups;
 * - its own sign-in page (username + password compared in constant time); no dev interactions,
 *   which would accept any user;
 * - JWT access tokens for `apiAudience` when the client asks for that resource indicator
 *   (`resource=<apiAudience>`), carrying `groups`, `name` and `email`, so IdP-issued API tokens
 *   can be obtained through the real authorization code flow. No client credentials grant, no
 *   password grant, no other shortcut to a user's token;
 * - the device authorization grant (RFC 8628) for the same client, with its own code pages;
 * - {@link DemoIdentityProvider.rotateSigningKey} to rotate the signing key without a restart.
 *
 * It logs nothing itself.
 *
 * @example
 * const idp = await startDemoIdentityProvider({
 *   port: 9000,
 *   redirectUris: ['http://127.0.0.1:8080/auth/oidc/demo/callback'],
 *   apiAudience: 'urn:portcullis:api',
 * });
 * // identity_providers: [{ id: demo, type: oidc, issuer: idp.issuer, client_id: idp.clientId,
 * //   client_secret: { env: DEMO_IDP_CLIENT_SECRET }, scopes: [openid, profile, email, groups] }]
 * await idp.stop();
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Account, type Configuration, errors } from 'oidc-provider';
import { deviceCodePage, loginPage, messagePage, pageHeaders } from './demo-login-page.js';
import { DemoProviderStorage } from './demo-provider-storage.js';
import { type DemoUser, demoUsers } from './demo-users.js';

export { type DemoUser, demoUsers } from './demo-users.js';

export interface DemoIdentityProviderOptions {
  /** Port to listen on; 0 picks a free one (the issuer then carries the real port). */
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default `http://<host>:<port>`. */
  readonly issuer?: string;
  /** Portcullis callback URLs the client may use. */
  readonly redirectUris: readonly string[];
  /**
   * Resource indicator (and `aud`) of JWT access tokens for the Portcullis API: an absolute URI
   * such as `urn:portcullis:api` (RFC 8707). Omit to issue none.
   */
  readonly apiAudience?: string;
  /** Default `portcullis`. */
  readonly clientId?: string;
  /** Default: 32 random bytes, base64url. Returned in the handle. */
  readonly clientSecret?: string;
  /**
   * Whether profile and group claims go into the ID token (default true). With false the provider
   * behaves like IdPs that conform strictly to OIDC Core and release them at userinfo only.
   */
  readonly claimsInIdToken?: boolean;
  /** Default {@link demoUsers}. */
  readonly users?: readonly DemoUser[];
  /** Life of a device code (RFC 8628), default 600 s; tests shorten it to see `expired_token`. */
  readonly deviceCodeTtlSeconds?: number;
}

export interface DemoIdentityProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly users: readonly DemoUser[];
  readonly apiAudience: string | undefined;
  /** Key ids currently published in the JWKS, newest (signing) first. */
  readonly signingKeyIds: readonly string[];
  /**
   * Generates a new signing key and signs with it from now on; the previous key stays published
   * so tokens already issued keep verifying. Sessions survive. Returns the new key id.
   */
  rotateSigningKey(): Promise<string>;
  stop(): Promise<void>;
}

const accessTokenTtlSeconds = 600;
const maxFormBytes = 8192;
/** Keys kept in the JWKS after rotations: the signing key and one predecessor. */
const publishedKeys = 2;

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

async function newSigningKey(): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxFormBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendPage(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, pageHeaders);
  res.end(html);
}

/** Checks a username and password without revealing through timing which part was wrong. */
class DemoDirectory {
  readonly #byName = new Map<string, { user: DemoUser; passwordHash: Buffer }>();
  readonly #decoy = sha256(randomBytes(32).toString('base64url'));

  constructor(readonly users: readonly DemoUser[]) {
    for (const user of users) this.#byName.set(user.username, { user, passwordHash: sha256(user.password) });
  }

  find(username: string): DemoUser | undefined {
    return this.#byName.get(username)?.user;
  }

  authenticate(username: string, password: string): DemoUser | undefined {
    const entry = this.#byName.get(username);
    // Compare against a decoy for unknown users so both paths cost the same.
    const matches = timingSafeEqual(sha256(password), entry?.passwordHash ?? this.#decoy);
    return matches && entry ? entry.user : undefined;
  }

  claimsOf(user: DemoUser): Record<string, unknown> & { sub: string } {
    return {
      sub: user.username,
      name: user.name,
      preferred_username: user.username,
      email: user.email,
      email_verified: true,
      groups: [...user.groups],
    };
  }
}

interface ProviderSetup {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly apiAudience: string | undefined;
  readonly claimsInIdToken: boolean;
  readonly directory: DemoDirectory;
  readonly storage: DemoProviderStorage;
  readonly cookieKeys: readonly string[];
  readonly deviceCodeTtlSeconds: number;
}

function buildProvider(setup: ProviderSetup, keys: readonly Record<string, unknown>[]): Provider {
  const { clientId, directory, apiAudience } = setup;
  const configuration: Configuration = {
    adapter: setup.storage.adapterFor,
    clients: [
      {
        client_id: clientId,
        client_secret: setup.clientSecret,
        redirect_uris: setup.redirectUris,
        grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys },
    cookies: { keys: setup.cookieKeys },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    responseTypes: ['code'],
    conformIdTokenClaims: !setup.claimsInIdToken,
    pkce: { required: () => true },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: accessTokenTtlSeconds,
      AuthorizationCode: 60,
      DeviceCode: setup.deviceCodeTtlSeconds,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    findAccount: async (_ctx, sub): Promise<Account | undefined> => {
      const user = directory.find(sub);
      return user && { accountId: sub, claims: async () => directory.claimsOf(user) };
    },
    // Consent for the Portcullis client is implied: every scope, claim and resource it asks for
    // (and oidc-provider allows) is granted without a consent page.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const accountId = oidc.account?.accountId;
      if (oidc.client.clientId !== clientId || accountId === undefined) return undefined;
      const existingId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(clientId);
      const grant =
        (existingId ? await oidc.provider.Grant.find(existingId) : undefined) ??
        new oidc.provider.Grant({ accountId, clientId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      if (oidc.requestParamClaims.size > 0) grant.addOIDCClaims([...oidc.requestParamClaims]);
      for (const [indicator, server] of Object.entries(oidc.resourceServers)) {
        grant.addResourceScope(indicator, server.scope);
      }
      await grant.save();
      return grant;
    },
    extraTokenClaims: async (_ctx, token) => {
      if (
        token.kind !== 'AccessToken' ||
        token.accountId === undefined ||
        token.resourceServer === undefined
      ) {
        return undefined;
      }
      const user = directory.find(token.accountId);
      return user && { groups: [...user.groups], name: user.name, email: user.email };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = messagePage(
        'Sign-in error',
        `${out.error ?? 'error'}${out.error_description ? `: ${out.error_description}` : ''}`,
      );
    },
    features: {
      devInteractions: { enabled: false },
      // RFC 8628, for `portcullis login --device`: the user code pages are the demo's own.
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx, form, _out, err) => {
          ctx.type = 'html';
          ctx.body = deviceCodePage(
            err ? 'That code is not valid or has expired. Try again.' : 'Enter the code your device shows.',
            form,
            '<button type="submit" form="op.deviceInputForm">Continue</button>',
          );
        },
        userCodeConfirmSource: async (ctx, form, client, _deviceInfo, userCode) => {
          ctx.type = 'html';
          ctx.body = deviceCodePage(
            `Sign in to ${client.clientId} with the code ${userCode}? Only continue if your device shows this code.`,
            form,
            '<button type="submit" form="op.deviceConfirmForm">Continue</button> <button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>',
          );
        },
        successSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = messagePage('Signed in', 'Your device is signed in. You can close this window.');
        },
      },
      clientCredentials: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (apiAudience === undefined || resourceIndicator !== apiAudience)
            throw new errors.InvalidTarget();
          return {
            scope: 'api',
            audience: apiAudience,
            accessTokenTTL: accessTokenTtlSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
  const provider = new Provider(setup.issuer, configuration);
  return provider;
}

async function handleInteraction(
  provider: Provider,
  setup: ProviderSetup,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/.exec(path);
  if (!match) return sendPage(res, 404, messagePage('Not found', 'There is nothing here.'));
  const [, uid, action] = match;
  let details: Awaited<ReturnType<Provider['interactionDetails']>>;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return sendPage(res, 400, messagePage('Sign-in expired', 'Go back to Portcullis and sign in again.'));
  }
  if (details.uid !== uid) {
    return sendPage(res, 400, messagePage('Sign-in expired', 'Go back to Portcullis and sign in again.'));
  }
  const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : '';

  if (req.method === 'POST' && action === 'abort') {
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
      { mergeWithLastSubmission: false },
    );
  }
  if (details.prompt.name !== 'login') {
    // Consent is granted in loadExistingGrant for the Portcullis client; nobody else gets any.
    return provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'consent is not available at the demo identity provider' },
      { mergeWithLastSubmission: false },
    );
  }
  if (req.method === 'GET' && action === undefined) {
    return sendPage(res, 200, loginPage({ uid: details.uid, clientId, demoUsers: setup.directory.users }));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (form === undefined) return sendPage(res, 400, messagePage('Bad request', 'Send the sign-in form.'));
    const username = form.get('username') ?? '';
    const user = setup.directory.authenticate(username, form.get('password') ?? '');
    if (user === undefined) {
      const page = loginPage({
        uid: details.uid,
        clientId,
        username,
        error: 'Unknown username or wrong password.',
        demoUsers: setup.directory.users,
      });
      return sendPage(res, 401, page);
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.username } },
      { mergeWithLastSubmission: false },
    );
  }
  return sendPage(res, 405, messagePage('Not allowed', 'This page does not accept that method.'));
}

/** Starts the demo identity provider; resolves once it is listening. */
export async function startDemoIdentityProvider(
  options: DemoIdentityProviderOptions,
): Promise<DemoIdentityProvider> {
  if (options.apiAudience !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(options.apiAudience)) {
    // oidc-provider would otherwise refuse every token request for it with invalid_target.
    throw new TypeError(
      `apiAudience must be an absolute URI (an RFC 8707 resource indicator), such as urn:portcullis:api; got "${options.apiAudience}"`,
    );
  }
  const host = options.host ?? '127.0.0.1';
  let current: Provider | undefined;
  let setup: ProviderSetup | undefined;

  const server: Server = createServer((req, res) => {
    const provider = current;
    if (provider === undefined || setup === undefined) {
      res.writeHead(503).end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://demo.invalid').pathname;
    if (path.startsWith('/interaction/')) {
      handleInteraction(provider, setup, req, res, path).catch(() => {
        if (!res.headersSent) sendPage(res, 500, messagePage('Error', 'The sign-in could not be processed.'));
        else res.destroy();
      });
      return;
    }
    provider.callback()(req, res);
  });
  // Node's default of 5 s closes an idle connection just when a client on a busy machine may
  // reuse it (seen as "fetch failed" on a sign-in a few seconds after discovery). Advertised in
  // `Keep-Alive: timeout=…`, a longer one leaves closing to the client, which closes 1 s earlier.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const issuer = options.issuer ?? `http://${urlHost}:${port}`;
  setup = {
    issuer,
    clientId: options.clientId ?? 'portcullis',
    clientSecret: options.clientSecret ?? randomBytes(32).toString('base64url'),
    redirectUris: options.redirectUris,
    apiAudience: options.apiAudience,
    claimsInIdToken: options.claimsInIdToken ?? true,
    directory: new DemoDirectory(options.users ?? demoUsers),
    storage: new DemoProviderStorage(),
    cookieKeys: [randomBytes(32).toString('base64url')],
    deviceCodeTtlSeconds: options.deviceCodeTtlSeconds ?? 600,
  };
  let keys = [await newSigningKey()];
  try {
    current = buildProvider(setup, keys);
  } catch (error) {
    server.close();
    throw error;
  }

  const fixedSetup = setup;
  return {
    issuer,
    clientId: fixedSetup.clientId,
    clientSecret: fixedSetup.clientSecret,
    users: fixedSetup.directory.users,
    apiAudience: fixedSetup.apiAudience,
    get signingKeyIds() {
      return keys.map((key) => String(key.kid));
    },
    async rotateSigningKey() {
      const next = [await newSigningKey(), ...keys].slice(0, publishedKeys);
      current = buildProvider(fixedSetup, next);
      keys = next;
      return String(next[0]?.kid);
    },
    async stop() {
      current = undefined;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
