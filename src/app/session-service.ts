/**
 * Who is calling: turns a bearer token (a Portcullis session token, or an IdP-issued JWT) into a
 * Principal, and runs the CLI login (loopback redirect + PKCE, RFC 8252) on top of the browser
 * login of any identity provider (OIDC or SAML: one {@link BrowserLogin} each).
 * Rejected credentials leave a security audit event.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { IdentityLinks, parseIdentity } from '../core/identity-links.js';
import { type Principal, principalId } from '../core/principal.js';
import type { Store } from './ports.js';
import { assertMayAct } from './principal-standing.js';

/** Verifies Portcullis session tokens and issues them. */
export interface SessionTokens {
  issueSessionToken(
    principal: Principal,
    now: number,
    ttlSeconds: number,
    sessionsValidAfter: number | null,
  ): Promise<{ token: string; expiresAt: number }>;
  /** Returns the principal id (`sub`) of a valid session token; throws invalid_token. */
  verifySessionToken(
    token: string,
    now: number,
  ): Promise<{ sub: string; jti: string; sessionsValidAfter: number | null; expiresAt: number }>;
  readonly issuer: string;
}

/** An IdP-issued bearer token, verified. */
export interface VerifiedIdpToken {
  readonly principal: Principal;
  /** `iat` in ms, null when the token has none. */
  readonly issuedAt: number | null;
  readonly expiresAt: number;
}

/** Verifies IdP-issued JWTs presented as API bearer tokens. */
export interface IdpBearerVerifier {
  verify(token: string): Promise<VerifiedIdpToken>;
}

/** One identity provider's browser login (OIDC or SAML: src/identity). */
export interface BrowserLogin {
  readonly id: string;
  readonly displayName: string;
  /** Selects the login URLs: `/auth/oidc/{id}/callback` or `/auth/saml/{id}/acs`. Default `oidc`. */
  readonly protocol?: 'oidc' | 'saml';
  /** `context` travels with the pending login (opaque to the IdP adapter); `loginId` binds it to the browser. */
  begin(input: {
    redirectUri: string;
    context?: string;
  }): Promise<{ authorizationUrl: string; loginId: string }>;
  /** SAML only: this service provider's metadata XML, to register at the IdP. */
  serviceProviderMetadata?(): string;
  /** `form`: the POSTed fields, for bindings that post (SAML HTTP-POST). */
  complete(
    callbackUrl: URL,
    loginId?: string,
    form?: Readonly<Record<string, unknown>>,
  ): Promise<{ principal: Principal; context?: string }>;
  /** Device authorization grant (RFC 8628), for IdPs that offer it; see {@link OidcLogin}. */
  beginDevice?(): Promise<{
    deviceCode: string;
    userCode: string;
    verificationUri: string;
    verificationUriComplete: string | undefined;
    expiresInSeconds: number;
    intervalSeconds: number;
  }>;
  pollDevice?(
    deviceCode: string,
  ): Promise<
    { status: 'authorization_pending' | 'slow_down' } | { status: 'complete'; principal: Principal }
  >;
}

/** What a CLI gets when it starts a device login (RFC 8628 §3.2, with Portcullis's own handle). */
export interface DeviceLoginStart {
  /** Opaque handle the CLI polls with; the IdP's device code never leaves the server. */
  readonly deviceId: string;
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | null;
  readonly expiresAt: number;
  readonly intervalSeconds: number;
}

export type DeviceLoginPoll =
  | { readonly status: 'authorization_pending' | 'slow_down'; readonly intervalSeconds: number }
  | {
      readonly status: 'complete';
      readonly token: string;
      readonly expiresAt: number;
      readonly principal: Principal;
    };

interface PendingDeviceLogin {
  readonly idp: string;
  readonly deviceCode: string;
  readonly intervalSeconds: number;
  readonly nextPollAt: number;
  readonly expiresAt: number;
}

