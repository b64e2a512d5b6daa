/**
 * Loads, validates and freezes the configuration. Every problem is collected and reported at once,
 * each with the file and the path inside it; secrets are resolved from the environment or files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { PortcullisError } from '../core/errors.js';
import { type IdentityLinkConfig, identityLinkIssues } from '../core/identity-links.js';
import { loginName, type ResourceDefinition, type RoleDefinition } from '../core/resource.js';
import { type NotificationSettings, resolveNotifications } from '../notifications/notification-config.js';
import { readPostgresAuthPolicy } from '../postgres/auth-policy.js';
import { isPostgresUrl } from '../text/postgres-url.js';
import type { SigningAlgorithm } from '../tokens/signing-algorithms.js';
import { minWebhookSecretLength, webhookUrlProblem } from '../webhooks/signed-webhook.js';
import { type BreakGlassSettings, resolveBreakGlass } from './break-glass-config.js';
import {
  configSchema,
  type OidcProviderConfig,
  type ParsedConfig,
  type SamlProviderConfig,
  type SecretRef,
} from './schema.js';
import { Secret } from './secret.js';
import { zodIssues } from './zod-issues.js';

export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends PortcullisError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(
      'config_invalid',
      `${file} has ${issues.length} problem(s):\n${issues.map((i) => `  ${file}: ${i.path || '(root)'}: ${i.message}`).join('\n')}`,
      {
        issues,
      },
    );
    this.file = file;
    this.issues = issues;
  }
}

export interface PostgresTarget {
  readonly adminUrl: Secret;
  readonly database: string;
  readonly publicHost: string | undefined;
  readonly publicPort: number | undefined;
  readonly connectionLimit: number;
  readonly reassignOwnedTo: string;
  /** Logins whose standing access is accepted, not reported by reconciliation. */
  readonly standingAllowed: readonly string[];
  /** People reach it only through the gateway; the grant's own login is never shown. */
  readonly gatewayOnly: boolean;
  /** How the server may authenticate the gateway's logins (`scram-sha-256` unless widened). */
  readonly gatewayUpstreamAuth: readonly ('scram-sha-256' | 'password' | 'none')[];
}

/** Where a signed webhook goes: a provisioning service, a SIEM collector. */
export interface SignedWebhookSettings {
  /** May embed a token: shown as its reference, never in errors or logs. */
  readonly url: Secret;
  readonly secret: Secret;
  readonly timeoutMs: number;
}

/** A `webhook` resource's target service (docs/provisioners.md#webhook). */
export interface WebhookTargetSettings extends SignedWebhookSettings {
  /** The target answers `inspect` for reconciliation. */
  readonly inspect: boolean;
  /** The target answers `standing` for reconciliation. */
  readonly standing: boolean;
}

/** One `audit.streams` entry (docs/audit.md#streaming-to-a-siem). */
export interface AuditStreamSettings {
  readonly name: string;
  readonly target: SignedWebhookSettings;
  readonly batchSize: number;
  readonly startAt: 'end' | 'beginning';
}

/** An `ssh` resource's certificate authority and certificate contents (docs/provisioners.md#ssh). */
export interface SshTargetSettings {
  readonly caKey: Secret;
  readonly extensions: readonly string[];
  readonly sourceAddresses: readonly string[] | undefined;
  readonly forceCommand: string | undefined;
  readonly host: string | undefined;
  readonly port: number;
  /** Secrets ssh-guard reports sessions with; empty when the resource takes no reports. */
  readonly sessionReportTokens: readonly Secret[];
}

export interface ConfiguredResource extends ResourceDefinition {
  /** Kind-specific settings; present for `postgres` resources. */
  readonly postgres?: PostgresTarget;
  /** Present for `webhook` resources. */
  readonly webhook?: WebhookTargetSettings;
  /** Present for `ssh` resources. */
  readonly ssh?: SshTargetSettings;
}

/** An OpenID Connect provider's settings (`type: oidc`). */
export type IdentityProviderSettings = Omit<OidcProviderConfig, 'client_secret'> & {
  readonly clientSecret: Secret | undefined;
};

