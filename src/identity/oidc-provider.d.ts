/**
 * The slice of oidc-provider v9 that the demo identity provider uses. The package ships no types;
 * declaring only what we call keeps the compiler honest without pulling in a full typing.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type AdapterPayload = Record<string, unknown> & {
    readonly grantId?: string;
    readonly uid?: string;
    readonly userCode?: string;
    consumed?: number;
  };

  /** Storage for one oidc-provider model (Session, AuthorizationCode, Grant, …). */
  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ResourceServerInfo {
    readonly scope: string;
    readonly audience?: string;
    readonly accessTokenTTL?: number;
    readonly accessTokenFormat?: 'opaque' | 'jwt';
    readonly jwt?: { readonly sign?: { readonly alg?: string } };
  }

  export interface ResourceServer extends ResourceServerInfo {
    identifier(): string;
  }

  export interface Grant {
    readonly jti: string;
    readonly accountId: string;
    readonly clientId: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: readonly string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantStatic {
    new (properties: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  export interface ClientInfo {
    readonly clientId: string;
  }

  export interface OidcContext {
    readonly client: ClientInfo;
    readonly account?: { readonly accountId: string };
    readonly session: { readonly accountId?: string; grantIdFor(clientId: string): string | undefined };
    readonly result?: { readonly consent?: { readonly grantId?: string } };
    readonly requestParamOIDCScopes: ReadonlySet<string>;
    readonly requestParamClaims: ReadonlySet<string>;
    readonly resourceServers: Readonly<Record<string, ResourceServer>>;
    readonly provider: { readonly Grant: GrantStatic };
  }

  export interface KoaContextWithOIDC {
    readonly oidc: OidcContext;
    type: string;
    body: unknown;
  }

  export interface Account {
    readonly accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown> & { sub: string }>;
  }

  /** The token handed to extraTokenClaims; only the fields used are declared. */
  export interface IssuedToken {
    readonly kind: string;
    readonly accountId?: string;
    readonly resourceServer?: ResourceServer;
  }

  export interface Interaction {
    readonly uid: string;
    readonly prompt: { readonly name: string; readonly reasons: readonly string[] };
    readonly params: Readonly<Record<string, unknown>>;
  }

  export type InteractionResult =
    | { readonly login: { readonly accountId: string } }
    | { readonly consent: { readonly grantId: string } }
    | { readonly error: string; readonly error_description?: string };

  export interface ClientMetadata {
    readonly client_id: string;
    readonly client_secret?: string;
    readonly redirect_uris: readonly string[];
    readonly grant_types?: readonly string[];
    readonly response_types?: readonly string[];
    readonly token_endpoint_auth_method?: string;
    readonly id_token_signed_response_alg?: string;
  }

  export interface Configuration {
    adapter?: (modelName: string) => Adapter;
    clients?: readonly ClientMetadata[];
    jwks?: { readonly keys: readonly Record<string, unknown>[] };
    cookies?: { readonly keys?: readonly string[] };
    claims?: Readonly<Record<string, readonly string[] | null>>;
    scopes?: readonly string[];
    responseTypes?: readonly string[];
    conformIdTokenClaims?: boolean;
    clockTolerance?: number;
    clientBasedCORS?: (ctx: KoaContextWithOIDC, origin: string, client: ClientInfo) => boolean;
    pkce?: { readonly required?: (ctx: KoaContextWithOIDC, client: ClientInfo) => boolean };
    findAccount?: (ctx: KoaContextWithOIDC, sub: string) => Promise<Account | undefined>;
    loadExistingGrant?: (ctx: KoaContextWithOIDC) => Promise<Grant | undefined>;
    extraTokenClaims?: (
      ctx: KoaContextWithOIDC,
      token: IssuedToken,
    ) => Promise<Record<string, unknown> | undefined>;
    interactions?: { readonly url?: (ctx: KoaContextWithOIDC, interaction: Interaction) => string };
    renderError?: (ctx: KoaContextWithOIDC, out: Record<string, string>, error: Error) => Promise<void>;
    ttl?: Readonly<Record<string, number>>;
    features?: {
      readonly devInteractions?: { readonly enabled: boolean };
      readonly userinfo?: { readonly enabled: boolean };
      readonly revocation?: { readonly enabled: boolean };
      readonly clientCredentials?: { readonly enabled: boolean };
      readonly deviceFlow?: {
        readonly enabled: boolean;
        readonly charset?: 'base-20' | 'digits';
        readonly mask?: string;
        readonly userCodeInputSource?: (
          ctx: KoaContextWithOIDC,
          form: string,
          out: unknown,
          err: unknown,
        ) => Promise<void>;
        readonly userCodeConfirmSource?: (
          ctx: KoaContextWithOIDC,
          form: string,
          client: ClientInfo,
          deviceInfo: unknown,
          userCode: string,
        ) => Promise<void>;
        readonly successSource?: (ctx: KoaContextWithOIDC) => Promise<void>;
      };
      readonly resourceIndicators?: {
        readonly enabled: boolean;
        readonly defaultResource?: (
          ctx: KoaContextWithOIDC,
          client: ClientInfo,
          oneOf?: readonly string[],
        ) => Promise<string | readonly string[] | undefined>;
        readonly useGrantedResource?: (ctx: KoaContextWithOIDC, model: unknown) => Promise<boolean>;
        readonly getResourceServerInfo?: (
          ctx: KoaContextWithOIDC,
          resourceIndicator: string,
          client: ClientInfo,
        ) => Promise<ResourceServerInfo>;
      };
    };
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    /** Koa's flag: when true, errors are not written to stderr. */
    silent: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResult,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export const errors: {
    readonly InvalidTarget: new (description?: string) => Error;
    readonly SessionNotFound: new (description?: string) => Error;
  };
}
