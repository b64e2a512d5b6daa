/**
 * The configuration file's schema. Secrets are never written inline: a secret field takes
 * `{ env: NAME }` or `{ file: PATH }` and is resolved at load time into a {@link Secret}.
 */
import { z } from 'zod';
import { tokenSigningAlgorithms } from '../tokens/signing-algorithms.js';
import { parseDurationSeconds } from './duration.js';

const identifier = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, "-" or "_" (at most 63)');

export const secretRef = z.union(
  [z.object({ env: z.string().min(1) }).strict(), z.object({ file: z.string().min(1) }).strict()],
  { error: 'must be { env: NAME } or { file: PATH }; secrets are never written inline' },
);
export type SecretRef = z.infer<typeof secretRef>;

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const seconds = parseDurationSeconds(value);
  if (seconds === null) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 45m, 2h or 1d' });
    return z.NEVER;
  }
  return seconds;
});

function isTrustedMetadataUrl(value: string): boolean {
  const url = URL.parse(value);
  if (url?.protocol === 'https:') return true;
  return url?.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** A condition on what an IdP asserted; every field given must hold (docs/identity-providers.md). */
const mappingCondition = z
  .object({
    /** An IdP group (from the groups claim/attribute) the user must have. */
    group: z.string().min(1).optional(),
    /** The user's e-mail domain (case-insensitive); one of the list. */
    email_domain: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** A claim (OIDC) or attribute (SAML) name; with `equals`, one of its values must match. */
    claim: z.string().min(1).optional(),
    equals: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
  })
  .strict()
  .refine((c) => c.group !== undefined || c.email_domain !== undefined || c.claim !== undefined, {
    message: 'needs at least one of group, email_domain, claim',
  })
  .refine((c) => c.equals === undefined || c.claim !== undefined, { message: 'equals needs claim' });

/** Keys shared by every identity provider type: who may sign in and which groups they get. */
const mappingKeys = {
  /** IdP group → Portcullis groups. Groups not listed are dropped (copy as little as possible). */
  group_mapping: z.record(z.string(), z.array(identifier)).default({}),
  /** Rules adding Portcullis groups when their condition holds. */
  mapping_rules: z
    .array(z.object({ when: mappingCondition, groups: z.array(identifier).min(1) }).strict())
    .default([]),
  /** When not empty, a user may sign in only if one of these conditions holds. */
  allow: z.array(mappingCondition).default([]),
  /** A user matching any of these conditions may not sign in (wins over allow). */
  deny: z.array(mappingCondition).default([]),
  /** Groups asserted longer ago than this are stale: the user must sign in again. */
  groups_max_age: duration.optional(),
};

const samlProvider = z
  .object({
    id: identifier,
    type: z.literal('saml'),
    display_name: z.string().min(1),
    /** The IdP's SAML metadata: a file (relative to the config) or an https URL, not both. */
    metadata_file: z.string().min(1).optional(),
    metadata_url: z.url().optional(),
    /** Re-read of metadata_url (key rotation); a signature failure also re-reads, rate-limited. */
    metadata_refresh_interval: duration.default(3600),
    /** Portcullis' entity id at this IdP (the audience); default its metadata URL. */
    sp_entity_id: z.string().min(1).optional(),
    /** Require the Assertion to be signed. */
    want_assertions_signed: z.boolean().default(true),
    /** Require the Response to be signed. With both false, one of the two still must be. */
    want_response_signed: z.boolean().default(false),
    /** NameIDPolicy Format asked for, e.g. urn:oasis:names:tc:SAML:2.0:nameid-format:persistent. */
    name_id_format: z.string().min(1).optional(),
    /** Attribute holding the stable user id; default the NameID. */
    subject_attribute: z.string().min(1).optional(),
    groups_attribute: z.string().default('groups'),
    email_attribute: z.string().default('email'),
    name_attribute: z.string().default('displayName'),
    /** Tolerance on NotBefore/NotOnOrAfter. */
    clock_skew: duration.default(30),
    /** Time allowed to fetch metadata_url. */
    timeout: duration.default(5),
    ...mappingKeys,
  })
  .strict()
  .refine((p) => (p.metadata_file === undefined) !== (p.metadata_url === undefined), {
    message: 'needs exactly one of metadata_file, metadata_url',
  })
  .refine((p) => p.metadata_url === undefined || isTrustedMetadataUrl(p.metadata_url), {
    message: 'must be https (plain http only on a loopback address): the metadata carries the signing keys',
    path: ['metadata_url'],
  });

const oidcProvider = z
  .object({
    id: identifier,
    type: z.literal('oidc'),
    display_name: z.string().min(1),
    issuer: z.url(),
    client_id: z.string().min(1),
    client_secret: secretRef.optional(),
    scopes: z.array(z.string()).default(['openid', 'profile', 'email']),
    /** Claim holding the user's groups in the ID token / userinfo / API JWT. */
    groups_claim: z.string().default('groups'),
    ...mappingKeys,
    /** Audiences accepted on IdP-issued JWTs presented as API bearer tokens. Empty disables them. */
    api_audiences: z.array(z.string()).default([]),
    allowed_algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .default(['RS256', 'ES256', 'EdDSA']),
    /** Time allowed for discovery, token and JWKS calls to this IdP. */
    timeout: duration.default(5),
  })
  .strict();

export const identityProviderSchema = z.discriminatedUnion('type', [oidcProvider, samlProvider]);
export type OidcProviderConfig = z.infer<typeof oidcProvider>;
export type SamlProviderConfig = z.infer<typeof samlProvider>;
export type IdentityProviderConfig = z.infer<typeof identityProviderSchema>;
export type MappingCondition = z.infer<typeof mappingCondition>;

const role = z
  .object({
    name: identifier,
    description: z.string().default(''),
    /** What the provisioner grants: PostgreSQL roles for `postgres`, scopes for `token`. */
    grants: z.array(z.string().min(1)).default([]),
  })
  .strict();

const postgresConnection = z
  .object({
    /** Connection URL of an account allowed to CREATE ROLE and terminate backends. */
    admin_url: secretRef,
    /** Database the granted login connects to. */
    database: z.string().min(1),
    /** Host and port put into the requester's connection string (default: those of admin_url). */
    public_host: z.string().optional(),
    public_port: z.number().int().min(1).max(65535).optional(),
    connection_limit: z.number().int().min(1).max(10_000).default(5),
    /** Reached only through the database gateway: the grant's own login is never shown. */
    gateway_only: z.boolean().default(false),
    /** Role that receives objects a grant's login created, before that login is dropped. */
    reassign_owned_to: z.string().min(1).default('postgres'),
    /** Logins whose standing access reconciliation accepts (a service's own login), not reported. */
    standing_allowed: z.array(z.string().min(1)).default([]),
    /** How the server may authenticate the gateway's logins; anything else ends the session. */
    gateway_upstream_auth: z
      .array(z.enum(['scram-sha-256', 'password', 'none']))
      .min(1)
      .refine((methods) => new Set(methods).size === methods.length, 'lists a method twice')
      .default(['scram-sha-256']),
  })
  .strict();

/** Where a signed webhook goes (a provisioning service, a SIEM collector) and how it is signed. */
const signedWebhook = {
  /** `https://…`, or `http://` to a loopback address only. A secret ref when the URL embeds a token. */
  url: z.union([z.string().min(1), secretRef]),
  /** HMAC-SHA256 key for the `Portcullis-Signature` header; at least 32 characters. */
  secret: secretRef,
  /** Time allowed for one call (connect, send, the whole answer). */
  timeout: z
    .union([z.string(), z.number()])
    .transform((value, ctx) => {
      const seconds = parseDurationSeconds(value);
      if (seconds === null || seconds < 1 || seconds > 120) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration from 1s to 2m, such as 10s' });
        return z.NEVER;
      }
      return seconds;
    })
    .default(10),
};