/** A SAML 2.0 provider's settings (`type: saml`); `metadata_file` is read at load time. */
export type SamlProviderSettings = SamlProviderConfig & {
  /** The text of `metadata_file`, when configured. */
  readonly metadataXml: string | undefined;
  /** Where this entry is in the file, e.g. `identity_providers[1]`, for precise start-up errors. */
  readonly configPath: string;
};

export type AnyIdentityProviderSettings = IdentityProviderSettings | SamlProviderSettings;

export interface Config {
  readonly file: string;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly publicUrl: string;
    readonly trustProxy: boolean | string[];
    readonly bodyLimitBytes: number;
  };
  readonly storageUrl: Secret;
  readonly timeZone: string;
  readonly identityProviders: readonly AnyIdentityProviderSettings[];
  /** `identity_links`, checked: see src/core/identity-links.ts. */
  readonly identityLinks: readonly IdentityLinkConfig[];
  readonly resources: ReadonlyMap<string, ConfiguredResource>;
  readonly policyFiles: readonly string[];
  readonly admins: readonly string[];
  readonly tokens: {
    readonly keyEncryptionKey: Secret;
    readonly audience: string;
    readonly accessTokenTtlSeconds: number;
    readonly sessionTtlSeconds: number;
    readonly rotationOverlapSeconds: number;
    /** Age at which the active token-signing key is rotated; null: only by hand. */
    readonly rotationIntervalSeconds: number | null;
    /** How long before a scheduled rotation the next key is published; null: not ahead. */
    readonly rotationPrepublishSeconds: number | null;
    /** Algorithm of token-signing keys made from now on. */
    readonly signingAlgorithm: SigningAlgorithm;
  };
  readonly audit: {
    readonly checkpointEveryEvents: number;
    readonly checkpointIntervalSeconds: number;
    /** Events older than this are removed (at a signed checkpoint); null: kept forever. */
    readonly retentionSeconds: number | null;
    readonly streams: readonly AuditStreamSettings[];
  };
  readonly expiry: { readonly pollIntervalSeconds: number };
  /** Seconds between scheduled reconciliation runs; null: only on demand. */
  readonly reconcileIntervalSeconds: number | null;
  readonly requests: { readonly pendingTtlSeconds: number };
  /** Present when the file has a `gateway` section. */
  readonly gateway?: GatewayConfig;
  /** Emergency accounts (`break_glass`); no accounts when the section is absent. */
  readonly breakGlass: BreakGlassSettings;
  /**
   * Sections that failed to load and were left out so that the break-glass path still serves
   * (only with `degradable` and at least one emergency account); empty normally.
   */
  readonly degraded: readonly DegradedSection[];
  /** SCIM clients (`scim.clients`); empty when there is no `scim` section. */
  readonly scimClients: readonly ScimClientConfig[];
  /** Request notification channels (`notifications`); none when the section is absent. */
  readonly notifications: NotificationSettings;
}

function resolveNotificationsSection(
  section: unknown,
  resources: ReadonlyMap<string, unknown>,
  secrets: SecretResolver,
  baseDir: string,
  publicUrl: string,
) {
  return resolveNotifications(section, {
    resourceIds: new Set(resources.keys()),
    publicUrl,
    resolveSecret: (ref, path) => secrets.resolve(ref, path),
    readFile: (path) => readFileSync(isAbsolute(path) ? path : resolve(baseDir, path), 'utf8'),
  });
}

/** A section left out at start-up, and why (shown by /readyz and in the audit log). */
export interface DegradedSection {
  readonly section: 'identity_providers' | 'policies';
  readonly problems: readonly string[];
}

/** One SCIM client: an identity provider pushing users and groups with its bearer secret. */
export interface ScimClientConfig {
  readonly idp: string;
  readonly token: Secret;
  readonly subjectAttribute: 'externalId' | 'userName';
}

/** Shortest bearer secret accepted from a machine client (SCIM, ssh-guard's session reports). */
export const minBearerSecretLength = 32;

function resolveScimClients(scim: ParsedConfig['scim'], secrets: SecretResolver, issues: ConfigIssue[]) {
  return (scim?.clients ?? []).map((client, i): ScimClientConfig => {
    const token = secrets.resolve(client.token, `scim.clients[${i}].token`);
    if (token.reveal() !== '' && token.reveal().length < minBearerSecretLength)
      issues.push({
        path: `scim.clients[${i}].token`,
        message: `must be at least ${minBearerSecretLength} characters (a random secret)`,
      });
    return { idp: client.idp, token, subjectAttribute: client.subject_attribute };
  });
}