export interface SessionServiceDeps {
  readonly store: Store;
  readonly tokens: SessionTokens;
  readonly idpBearer: IdpBearerVerifier | null;
  readonly logins: ReadonlyMap<string, BrowserLogin>;
  readonly clock: Clock;
  readonly sessionTtlSeconds: number;
  readonly publicUrl: string;
  /** Per IdP `groups_max_age` in seconds: older groups make the session refused until a new sign-in. */
  readonly groupsMaxAgeSeconds?: ReadonlyMap<string, number>;
  /** `identity_links`: which (idp, subject) sign-ins are one principal. None by default. */
  readonly identityLinks?: IdentityLinks;
}

interface CliLoginIntent {
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly state: string;
}

/** A plain browser sign-in: the web console page to show afterwards. */
interface ConsoleLoginIntent {
  readonly consolePath: string;
}

/** A browser sign-in's web console session: the cookie's token and the page to go to. */
export interface ConsoleSession {
  readonly token: string;
  /** How long the browser keeps it: the token's own lifetime. */
  readonly maxAgeSeconds: number;
  readonly landing: string;
}

const cliCodeKind = 'cli-login-code';
/** Session token ids ended by logout, kept until the token would have expired anyway. */
const revokedSessionKind = 'revoked-session';
const cliCodeTtlMs = 120_000;
const deviceLoginKind = 'cli-device-login';
/** A poll this much earlier than the interval still counts as on time (network jitter). */
const devicePollToleranceMs = 500;

function sha256base64url(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((group, i) => group === right[i]);
}

/**
 * Where a plain browser sign-in may land: a page of the web console, as a path on this server
 * (never a URL, so a crafted login link cannot send the browser elsewhere once signed in).
 */
export function isConsolePath(path: string): boolean {
  return (
    path.length <= 512 &&
    /^\/console(?:\/[A-Za-z0-9/_.-]*)?(?:\?[A-Za-z0-9=&_.,%-]*)?$/.test(path) &&
    !path.includes('..')
  );
}

/** A console page to return to after a browser sign-in; `/console` when `path` is not one. */
function consoleLanding(path: string | undefined): string {
  return path !== undefined && isConsolePath(path) ? path : '/console';
}

/** Only loopback redirect URIs are accepted for CLI logins (RFC 8252 §7.3). */
export function isLoopbackRedirect(uri: string): boolean {
  try {
    const url = new URL(uri);
    return (
      url.protocol === 'http:' &&
      ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname) &&
      url.port !== ''
    );
  } catch {
    return false;
  }
}

/** Errors that mean an IdP-issued token, or the principal it names, is refused. */
export const tokenRejectionCodes: ReadonlySet<string> = new Set([
  'invalid_token',
  'unauthenticated',
  'reauthentication_required',
  'sign_in_not_allowed',
  'principal_disabled',
  'principal_locked',
]);

export class SessionService {
  readonly #links: IdentityLinks;

  constructor(private readonly deps: SessionServiceDeps) {
    this.#links = deps.identityLinks ?? IdentityLinks.none;
  }