/** A `webhook` resource's target: the service that provisions it (docs/provisioners.md#webhook). */
const webhookTarget = z
  .object({
    ...signedWebhook,
    /** The target answers `inspect` (what it holds) for reconciliation. */
    inspect: z.boolean().default(false),
    /** The target answers `standing` (who holds the access without a grant) for reconciliation. */
    standing: z.boolean().default(false),
  })
  .strict();

/** A copy of the audit log sent as it grows, to a SIEM (docs/audit.md#streaming-to-a-siem). */
const auditStream = z
  .object({
    name: identifier,
    type: z.literal('webhook'),
    ...signedWebhook,
    /** Events per request, at most. */
    batch_size: z.number().int().min(1).max(5000).default(500),
    /** Where a stream configured for the first time begins: the next event, or the first ever. */
    start_at: z.enum(['end', 'beginning']).default('end'),
  })
  .strict();

/** An OpenSSH certificate extension Portcullis may put in a certificate. */
export const sshExtensions = [
  'permit-pty',
  'permit-port-forwarding',
  'permit-agent-forwarding',
  'permit-X11-forwarding',
  'permit-user-rc',
] as const;

/** An `ssh` resource: the certificate authority hosts trust, and what its certificates allow. */
const sshTarget = z
  .object({
    /** The CA's Ed25519 private key (PKCS #8 PEM, or OpenSSH without a passphrase). */
    ca_key: secretRef,
    /** Certificate extensions; default: a terminal only. */
    extensions: z.array(z.enum(sshExtensions)).default(['permit-pty']),
    /** Critical option `source-address`: where the certificate may be used from (CIDR). */
    source_addresses: z
      .array(
        z.string().regex(/^[0-9A-Fa-f:.]+\/\d{1,3}$/, 'must be an address with a prefix length (10.0.0.0/8)'),
      )
      .min(1)
      .optional(),
    /** Critical option `force-command`: the one command the certificate may run. */
    force_command: z.string().min(1).max(1024).optional(),
    /** Where people connect, for the connection line shown with the credentials. */
    host: z.string().min(1).max(253).optional(),
    port: z.number().int().min(1).max(65_535).default(22),
    /** Bearer secrets the hosts' `portcullis ssh-guard` reports sessions with (two during a rotation). */
    session_report_tokens: z.array(secretRef).min(1).max(4).optional(),
  })
  .strict();