/** The database gateway's settings (`gateway` in the file); see docs/gateway.md. */
export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  /** Host people connect to; undefined: `host`, or the public URL's host when `host` is a wildcard. */
  readonly publicHost: string | undefined;
  /** Port people connect to; undefined: the port the gateway listens on. */
  readonly publicPort: number | undefined;
  /** PEM certificate chain and private key; null serves without TLS (answers `N` to SSLRequest). */
  readonly tls: { readonly cert: Secret; readonly key: Secret } | null;
  readonly allowPlaintextOnLoopback: boolean;
  readonly recordParameters: boolean;
  readonly maxMessageBytes: number;
  readonly maxConnections: number;
  readonly maxLoginsPerAddress: number;
  readonly livenessCheckIntervalSeconds: number;
}

export type Environment = Readonly<Record<string, string | undefined>>;

class SecretResolver {
  readonly issues: ConfigIssue[] = [];
  constructor(
    private readonly env: Environment,
    private readonly baseDir: string,
  ) {}

  resolve(ref: SecretRef, path: string): Secret {
    if ('env' in ref) {
      const value = this.env[ref.env];
      if (value === undefined || value === '') {
        this.issues.push({ path, message: `environment variable ${ref.env} is not set` });
        return new Secret('', ref.env);
      }
      return new Secret(value, ref.env);
    }
    const file = isAbsolute(ref.file) ? ref.file : resolve(this.baseDir, ref.file);
    try {
      return new Secret(readFileSync(file, 'utf8').trim(), file);
    } catch (error) {
      this.issues.push({
        path,
        message: `cannot read secret file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      });
      return new Secret('', file);
    }
  }
}

/** Decodes the key-encryption key: 32 bytes as base64/base64url (43–44 chars) or hex (64 chars). */
export function decodeKeyEncryptionKey(value: string): Uint8Array | null {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(text)) {
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return bytes.length === 32 ? bytes : null;
  }
  return null;
}

function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function duplicates(values: readonly string[]): string[] {
  return values.filter((v, i) => values.indexOf(v) !== i);
}

function semanticIssues(parsed: Partial<ParsedConfig>, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (parsed.time_zone !== undefined && !isValidTimeZone(parsed.time_zone))
    issues.push({ path: 'time_zone', message: `unknown time zone "${parsed.time_zone}"` });
  for (const id of duplicates((parsed.identity_providers ?? []).map((p) => p.id))) {
    issues.push({ path: 'identity_providers', message: `duplicate identity provider id "${id}"` });
  }
  for (const id of duplicates((parsed.resources ?? []).map((r) => r.id))) {
    issues.push({ path: 'resources', message: `duplicate resource id "${id}"` });
  }
  (parsed.resources ?? []).forEach((resource, i) => {
    for (const name of duplicates(resource.roles.map((r) => r.name))) {
      issues.push({ path: `resources[${i}].roles`, message: `duplicate role "${name}"` });
    }
  });
  const idps = new Set((parsed.identity_providers ?? []).map((p) => p.id));
  (parsed.scim?.clients ?? []).forEach((client, i) => {
    if (parsed.identity_providers !== undefined && !idps.has(client.idp))
      issues.push({ path: `scim.clients[${i}].idp`, message: `no identity provider "${client.idp}"` });
  });
  if (parsed.identity_providers !== undefined)
    issues.push(...identityLinkIssues(parsed.identity_links ?? [], idps));
  (parsed.resources ?? []).forEach((resource, i) => {
    if (resource.kind === 'postgres' && resource.postgres.gateway_only && parsed.gateway === undefined)
      issues.push({
        path: `resources[${i}].postgres.gateway_only`,
        message: 'needs a `gateway` section: without the gateway nobody could reach this resource',
      });
  });
  (parsed.policies?.files ?? []).forEach((file, i) => {
    const path = isAbsolute(file) ? file : resolve(baseDir, file);
    if (!existsSync(path))
      issues.push({ path: `policies.files[${i}]`, message: `policy file ${path} does not exist` });
  });
  return issues;
}

/**
 * The top-level sections that are valid on their own. When the whole document fails the schema,
 * the checks that need parsed values (time zone, duplicates, files, secrets) still run on these,
 * so every problem is reported at once instead of one round of errors hiding the next.
 */
function validSections(raw: unknown): Partial<ParsedConfig> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
  const sections: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    const result = schema.safeParse((raw as Record<string, unknown>)[key]);
    if (result.success) sections[key] = result.data;
  }
  return sections as Partial<ParsedConfig>;
}

function resolveStorageUrl(storage: ParsedConfig['storage'], secrets: SecretResolver): Secret {
  return typeof storage.url === 'string'
    ? new Secret(storage.url, 'storage.url')
    : secrets.resolve(storage.url, 'storage.url');
}

function resolveKeyEncryptionKey(
  tokens: ParsedConfig['tokens'],
  secrets: SecretResolver,
  issues: ConfigIssue[],
): Secret {
  const kek = secrets.resolve(tokens.key_encryption_key, 'tokens.key_encryption_key');
  if (kek.reveal() !== '' && decodeKeyEncryptionKey(kek.reveal()) === null) {
    issues.push({
      path: 'tokens.key_encryption_key',
      message: 'must be 32 random bytes, as base64 or 64 hex digits',
    });
  }
  return kek;
}

function resolveIdentityProviders(
  providers: ParsedConfig['identity_providers'],
  secrets: SecretResolver,
  baseDir: string,
): AnyIdentityProviderSettings[] {
  return providers.map((idp, i): AnyIdentityProviderSettings => {
    if (idp.type === 'saml') {
      let metadataXml: string | undefined;
      if (idp.metadata_file !== undefined) {
        const file = isAbsolute(idp.metadata_file) ? idp.metadata_file : resolve(baseDir, idp.metadata_file);
        try {
          metadataXml = readFileSync(file, 'utf8');
        } catch (error) {
          secrets.issues.push({
            path: `identity_providers[${i}].metadata_file`,
            message: `cannot read SAML metadata ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          });
        }
      }
      return { ...idp, metadataXml, configPath: `identity_providers[${i}]` };
    }
    const { client_secret, ...rest } = idp;
    return {
      ...rest,
      clientSecret: client_secret
        ? secrets.resolve(client_secret, `identity_providers[${i}].client_secret`)
        : undefined,
    };
  });
}