  /**
   * The one place a sign-in (browser, CLI loopback, device) or an IdP-issued bearer JWT becomes
   * the principal it acts as: `id` is the canonical id of a linked identity (`identity_links`),
   * while `idp`/`subject` stay the identity used, for the audit trail. Never by any claim.
   */
  #canonical(principal: Principal): Principal {
    const id = this.#links.canonicalId(principal.idp, principal.subject);
    return id === principal.id ? principal : { ...principal, id };
  }

  /** `auth.login` data naming the linked identity used, when it is not the canonical one. */
  static #linkedVia(principal: Principal): { linkedIdentity?: string } {
    const used = principalId(principal.idp, principal.subject);
    return used === principal.id ? {} : { linkedIdentity: used };
  }

  /**
   * Whether browsers reach Portcullis over https: `server.public_url` says so, not the protocol of
   * a request, which is plain http behind a TLS-terminating proxy unless `trust_proxy` is set.
   * Login cookies are `Secure` (and the SAML one `SameSite=None`) exactly then.
   */
  get httpsPublicUrl(): boolean {
    return new URL(this.deps.publicUrl).protocol === 'https:';
  }

  /** The origin browsers use (`server.public_url`): console forms must come from it. */
  get publicOrigin(): string {
    return new URL(this.deps.publicUrl).origin;
  }

  get providers(): { id: string; displayName: string; protocol: 'oidc' | 'saml'; loginUrl: string }[] {
    return [...this.deps.logins.values()].map((l) => {
      const protocol = l.protocol ?? 'oidc';
      return {
        id: l.id,
        displayName: l.displayName,
        protocol,
        loginUrl: `${this.deps.publicUrl}/auth/${protocol}/${encodeURIComponent(l.id)}/login`,
      };
    });
  }

  /**
   * Refuses a principal whose groups are older than its IdP's `groups_max_age`. A linked principal
   * may have signed in through any of its IdPs: the shortest of their max ages applies.
   */
  private checkGroupsAge(principal: { id: string; groupsAssertedAt: number }, now: number): void {
    let strictest: { idp: string; maxAge: number } | undefined;
    for (const identity of this.#links.identitiesOf(principal.id)) {
      const idp = parseIdentity(identity)?.idp ?? '';
      const maxAge = this.deps.groupsMaxAgeSeconds?.get(idp);
      if (maxAge !== undefined && (strictest === undefined || maxAge < strictest.maxAge))
        strictest = { idp, maxAge };
    }
    if (strictest !== undefined && now - principal.groupsAssertedAt > strictest.maxAge * 1000) {
      throw new PortcullisError(
        'reauthentication_required',
        `The groups from your last sign-in are older than ${strictest.maxAge} s (groups_max_age of "${strictest.idp}"); sign in again`,
        {
          reason: 'groups_too_old',
          idp: strictest.idp,
          groupsAssertedAt: new Date(principal.groupsAssertedAt).toISOString(),
        },
      );
    }
  }

  /**
   * Resolves the caller of an API request; throws unauthenticated / invalid_token (audited as
   * `auth.token_rejected`), or identity_provider_unavailable when an IdP token cannot be checked.
   */
  async authenticate(authorization: string | undefined, from: RequestOrigin): Promise<Principal> {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization ?? '');
    if (!match?.[1])
      throw new PortcullisError(
        'unauthenticated',
        'Send a bearer token: a Portcullis session token or an IdP-issued JWT',
      );
    const token = match[1];
    const now = this.deps.clock.now();
    try {
      const payload = decodeJwtPayload(token);
      if (payload?.iss === this.deps.tokens.issuer || !this.deps.idpBearer) {
        const { sub, jti, sessionsValidAfter } = await this.deps.tokens.verifySessionToken(token, now);
        if (await this.deps.store.ephemeral.peek(revokedSessionKind, jti, now)) {
          throw new PortcullisError('invalid_token', 'The session was ended (logged out)', {
            reason: 'session_revoked',
          });
        }
        const principal = await this.deps.store.principals.get(sub);
        if (!principal)
          throw new PortcullisError('invalid_token', 'The session belongs to an unknown principal', {
            reason: 'unknown_principal',
          });
        assertMayAct(principal, { kind: 'session', sessionsValidAfter });
        this.checkGroupsAge(principal, now);
        return principal;
      }
      const verified = await this.deps.idpBearer.verify(token);
      const principal = this.#canonical(verified.principal);
      await this.deps.store.transaction(async (tx) => {
        const known = await tx.principals.get(principal.id);
        assertMayAct(known, { kind: 'idp', issuedAt: verified.issuedAt, expiresAt: verified.expiresAt });
        await tx.principals.upsert(principal, now);
        // The groups decide who may approve: a first sight of this principal, or groups that
        // differ from what the last login or token asserted, is a sign-in the audit log shows.
        if (known && sameGroups(known.groups, principal.groups)) return;
        await tx.audit.append(
          {
            type: 'auth.login',
            actor: principal.id,
            sourceIp: from.sourceIp,
            userAgent: from.userAgent,
            data: {
              idp: principal.idp,
              groups: principal.groups,
              client: 'idp_token',
              ...SessionService.#linkedVia(principal),
              ...(known ? { previousGroups: known.groups } : {}),
            },
          },
          now,
        );
      });
      return principal;
    } catch (error) {
      // Only a verdict on the token or on its principal is a rejection. The IdP being down, the
      // database or the audit log failing say nothing about the token: the caller may retry, and a
      // 401 would send clients to sign in again while hiding the fault (502, 503 or 500 instead).
      if (!(error instanceof PortcullisError) || !tokenRejectionCodes.has(error.code)) throw error;
      const reason = String(error.details.reason ?? error.details.rule ?? error.message);
      await this.deps.store.transaction((tx) =>
        tx.audit.append(
          {
            type: 'auth.token_rejected',
            actor: 'anonymous',
            severity: 'warning',
            sourceIp: from.sourceIp,
            userAgent: from.userAgent,
            reason,
            data: {
              issuer: typeof decodeJwtPayload(token)?.iss === 'string' ? decodeJwtPayload(token)?.iss : null,
            },
          },
          now,
        ),
      );
      throw error;
    }
  }

  private login(idp: string, protocol?: 'oidc' | 'saml'): BrowserLogin {
    const login = this.deps.logins.get(idp);
    if (!login || (protocol !== undefined && (login.protocol ?? 'oidc') !== protocol))
      throw new PortcullisError(
        'not_found',
        `No ${protocol ? `${protocol.toUpperCase()} ` : ''}identity provider "${idp}"`,
      );
    return login;
  }

  /** The SAML service provider metadata for one SAML IdP (not_found for others). */
  samlMetadata(idp: string): string {
    const login = this.login(idp, 'saml');
    if (!login.serviceProviderMetadata) throw new PortcullisError('not_found');
    return login.serviceProviderMetadata();
  }

  callbackUrl(idp: string): string {
    const protocol = this.deps.logins.get(idp)?.protocol ?? 'oidc';
    const last = protocol === 'saml' ? 'acs' : 'callback';
    return `${this.deps.publicUrl}/auth/${protocol}/${encodeURIComponent(idp)}/${last}`;
  }

  /**
   * Starts a browser login; for a CLI login, the intent travels with the IdP round trip. The
   * returned `loginId` goes into a browser cookie so the callback can only be finished by the
   * browser that started it (login CSRF).
   */
  async beginLogin(
    idp: string,
    cli: CliLoginIntent | null,
    protocol?: 'oidc' | 'saml',
    consolePath?: string,
  ): Promise<{ authorizationUrl: string; loginId: string }> {
    if (cli && !isLoopbackRedirect(cli.redirectUri)) {
      throw new PortcullisError(
        'validation_failed',
        'redirect_uri must be an http loopback address with a port',
      );
    }
    if (cli && !/^[A-Za-z0-9_-]{43}$/.test(cli.codeChallenge)) {
      throw new PortcullisError(
        'validation_failed',
        'code_challenge must be a base64url SHA-256 (S256) value',
      );
    }
    const { authorizationUrl, loginId } = await this.login(idp, protocol).begin({
      redirectUri: this.callbackUrl(idp),
      context: JSON.stringify(
        cli ?? ({ consolePath: consoleLanding(consolePath) } satisfies ConsoleLoginIntent),
      ),
    });
    return { authorizationUrl, loginId };
  }

  /**
   * Records a refused sign-in as `auth.login_failed` (severity warning): `data.code` is the error
   * code, `data.failure` the refusal's `reason` (the code when it has none), beside `data`.
   */
  async #loginFailed(
    error: unknown,
    from: RequestOrigin,
    data: Readonly<Record<string, string>>,
    now: number,
  ): Promise<void> {
    const code = error instanceof PortcullisError ? error.code : 'internal';
    const reason = error instanceof PortcullisError ? error.details.reason : undefined;
    await this.deps.store.transaction((tx) =>
      tx.audit.append(
        {
          type: 'auth.login_failed',
          actor: 'anonymous',
          severity: 'warning',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          reason: error instanceof Error ? error.message : String(error),
          data: { ...data, code, failure: typeof reason === 'string' ? reason : code },
        },
        now,
      ),
    );
  }

  /**
   * Finishes a browser login. A CLI login returns where to send the browser: the CLI's loopback
   * listener with a one-time code. A plain browser login returns a web console session instead.
   */
  async completeLogin(
    idp: string,
    callbackUrl: URL,
    loginId: string | undefined,
    from: RequestOrigin,
    form?: Readonly<Record<string, unknown>>,
    protocol?: 'oidc' | 'saml',
  ): Promise<{ principal: Principal; redirectTo: string | null; consoleSession: ConsoleSession | null }> {
    const now = this.deps.clock.now();
    let result: { principal: Principal; context?: string };
    try {
      // Always bound to the browser: a callback without the login cookie comes from another
      // browser (login CSRF, or a victim sent someone else's CLI login). '' matches no loginId, so
      // the pending sign-in is consumed and refused as browser_mismatch.
      const completed = await this.login(idp, protocol).complete(callbackUrl, loginId ?? '', form);
      result = { ...completed, principal: this.#canonical(completed.principal) };
      assertMayAct(await this.deps.store.principals.get(result.principal.id));
    } catch (error) {
      await this.#loginFailed(error, from, { idp }, now);
      throw error;
    }
    const { principal } = result;
    const intent = result.context
      ? (JSON.parse(result.context) as Partial<CliLoginIntent & ConsoleLoginIntent>)
      : {};
    const cli = typeof intent.redirectUri === 'string' ? (intent as CliLoginIntent) : null;
    const code = cli ? randomBytes(32).toString('base64url') : null;
    const sessionsValidAfter = await this.deps.store.transaction(async (tx) => {
      await tx.principals.upsert(principal, now);
      // Checked again with the row written: a lock that committed since the check above wins.
      const stored = await tx.principals.get(principal.id);
      assertMayAct(stored);
      if (cli && code) {
        await tx.ephemeral.put(
          cliCodeKind,
          sha256base64url(code),
          JSON.stringify({
            principalId: principal.id,
            codeChallenge: cli.codeChallenge,
            redirectUri: cli.redirectUri,
          }),
          now + cliCodeTtlMs,
        );
      }
      await tx.audit.append(
        {
          type: 'auth.login',
          actor: principal.id,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          data: {
            idp,
            groups: principal.groups,
            client: cli ? 'cli' : 'browser',
            ...SessionService.#linkedVia(principal),
          },
        },
        now,
      );
      return stored?.sessionsValidAfter ?? null;
    });
    if (cli && code) {
      const target = new URL(cli.redirectUri);
      target.searchParams.set('code', code);
      target.searchParams.set('state', cli.state);
      return { principal, redirectTo: target.toString(), consoleSession: null };
    }
    const session = await this.deps.tokens.issueSessionToken(
      principal,
      now,
      this.deps.sessionTtlSeconds,
      sessionsValidAfter,
    );
    return {
      principal,
      redirectTo: null,
      consoleSession: {
        token: session.token,
        maxAgeSeconds: (session.expiresAt - now) / 1000,
        landing: consoleLanding(intent.consolePath),
      },
    };
  }

  /**
   * Ends the caller's own session at once, for every replica: its token id is refused from now
   * until the token would have expired. Audited in the same transaction.
   */
  async logout(principal: Principal, authorization: string | undefined, from: RequestOrigin): Promise<void> {
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    const now = this.deps.clock.now();
    if (!token) throw new PortcullisError('unauthenticated');
    const payload = decodeJwtPayload(token);
    if (payload?.iss !== this.deps.tokens.issuer) {
      throw new PortcullisError(
        'validation_failed',
        'Only a Portcullis session can be logged out; IdP tokens end at the IdP',
      );
    }
    const { jti, expiresAt } = await this.deps.tokens.verifySessionToken(token, now);
    await this.deps.store.transaction(async (tx) => {
      await tx.ephemeral.put(revokedSessionKind, jti, principal.id, expiresAt);
      await tx.audit.append(
        {
          type: 'auth.logout',
          actor: principal.id,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          data: { jti },
        },
        now,
      );
    });
  }

  /**
   * Starts `portcullis login --device`: a device authorization at the IdP (RFC 8628). The IdP's
   * device code stays here, under a random handle the CLI polls with. `login_failed`
   * (`device_flow_unsupported`) when the IdP has no device endpoint: the CLI then uses the browser.
   */
  async beginDeviceLogin(idp: string): Promise<DeviceLoginStart> {
    const login = this.login(idp);
    if (!login.beginDevice)
      throw new PortcullisError('login_failed', `identity provider "${idp}" offers no device login`, {
        reason: 'device_flow_unsupported',
      });
    const started = await login.beginDevice();
    const now = this.deps.clock.now();
    const deviceId = randomBytes(32).toString('base64url');
    const expiresAt = now + started.expiresInSeconds * 1000;
    const pending: PendingDeviceLogin = {
      idp,
      deviceCode: started.deviceCode,
      intervalSeconds: started.intervalSeconds,
      nextPollAt: now + started.intervalSeconds * 1000 - devicePollToleranceMs,
      expiresAt,
    };
    await this.deps.store.ephemeral.put(
      deviceLoginKind,
      sha256base64url(deviceId),
      JSON.stringify(pending),
      expiresAt,
    );
    return {
      deviceId,
      userCode: started.userCode,
      verificationUri: started.verificationUri,
      verificationUriComplete: started.verificationUriComplete ?? null,
      expiresAt,
      intervalSeconds: started.intervalSeconds,
    };
  }

  /**
   * One poll of a device login. Polls faster than the interval are answered `slow_down` without
   * asking the IdP (and the interval grows by 5 s, as RFC 8628 §3.5 says), so a CLI cannot make
   * Portcullis hammer the IdP. On success the principal is signed in like any login (audited,
   * `client: cli-device`) and gets a session token; failures are audited as `auth.login_failed`.
   */
  async pollDeviceLogin(deviceId: string, from: RequestOrigin): Promise<DeviceLoginPoll> {
    const now = this.deps.clock.now();
    const key = sha256base64url(deviceId);
    const raw = await this.deps.store.ephemeral.peek(deviceLoginKind, key, now);
    if (!raw) {
      const error = new PortcullisError(
        'login_failed',
        'The device login is unknown, expired or already finished',
        { reason: 'code_invalid' },
      );
      await this.#loginFailed(error, from, { client: 'cli-device' }, now);
      throw error;
    }
    const pending = JSON.parse(raw) as PendingDeviceLogin;
    const remember = (intervalSeconds: number) =>
      this.deps.store.ephemeral.put(
        deviceLoginKind,
        key,
        JSON.stringify({
          ...pending,
          intervalSeconds,
          nextPollAt: now + intervalSeconds * 1000 - devicePollToleranceMs,
        }),
        pending.expiresAt,
      );
    if (now < pending.nextPollAt) {
      await remember(pending.intervalSeconds + 5);
      return { status: 'slow_down', intervalSeconds: pending.intervalSeconds + 5 };
    }
    const login = this.login(pending.idp);
    let result: Awaited<ReturnType<NonNullable<BrowserLogin['pollDevice']>>>;
    try {
      if (!login.pollDevice)
        throw new PortcullisError('login_failed', 'no device login', { reason: 'device_flow_unsupported' });
      const polled = await login.pollDevice(pending.deviceCode);
      result =
        polled.status === 'complete' ? { ...polled, principal: this.#canonical(polled.principal) } : polled;
      if (result.status === 'complete') {
        // Single use: of two polls that both got tokens, one signs in.
        if (!(await this.deps.store.ephemeral.take(deviceLoginKind, key, now)))
          throw new PortcullisError('login_failed', 'The device login was already finished', {
            reason: 'code_invalid',
          });
        assertMayAct(await this.deps.store.principals.get(result.principal.id));
      }
    } catch (error) {
      if (!(error instanceof PortcullisError && error.code === 'identity_provider_unavailable'))
        await this.deps.store.ephemeral.take(deviceLoginKind, key, now);
      await this.#loginFailed(error, from, { idp: pending.idp, client: 'cli-device' }, now);
      throw error;
    }
    if (result.status !== 'complete') {
      const interval = result.status === 'slow_down' ? pending.intervalSeconds + 5 : pending.intervalSeconds;
      await remember(interval);
      return { status: result.status, intervalSeconds: interval };
    }
    const { principal } = result;
    const sessionsValidAfter = await this.deps.store.transaction(async (tx) => {
      await tx.principals.upsert(principal, now);
      // Checked again with the row written: a lock that committed since the check above wins.
      const stored = await tx.principals.get(principal.id);
      assertMayAct(stored);
      await tx.audit.append(
        {
          type: 'auth.login',
          actor: principal.id,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          data: {
            idp: pending.idp,
            groups: principal.groups,
            client: 'cli-device',
            ...SessionService.#linkedVia(principal),
          },
        },
        now,
      );
      return stored?.sessionsValidAfter ?? null;
    });
    const session = await this.deps.tokens.issueSessionToken(
      principal,
      now,
      this.deps.sessionTtlSeconds,
      sessionsValidAfter,
    );
    return { status: 'complete', token: session.token, expiresAt: session.expiresAt, principal };
  }

  /**
   * The CLI trades its one-time code and PKCE verifier for a session token. A refusal (unknown,
   * expired or used code, `pkce_mismatch`, a principal that may not act) is audited as
   * `auth.login_failed` with `client: cli` and, once the code is known, the principal it was for.
   */
  async exchangeCliCode(
    input: { code: string; codeVerifier: string; redirectUri: string },
    from: RequestOrigin,
  ): Promise<{
    token: string;
    expiresAt: number;
    principal: Principal;
  }> {
    const now = this.deps.clock.now();
    const stored = await this.deps.store.ephemeral.take(cliCodeKind, sha256base64url(input.code), now);
    if (!stored) {
      const error = new PortcullisError(
        'login_failed',
        'The login code is unknown, expired or already used',
        {
          reason: 'code_invalid',
        },
      );
      await this.#loginFailed(error, from, { client: 'cli' }, now);
      throw error;
    }
    const intent = JSON.parse(stored) as { principalId: string; codeChallenge: string; redirectUri: string };
    const refused = async (error: PortcullisError): Promise<never> => {
      const idp = parseIdentity(intent.principalId)?.idp;
      await this.#loginFailed(
        error,
        from,
        { ...(idp ? { idp } : {}), client: 'cli', principal: intent.principalId },
        now,
      );
      throw error;
    };
    const expected = Buffer.from(intent.codeChallenge);
    const actual = Buffer.from(sha256base64url(input.codeVerifier));
    if (
      expected.length !== actual.length ||
      !timingSafeEqual(expected, actual) ||
      intent.redirectUri !== input.redirectUri
    ) {
      return refused(
        new PortcullisError('login_failed', 'The code verifier or redirect URI does not match', {
          reason: 'pkce_mismatch',
        }),
      );
    }
    const principal = await this.deps.store.principals.get(intent.principalId);
    if (!principal)
      return refused(
        new PortcullisError('login_failed', 'Unknown principal', { reason: 'unknown_principal' }),
      );
    try {
      assertMayAct(principal);
    } catch (error) {
      if (error instanceof PortcullisError) return refused(error);
      throw error;
    }
    const session = await this.deps.tokens.issueSessionToken(
      principal,
      now,
      this.deps.sessionTtlSeconds,
      principal.sessionsValidAfter,
    );
    return { ...session, principal };
  }
}