const baseResource = {
  id: identifier,
  description: z.string().default(''),
  sensitivity: z.enum(['low', 'medium', 'high', 'critical']).default('medium'),
  labels: z.record(z.string(), z.string()).default({}),
  owners: z.array(identifier).default([]),
  roles: z.array(role).min(1),
};

export const resourceSchema = z.discriminatedUnion('kind', [
  z.object({ ...baseResource, kind: z.literal('postgres'), postgres: postgresConnection }).strict(),
  z.object({ ...baseResource, kind: z.literal('token') }).strict(),
  z.object({ ...baseResource, kind: z.literal('webhook'), webhook: webhookTarget }).strict(),
  z.object({ ...baseResource, kind: z.literal('ssh'), ssh: sshTarget }).strict(),
]);
export type ResourceConfig = z.infer<typeof resourceSchema>;

/** One custodian: a local id, optionally tied to their SSO principal so reviews can exclude them. */
const custodian = z.union([
  identifier,
  z.object({ id: identifier, principal: z.string().min(1).optional() }).strict(),
]);

const emergencyAccount = z
  .object({
    id: identifier,
    /** One resource and some of its roles: everything the account can ever reach. */
    scope: z.object({ resource: identifier, roles: z.array(identifier).min(1) }).strict(),
    /** Hard maximum of one activation; at most 240 (the absolute ceiling). */
    max_duration_minutes: z.number().int().min(1),
    custodians: z.array(custodian).min(2),
    /** Distinct custodians needed, the initiator included; at least 2. */
    quorum: z.number().int().default(2),
    /** Minutes the other custodians have to confirm; at most 60. */
    activation_window_minutes: z.number().int().default(15),
    alert_channels: z.array(identifier).default([]),
    /** k-of-n Shamir sealing: k shares must be presented at initiation. */
    sealed: z
      .object({ threshold: z.number().int().min(2), shares: z.number().int().min(2).max(255) })
      .strict()
      .optional(),
    /** A drill older than this flags the account as overdue (default: break_glass.drill_interval). */
    drill_interval: duration.optional(),
  })
  .strict();