function resolveResources(
  configured: ParsedConfig['resources'],
  secrets: SecretResolver,
  issues: { path: string; message: string }[],
): Map<string, ConfiguredResource> {
  const resources = new Map<string, ConfiguredResource>();
  configured.forEach((resource, i) => {
    const roles = new Map<string, RoleDefinition>(
      resource.roles.map((role) => [
        role.name,
        { name: role.name, description: role.description, grants: role.grants },
      ]),
    );
    const base: ConfiguredResource = {
      id: resource.id,
      kind: resource.kind,
      description: resource.description,
      sensitivity: resource.sensitivity,
      labels: resource.labels,
      owners: resource.owners,
      roles,
    };
    if (resource.kind === 'postgres') {
      const pg = resource.postgres;
      resources.set(resource.id, {
        ...base,
        postgres: {
          adminUrl: secrets.resolve(pg.admin_url, `resources[${i}].postgres.admin_url`),
          database: pg.database,
          publicHost: pg.public_host,
          publicPort: pg.public_port,
          connectionLimit: pg.connection_limit,
          reassignOwnedTo: pg.reassign_owned_to,
          standingAllowed: pg.standing_allowed,
          gatewayOnly: pg.gateway_only,
          gatewayUpstreamAuth: pg.gateway_upstream_auth,
        },
      });
    } else if (resource.kind === 'webhook') {
      resources.set(resource.id, {
        ...base,
        webhook: {
          ...resolveSignedWebhook(resource.webhook, `resources[${i}].webhook`, secrets, issues),
          inspect: resource.webhook.inspect,
          standing: resource.webhook.standing,
        },
      });
    } else if (resource.kind === 'ssh') {
      resource.roles.forEach((role, r) => {
        role.grants.forEach((login, g) => {
          if (!loginName.test(login)) {
            issues.push({
              path: `resources[${i}].roles[${r}].grants[${g}]`,
              message: 'must be a login name on the hosts (a-z, 0-9, _, ., -; at most 32)',
            });
          }
        });
        if (role.grants.length === 0) {
          issues.push({
            path: `resources[${i}].roles[${r}].grants`,
            message:
              'must name at least one login: a certificate without principals is valid for every account',
          });
        }
      });
      const ssh = resource.ssh;
      resources.set(resource.id, {
        ...base,
        ssh: {
          caKey: secrets.resolve(ssh.ca_key, `resources[${i}].ssh.ca_key`),
          extensions: ssh.extensions,
          sourceAddresses: ssh.source_addresses,
          forceCommand: ssh.force_command,
          host: ssh.host,
          port: ssh.port,
          sessionReportTokens: (ssh.session_report_tokens ?? []).map((token, t) => {
            const path = `resources[${i}].ssh.session_report_tokens[${t}]`;
            const resolved = secrets.resolve(token, path);
            if (resolved.reveal() !== '' && resolved.reveal().length < minBearerSecretLength)
              issues.push({
                path,
                message: `must be at least ${minBearerSecretLength} characters (a random secret)`,
              });
            return resolved;
          }),
        },
      });
    } else {
      resources.set(resource.id, base);
    }
  });
  return resources;
}

/** `tokens.rotation_prepublish`, or its default: a day, or a quarter of the interval when shorter. */
function prepublishSeconds(tokens: ParsedConfig['tokens']): number | null {
  if (tokens.rotation_interval === 'off' || tokens.rotation_prepublish === 'off') return null;
  return tokens.rotation_prepublish ?? Math.min(86_400, Math.floor(tokens.rotation_interval / 4));
}

function resolveSignedWebhook(
  webhook: { readonly url: string | SecretRef; readonly secret: SecretRef; readonly timeout: number },
  at: string,
  secrets: SecretResolver,
  issues: { path: string; message: string }[],
): SignedWebhookSettings {
  const url =
    typeof webhook.url === 'string'
      ? new Secret(webhook.url, 'resource webhook url')
      : secrets.resolve(webhook.url, `${at}.url`);
  // The URL may be a secret: the message never repeats it.
  const urlProblem = webhookUrlProblem(url.reveal());
  if (urlProblem) issues.push({ path: `${at}.url`, message: urlProblem });
  const secret = secrets.resolve(webhook.secret, `${at}.secret`);
  if (secret.reveal().length < minWebhookSecretLength) {
    issues.push({ path: `${at}.secret`, message: `must be at least ${minWebhookSecretLength} characters` });
  }
  return { url, secret, timeoutMs: webhook.timeout * 1000 };
}

/**
 * Portcullis's own PostgreSQL URLs (storage, admin URLs) must name a login policy it can keep
 * (require_auth, channel_binding): a bad one stops the start, not the first provisioning.
 */
function postgresUrlIssues(
  storageUrl: Secret,
  configured: ParsedConfig['resources'],
  resources: ReadonlyMap<string, ConfiguredResource>,
): ConfigIssue[] {
  const urls: [string, string][] = [['storage.url', storageUrl.reveal()]];
  configured.forEach((resource, i) => {
    const adminUrl = resources.get(resource.id)?.postgres?.adminUrl.reveal();
    if (adminUrl) urls.push([`resources[${i}].postgres.admin_url`, adminUrl]);
  });
  // Other values are another field's concern (storage.url: sqlite:) or the provisioner's (it names
  // an admin URL that is not one when it first connects); the offline commands fill placeholders.
  return urls
    .filter(([, url]) => isPostgresUrl(url))
    .flatMap(([path, url]) => {
      const read = readPostgresAuthPolicy(url);
      return 'problem' in read ? [{ path, message: read.problem }] : [];
    });
}

/** A PEM value given as a path (relative to the file) or as a secret reference. */
function resolvePem(value: string | SecretRef, path: string, secrets: SecretResolver): Secret {
  return secrets.resolve(typeof value === 'string' ? { file: value } : value, path);
}