/** Break-glass emergency access (docs/break-glass-operations.md). */
export const breakGlassSchema = z
  .object({
    accounts: z.array(emergencyAccount).default([]),
    drill_interval: duration.default(90 * 86_400),
    /** How long a drill's grants last (shortened from minutes to seconds); at most 15m. */
    drill_access: duration.default(30),
    /** Portcullis groups (besides `admins`) whose members may record break-glass reviews. */
    reviewer_groups: z.array(identifier).default([]),
    /**
     * Alert channels (webhook, SMTP) named by the accounts; each entry is validated by
     * `alertChannelSchema` (src/break-glass/alerts/alert-config.ts) when the section is resolved.
     */
    alert_channels: z.array(z.unknown()).default([]),
    /** Security keys (WebAuthn) as second factor; validated by `webauthnConfigSchema`. */
    webauthn: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** The URL people and IdPs reach Portcullis at (redirect URIs, token issuer). */
        public_url: z.url().optional(),
        /** Trust X-Forwarded-For from these proxies (Fastify trustProxy); false by default. */
        trust_proxy: z.union([z.boolean(), z.array(z.string())]).default(false),
        body_limit_bytes: z.number().int().min(1024).max(10_485_760).default(65_536),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, trust_proxy: false, body_limit_bytes: 65_536 }),
    storage: z
      .object({
        /** `sqlite:PATH` (default `sqlite:portcullis.db`) or `postgres://…` (may be a secret ref). */
        url: z.union([z.string().min(1), secretRef]).default('sqlite:portcullis.db'),
      })
      .strict()
      .default({ url: 'sqlite:portcullis.db' }),
    /** IANA zone in which policies see `hour` and `weekday`. */
    time_zone: z.string().default('UTC'),
    identity_providers: z.array(identityProviderSchema).default([]),
    /** Identities (`idp:subject`) that are one person; only explicit pairs, never claims. */
    identity_links: z
      .array(z.object({ principal: z.string().min(1), also: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
    resources: z.array(resourceSchema).default([]),
    policies: z
      .object({
        /** Cedar policy files, relative to the config file. */
        files: z.array(z.string().min(1)).min(1),
      })
      .strict(),
    /** Portcullis groups with full administrative rights (revoke anything, rotate keys, view audit). */
    admins: z.array(identifier).default([]),
    tokens: z
      .object({
        /** Key that encrypts signing keys and credentials at rest: 32 bytes, base64 or hex. */
        key_encryption_key: secretRef,
        audience: z.string().default('portcullis'),
        /** Longest life of an access token (never past its grant's end). */
        access_token_ttl: duration.default(900),
        /** Life of a Portcullis session token issued after login. */
        session_ttl: duration.default(3600),
        /** How long a retired signing key stays in the JWKS after rotation. */
        rotation_overlap: duration.default(86_400),
        /** Longest age of the active token-signing key before a replica rotates it; `off`: never. */
        rotation_interval: z
          .union([z.literal('off'), duration.pipe(z.number().min(3600, 'must be at least 1h (or off)'))])
          .default(30 * 86_400),
        /**
         * How long before a scheduled rotation the next key is published in the JWKS (default: a
         * day, or a quarter of the interval when that is shorter); `off`: not ahead.
         */
        rotation_prepublish: z.union([z.literal('off'), duration]).optional(),
        /** Algorithm of token-signing keys made from now on (the first key, every rotation). */
        signing_algorithm: z.enum(tokenSigningAlgorithms).default('EdDSA'),
      })
      .strict()
      .refine(
        (tokens) =>
          typeof tokens.rotation_prepublish !== 'number' ||
          tokens.rotation_interval === 'off' ||
          tokens.rotation_prepublish < tokens.rotation_interval,
        { path: ['rotation_prepublish'], message: 'must be shorter than rotation_interval' },
      )
      .refine((tokens) => tokens.rotation_overlap >= Math.max(tokens.access_token_ttl, tokens.session_ttl), {
        path: ['rotation_overlap'],
        message:
          'must be at least the longest token lifetime (access_token_ttl, session_ttl): tokens signed before a rotation would stop verifying before they expire',
      }),
    audit: z
      .object({
        /** A signed checkpoint is written after this many events… */
        checkpoint_every_events: z.number().int().min(1).default(1000),
        /** …or after this long, whichever comes first. */
        checkpoint_interval: duration.default(300),
        /** Events older than this are removed, at a signed checkpoint (docs/audit.md#retention). */
        retention: z
          .union([
            z.literal('forever'),
            duration.pipe(z.number().min(86_400, 'must be at least 1d (or forever)')),
          ])
          .default('forever'),
        /** Copies of the log sent to SIEMs as it grows, each in order and at least once. */
        streams: z
          .array(auditStream)
          .refine(
            (streams) => new Set(streams.map((s) => s.name)).size === streams.length,
            'names a stream twice',
          )
          .default([]),
      })
      .strict()
      .default({
        checkpoint_every_events: 1000,
        checkpoint_interval: 300,
        retention: 'forever',
        streams: [],
      }),
    requests: z
      .object({
        /** How long a request may wait for its reviews before it lapses (1 minute to 30 days). */
        pending_ttl: duration
          .pipe(
            z
              .number()
              .min(60, 'must be at least 1m')
              .max(30 * 86_400, 'must be at most 30d'),
          )
          .default(86_400),
      })
      .strict()
      .default({ pending_ttl: 86_400 }),
    expiry: z
      .object({
        /** Safety-net poll of the database for due expiries; precise timers do the rest. */
        poll_interval: duration.default(1),
      })
      .strict()
      .default({ poll_interval: 1 }),
    /** Comparing what targets hold with the grants, and taking back what must not be there. */
    reconcile: z
      .object({
        enabled: z.boolean().default(true),
        interval: duration
          .pipe(z.number().min(30, 'must be at least 30s').max(86_400, 'must be at most 1d'))
          .default(600),
      })
      .strict()
      .default({ enabled: true, interval: 600 }),
    /** SCIM 2.0 provisioning at /scim/v2 (docs/scim.md); absent means no SCIM endpoint. */
    scim: z
      .object({
        clients: z
          .array(
            z
              .object({
                /** The identity provider whose principals this client provisions (and only those). */
                idp: identifier,
                /** Bearer secret the IdP sends; at least 32 characters. */
                token: secretRef,
                /** SCIM attribute that holds the principal's subject (the OIDC `sub`). */
                subject_attribute: z.enum(['externalId', 'userName']).default('externalId'),
              })
              .strict(),
          )
          .min(1),
      })
      .strict()
      .optional(),
    /** The PostgreSQL wire-protocol gateway (docs/gateway.md); absent means no gateway. */
    gateway: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(6432),
        /** Where people reach the gateway (put into gateway connection strings). */
        public_host: z.string().min(1).optional(),
        public_port: z.number().int().min(1).max(65535).optional(),
        /** Certificate chain and private key (PEM): a path, or a secret reference. */
        tls: z
          .object({
            cert: z.union([z.string().min(1), secretRef]),
            key: z.union([z.string().min(1), secretRef]),
          })
          .strict()
          .optional(),
        /** Accept the token in cleartext without TLS, but only from a loopback peer. */
        allow_plaintext_on_loopback: z.boolean().default(false),
        /** Record Bind parameter values with the statements (they may hold personal data). */
        record_parameters: z.boolean().default(false),
        /** Largest protocol message accepted from a client; a larger one ends its connection. */
        max_message_bytes: z.number().int().min(8192).max(1_073_741_824).default(1_048_576),
        /** Client connections at once (logins in progress included); more are closed when accepted. */
        max_connections: z.number().int().min(1).max(1_000_000).default(10_000),
        /** Logins in progress at once from one client address; more are refused (53300). */
        max_logins_per_address: z.number().int().min(1).max(1_000_000).default(256),
        /** Re-check of every open session's grant, for revocations made by other replicas. */
        liveness_check_interval: duration.default(1),
      })
      .strict()
      .optional(),
    break_glass: breakGlassSchema.optional(),
    /** Request notifications; validated by `notificationsSchema` (src/notifications/notification-config.ts). */
    notifications: z.unknown().optional(),
  })
  .strict();

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