function resolveGateway(
  gateway: NonNullable<ParsedConfig['gateway']>,
  secrets: SecretResolver,
): GatewayConfig {
  return {
    host: gateway.host,
    port: gateway.port,
    publicHost: gateway.public_host,
    publicPort: gateway.public_port,
    tls: gateway.tls
      ? {
          cert: resolvePem(gateway.tls.cert, 'gateway.tls.cert', secrets),
          key: resolvePem(gateway.tls.key, 'gateway.tls.key', secrets),
        }
      : null,
    allowPlaintextOnLoopback: gateway.allow_plaintext_on_loopback,
    recordParameters: gateway.record_parameters,
    maxMessageBytes: gateway.max_message_bytes,
    maxConnections: gateway.max_connections,
    maxLoginsPerAddress: gateway.max_logins_per_address,
    livenessCheckIntervalSeconds: gateway.liveness_check_interval,
  };
}

export interface ParseOptions {
  /**
   * When only `identity_providers` or `policies` are broken and emergency accounts are configured,
   * leave those sections out (listed in `degraded`) instead of refusing: the server then starts
   * with its break-glass path only. Everything else must still be valid.
   */
  readonly degradable?: boolean;
}

const degradableSections = ['identity_providers', 'policies'] as const;

/** Parses configuration text; `file` names it in messages and anchors relative paths. */
export function parseConfig(
  text: string,
  file: string,
  env: Environment = process.env,
  options: ParseOptions = {},
): Config {
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((e) => ({ path: '', message: e.message })),
    );
  }
  const raw: unknown = document.toJS() ?? {};
  try {
    return parseRaw(raw, file, env);
  } catch (error) {
    if (!(options.degradable && error instanceof ConfigError)) throw error;
    const degraded = withoutBrokenSections(raw, file, env, error.issues);
    if (!degraded) throw error;
    return degraded;
  }
}

function withoutBrokenSections(
  raw: unknown,
  file: string,
  env: Environment,
  issues: readonly ConfigIssue[],
): Config | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const bySection = new Map<string, string[]>();
  for (const issue of issues) {
    const section = issue.path.split(/[.[]/)[0] ?? '';
    bySection.set(section, [...(bySection.get(section) ?? []), `${issue.path}: ${issue.message}`]);
  }
  if (![...bySection.keys()].every((s) => (degradableSections as readonly string[]).includes(s)))
    return undefined;
  const patched: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  if (bySection.has('identity_providers')) patched.identity_providers = [];
  // A placeholder that passes the checks; the policy files are then dropped below.
  if (bySection.has('policies')) patched.policies = { files: [resolve(file)] };
  let config: Config;
  try {
    config = parseRaw(patched, file, env);
  } catch {
    return undefined;
  }
  if (config.breakGlass.accounts.length === 0) return undefined;
  const degraded = degradableSections
    .filter((s) => bySection.has(s))
    .map((section) => ({ section, problems: bySection.get(section) ?? [] }));
  return Object.freeze({
    ...config,
    policyFiles: bySection.has('policies') ? [] : config.policyFiles,
    degraded,
  });
}

function parseRaw(raw: unknown, file: string, env: Environment): Config {
  const baseDir = dirname(resolve(file));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    // Report the schema problems together with everything that can still be checked.
    const sections = validSections(raw);
    const issues = [...zodIssues(result.error), ...semanticIssues(sections, baseDir)];
    const secrets = new SecretResolver(env, baseDir);
    if (sections.storage) resolveStorageUrl(sections.storage, secrets);
    if (sections.tokens) resolveKeyEncryptionKey(sections.tokens, secrets, issues);
    if (sections.identity_providers) resolveIdentityProviders(sections.identity_providers, secrets, baseDir);
    const resources = sections.resources ? resolveResources(sections.resources, secrets, issues) : undefined;
    if (sections.gateway) resolveGateway(sections.gateway, secrets);
    // Checked against the resources only when those are valid (else every scope looks unknown).
    if (sections.break_glass && resources)
      issues.push(
        ...resolveBreakGlass(sections.break_glass, resources, (ref, path) => secrets.resolve(ref, path))
          .issues,
      );
    if (sections.scim) resolveScimClients(sections.scim, secrets, issues);
    if (resources)
      issues.push(
        ...resolveNotificationsSection(sections.notifications, resources, secrets, baseDir, '').issues,
      );
    throw new ConfigError(file, [...issues, ...secrets.issues]);
  }
  const parsed = result.data;

  const issues = semanticIssues(parsed, baseDir);
  const secrets = new SecretResolver(env, baseDir);
  const storageUrl = resolveStorageUrl(parsed.storage, secrets);
  const kek = resolveKeyEncryptionKey(parsed.tokens, secrets, issues);
  const identityProviders = resolveIdentityProviders(parsed.identity_providers, secrets, baseDir);
  const resources = resolveResources(parsed.resources, secrets, issues);
  const auditStreams = parsed.audit.streams.map((stream, i) => ({
    name: stream.name,
    target: resolveSignedWebhook(stream, `audit.streams[${i}]`, secrets, issues),
    batchSize: stream.batch_size,
    startAt: stream.start_at,
  }));
  const gateway = parsed.gateway ? resolveGateway(parsed.gateway, secrets) : undefined;
  const breakGlass = resolveBreakGlass(parsed.break_glass, resources, (ref, path) =>
    secrets.resolve(ref, path),
  );
  const scimClients = resolveScimClients(parsed.scim, secrets, issues);
  const tokens = scimClients.map((c) => c.token.reveal()).filter((t) => t !== '');
  if (new Set(tokens).size !== tokens.length)
    issues.push({ path: 'scim.clients', message: 'every SCIM client needs its own token' });

  const port = parsed.server.port;
  const publicUrl = (parsed.server.public_url ?? `http://${parsed.server.host}:${port}`).replace(/\/$/, '');
  const notifications = resolveNotificationsSection(
    parsed.notifications,
    resources,
    secrets,
    baseDir,
    publicUrl,
  );

  issues.push(...postgresUrlIssues(storageUrl, parsed.resources, resources));
  const remindAfter = notifications.settings.remindAfterSeconds;
  if (remindAfter !== null && remindAfter >= parsed.requests.pending_ttl) {
    issues.push({
      path: 'notifications.remind_after',
      message: 'must be shorter than requests.pending_ttl: a request lapses before its reminder',
    });
  }
  const allIssues = [...issues, ...breakGlass.issues, ...notifications.issues, ...secrets.issues];
  if (allIssues.length > 0) throw new ConfigError(file, allIssues);

  const config: Config = {
    file,
    server: {
      host: parsed.server.host,
      port,
      publicUrl,
      trustProxy: parsed.server.trust_proxy,
      bodyLimitBytes: parsed.server.body_limit_bytes,
    },
    storageUrl,
    timeZone: parsed.time_zone,
    identityProviders,
    identityLinks: parsed.identity_links,
    resources,
    policyFiles: parsed.policies.files.map((f) => (isAbsolute(f) ? f : resolve(baseDir, f))),
    admins: parsed.admins,
    tokens: {
      keyEncryptionKey: kek,
      audience: parsed.tokens.audience,
      accessTokenTtlSeconds: parsed.tokens.access_token_ttl,
      sessionTtlSeconds: parsed.tokens.session_ttl,
      rotationOverlapSeconds: parsed.tokens.rotation_overlap,
      rotationIntervalSeconds:
        parsed.tokens.rotation_interval === 'off' ? null : parsed.tokens.rotation_interval,
      rotationPrepublishSeconds: prepublishSeconds(parsed.tokens),
      signingAlgorithm: parsed.tokens.signing_algorithm,
    },
    audit: {
      checkpointEveryEvents: parsed.audit.checkpoint_every_events,
      checkpointIntervalSeconds: parsed.audit.checkpoint_interval,
      retentionSeconds: parsed.audit.retention === 'forever' ? null : parsed.audit.retention,
      streams: auditStreams,
    },
    expiry: { pollIntervalSeconds: parsed.expiry.poll_interval },
    reconcileIntervalSeconds: parsed.reconcile.enabled ? parsed.reconcile.interval : null,
    requests: { pendingTtlSeconds: parsed.requests.pending_ttl },
    ...(gateway ? { gateway } : {}),
    breakGlass: breakGlass.settings,
    notifications: notifications.settings,
    degraded: [],
    scimClients,
  };
  return Object.freeze(config);
}

export function loadConfig(file: string, env: Environment = process.env, options: ParseOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [
      { path: '', message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` },
    ]);
  }
  return parseConfig(text, file, env, options);
}
