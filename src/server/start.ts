/**
 * The composition root: the one place that reads configuration, constructs the adapters and wires
 * them into the application services, the HTTP edge and the expiry loop.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { JWK } from 'jose';
import pino, { type DestinationStream } from 'pino';
import { AccessService } from '../app/access-service.js';
import { AuditRetention } from '../app/audit-retention.js';
import { AuditStreamRelay } from '../app/audit-stream-relay.js';
import { BreakGlassService } from '../app/break-glass-service.js';
import { ExpiryLoop } from '../app/expiry-loop.js';
import { GatewaySessions } from '../app/gateway-sessions.js';
import { NotificationRelay } from '../app/notification-relay.js';
import type { Store } from '../app/ports.js';
import { PrincipalLocks } from '../app/principal-locks.js';
import { Reconciler } from '../app/reconciler.js';
import { ScheduledNotices } from '../app/scheduled-notices.js';
import { ScimService } from '../app/scim-service.js';
import { type BrowserLogin, SessionService } from '../app/session-service.js';
import { SshKeyCertification } from '../app/ssh-key-certification.js';
import { SshSessionReports } from '../app/ssh-session-reports.js';
import { AuditCheckpointer, checkpointSignatureValid, ed25519PublicKey } from '../audit/checkpoint.js';
import { exportAudit } from '../audit/export.js';
import { WebhookAuditStreamSink } from '../audit/webhook-stream-sink.js';
import { AccountAlertRouter } from '../break-glass/account-alert-router.js';
import { RetryingAlertDispatcher } from '../break-glass/alerts/index.js';
import { LoggingAlertDispatcher } from '../break-glass/logging-alert-dispatcher.js';
import type { AlertDispatcher } from '../break-glass/ports.js';
import { SecurityKeyCeremonies, webauthnSettings } from '../break-glass/webauthn.js';
import {
  type Config,
  ConfigError,
  type DegradedSection,
  decodeKeyEncryptionKey,
  type Environment,
  loadConfig,
} from '../config/load.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { IdentityLinks } from '../core/identity-links.js';
import type { Principal } from '../core/principal.js';
import { JweSecretBox } from '../crypto/secret-box.js';
import { gatewayFromConfig, type PostgresGateway, publicGatewayEndpoint } from '../gateway/index.js';
import { buildHttpApp } from '../http/app.js';
import { IdpJwtVerifier } from '../identity/idp-jwt-verifier.js';
import { OidcLogin } from '../identity/oidc-login.js';
import { SamlLogin } from '../identity/saml-login.js';
import { mappingSettingsOf } from '../identity/sign-in-explain.js';
import {
  PrometheusAuditRetentionMetrics,
  PrometheusAuditStreamMetrics,
} from '../observability/audit-stream-metrics.js';
import { registerBreakGlassMetrics } from '../observability/break-glass-metrics.js';
import { registerGatewayMetrics } from '../observability/gateway-metrics.js';
import { PrometheusMetrics } from '../observability/metrics.js';
import { PrometheusReconcileMetrics } from '../observability/reconcile-metrics.js';
import { CedarPolicyEngine } from '../policy/cedar-policy-engine.js';
import { DenyAllPolicyEngine } from '../policy/deny-all-policy-engine.js';
import { policyClock } from '../policy/policy-context.js';
import { PostgresProvisioner } from '../provisioners/postgres-provisioner.js';
import { ProvisionerRegistry } from '../provisioners/provisioner-registry.js';
import { sshHostMaterial } from '../provisioners/ssh-host-material.js';
import { SshProvisioner } from '../provisioners/ssh-provisioner.js';
import { TokenProvisioner } from '../provisioners/token-provisioner.js';
import { WebhookProvisioner } from '../provisioners/webhook-provisioner.js';
import { openStore } from '../storage/open-store.js';
import { SigningKeyStore, signingKeySealPurpose, signingKeyStoreOptions } from '../tokens/key-store.js';
import { ScheduledKeyRotation } from '../tokens/scheduled-rotation.js';
import { TokenService } from '../tokens/token-service.js';

export interface StartOptions {
  readonly configPath: string;
  readonly env?: Environment;
  readonly clock?: Clock;
  /** Listen on the configured address (default true); tests may use `app.inject()` instead. */
  readonly listen?: boolean;
  /** Log level; `silent` in tests. Default `info`, or PORTCULLIS_LOG_LEVEL. */
  readonly logLevel?: string;
  /** Where log lines go. Default: standard output. */
  readonly logDestination?: DestinationStream;
  /** Do not print the start-up banner (the demo prints its own). */
  readonly quiet?: boolean;
  /** Break-glass alert dispatcher; default: one that only logs (see docs/break-glass-operations.md). */
  readonly alerts?: AlertDispatcher;
}

export interface RunningPortcullis {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly access: AccessService;
  readonly tokens: TokenService;
  readonly keys: SigningKeyStore;
  readonly expiry: ExpiryLoop;
  /** The database gateway, when `gateway` is configured and the server listens. */
  readonly gateway: PostgresGateway | null;
  /** Break-glass, when emergency accounts are configured. */
  readonly breakGlass: BreakGlassService | null;
  readonly alerts: AlertDispatcher;
  /** Base URL actually listened on (port 0 resolved), or the public URL when not listening. */
  readonly url: string;
  close(): Promise<void>;
}

/** Builds everything from the configuration file, recovers overdue work, then serves. */
export async function startPortcullis(options: StartOptions): Promise<RunningPortcullis> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  const logOptions = {
    level: options.logLevel ?? env.PORTCULLIS_LOG_LEVEL ?? 'info',
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token'],
      censor: '[redacted]',
    },
  };
  const logger = options.logDestination ? pino(logOptions, options.logDestination) : pino(logOptions);
  // A broken federation or policy section does not stop the break-glass path (docs/break-glass-operations.md).
  const loaded = loadConfig(options.configPath, env, { degradable: true });
  const degraded: DegradedSection[] = [...loaded.degraded];
  let policy: CedarPolicyEngine | DenyAllPolicyEngine;
  if (degraded.some((d) => d.section === 'policies')) {
    policy = new DenyAllPolicyEngine(degraded.flatMap((d) => d.problems).join('; '));
  } else {
    try {
      policy = CedarPolicyEngine.fromFiles(loaded.policyFiles, { timeZone: loaded.timeZone });
    } catch (error) {
      if (loaded.breakGlass.accounts.length === 0) throw error;
      const problem = error instanceof Error ? error.message : String(error);
      degraded.push({ section: 'policies', problems: [problem] });
      policy = new DenyAllPolicyEngine(problem);
    }
  }
  const config: Config =
    degraded.length === loaded.degraded.length ? loaded : Object.freeze({ ...loaded, degraded });
  for (const d of degraded)
    logger.error(
      { section: d.section, problems: d.problems },
      'configuration section failed to load: serving break-glass only for it',
    );
  const logAlerts = new LoggingAlertDispatcher(logger.child({ component: 'break-glass-alerts' }));

  const store = await openStore(config.storageUrl.reveal(), {
    onBackgroundError: (error) => logger.warn({ err: error }, 'database connection error'),
  });
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const closeAll = async () => {
    for (const close of closers.reverse())
      await close().catch((error) => logger.error({ err: error }, 'shutdown'));
  };
  // Each account's alerts go to its own channels, retried in the background; every failed attempt
  // is audited (the final one as high severity). Without channels they are only logged.
  const alerts: AlertDispatcher =
    options.alerts ??
    (config.breakGlass.alertChannels.length === 0
      ? logAlerts
      : new AccountAlertRouter(
          config.breakGlass.accounts,
          config.breakGlass.alertChannels,
          (channels) =>
            new RetryingAlertDispatcher({
              channels,
              onReport: async (report) => {
                if (report.delivered) return;
                await store.transaction((tx) =>
                  tx.audit.append(
                    {
                      type: 'break_glass.alert_failed',
                      actor: 'system',
                      severity: report.final ? 'high' : 'warning',
                      reason: report.error ?? null,
                      data: { ...report },
                    },
                    clock.now(),
                  ),
                );
              },
              onReportError: (error) => logger.error({ err: error }, 'break-glass alert report'),
            }),
          logAlerts,
        ));
  if (alerts instanceof AccountAlertRouter) closers.push(() => alerts.close());
  try {
    const kek = decodeKeyEncryptionKey(config.tokens.keyEncryptionKey.reveal());
    if (!kek) throw new PortcullisError('config_invalid', 'tokens.key_encryption_key is not 32 bytes');
    const box = new JweSecretBox(kek);
    // Each kind of sealed value has its own purpose label, so one cannot be swapped in for another.
    const secrets = box.withPurpose('grant-credentials');
    const keyBox = box.withPurpose(signingKeySealPurpose);
    const keyOptions = { ...signingKeyStoreOptions(config.tokens), clock };
    const keys = new SigningKeyStore(store.keys, keyBox, keyOptions);
    const tokenKey = await keys.ensureActiveKey('token', clock.now());
    if (tokenKey.alg !== config.tokens.signingAlgorithm) {
      // Not rotated here: replicas started with different settings would rotate back and forth.
      logger.warn(
        { kid: tokenKey.kid, alg: tokenKey.alg, configured: config.tokens.signingAlgorithm },
        'tokens.signing_algorithm differs from the active token key; it applies from the next rotation (scheduled, or `portcullis keys rotate --purpose token`)',
      );
    }
    await keys.ensureActiveKey('audit', clock.now());
    const scheduledRotation = new ScheduledKeyRotation({
      store,
      keys,
      keysIn: (repository) => new SigningKeyStore(repository, keyBox, keyOptions),
      intervalSeconds: config.tokens.rotationIntervalSeconds,
      prepublishSeconds: config.tokens.rotationPrepublishSeconds,
      overlapSeconds: config.tokens.rotationOverlapSeconds,
    });
    const tokens = new TokenService({
      keys,
      issuer: config.server.publicUrl,
      audience: config.tokens.audience,
      accessTokenTtlSeconds: config.tokens.accessTokenTtlSeconds,
      sessionTtlSeconds: config.tokens.sessionTtlSeconds,
    });

    const installation = await store.installationId();
    const ssh = new SshProvisioner({ clock });
    const provisioners = new ProvisionerRegistry([
      new PostgresProvisioner({ poolSize: 4, installation }),
      new TokenProvisioner(),
      new WebhookProvisioner({ installation }),
      ssh,
    ]);
    closers.push(() => provisioners.close());
    provisioners.assertCovers(config.resources.values());
    const sshResources = [...config.resources.values()].filter((resource) => resource.kind === 'ssh');
    // A certificate authority key that cannot be used is a configuration error at start, not at the first grant.
    for (const resource of sshResources) ssh.authority(resource);
    const metrics = new PrometheusMetrics(store, { now: () => clock.now() });

    let expiry: ExpiryLoop | undefined;
    let gateway: PostgresGateway | null = null;
    const identityLinks = new IdentityLinks(config.identityLinks);
    const access = new AccessService({
      store,
      policy,
      provisioners,
      resources: config.resources,
      secrets,
      tokens: {
        issueAccessToken: (input) =>
          tokens.issueAccessToken({
            ...input,
            scopes: config.resources.get(input.grant.resourceId)?.roles.get(input.grant.role)?.grants ?? [],
          }),
      },
      metrics,
      clock,
      newId: randomUUID,
      localTime: (now) => policyClock(now, config.timeZone),
      adminGroups: config.admins,
      identityLinks,
      accessTokenTtlSeconds: config.tokens.accessTokenTtlSeconds,
      pendingTtlSeconds: config.requests.pendingTtlSeconds,
      onGrantActivated: (expiresAt) => expiry?.nudge(expiresAt),
      onGrantEnded: (grantId, why) => gateway?.endGrant(grantId, why),
      log: logger.child({ component: 'access' }),
      gatewayOnlyEndpoint: (resourceId) =>
        config.gateway && config.resources.get(resourceId)?.postgres?.gatewayOnly
          ? publicGatewayEndpoint(config.gateway, config.server.publicUrl, gateway?.port)
          : undefined,
    });

    const breakGlass =
      config.breakGlass.accounts.length > 0
        ? new BreakGlassService({
            store,
            access,
            settings: config.breakGlass,
            totpSecrets: box.withPurpose('break-glass-totp'),
            alerts,
            clock,
            newId: randomUUID,
            adminGroups: config.admins,
            onActivated: (expiresAt) => expiry?.nudge(expiresAt),
            securityKeys: new SecurityKeyCeremonies(
              webauthnSettings(config.breakGlass.webauthn, config.server.publicUrl),
              store.ephemeral,
              () => clock.now(),
            ),
          })
        : null;
    if (breakGlass) registerBreakGlassMetrics(metrics.registry, breakGlass);

    const logins = new Map<string, BrowserLogin>();
    const idpIssues: { path: string; message: string }[] = [];
    for (const idp of config.identityProviders) {
      if (idp.type === 'saml') {
        try {
          logins.set(
            idp.id,
            new SamlLogin(idp, { ephemeral: store.ephemeral, clock, publicUrl: config.server.publicUrl }),
          );
        } catch (error) {
          idpIssues.push({
            path: `${idp.configPath}.${idp.metadata_file ? 'metadata_file' : 'metadata_url'}`,
            message: `SAML metadata ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      } else {
        logins.set(idp.id, new OidcLogin(idp, { ephemeral: store.ephemeral, clock }));
      }
    }
    if (idpIssues.length > 0) throw new ConfigError(config.file, idpIssues);
    const oidcProviders = config.identityProviders.filter((p) => p.type === 'oidc');
    const idpJwts = new IdpJwtVerifier(oidcProviders, { clock });
    const sessions = new SessionService({
      store,
      tokens,
      idpBearer: idpJwts.enabled ? idpJwts : null,
      logins,
      clock,
      sessionTtlSeconds: config.tokens.sessionTtlSeconds,
      publicUrl: config.server.publicUrl,
      identityLinks,
      groupsMaxAgeSeconds: new Map(
        config.identityProviders.flatMap((p) =>
          p.groups_max_age === undefined ? [] : [[p.id, p.groups_max_age] as const],
        ),
      ),
    });

    const scimBaseUrl = `${config.server.publicUrl}/scim/v2`;
    const scim = new ScimService({
      store,
      access,
      clock,
      baseUrl: scimBaseUrl,
      identityLinks,
      clients: config.scimClients.flatMap((client) => {
        // The config loader refuses a SCIM client of an unknown identity provider.
        const idp = config.identityProviders.find((p) => p.id === client.idp);
        if (!idp) return [];
        return [
          {
            idp: client.idp,
            token: client.token.reveal(),
            subjectAttribute: client.subjectAttribute,
            mapping: mappingSettingsOf(idp),
          },
        ];
      }),
    });

    const checkpointNow = async (now: number, force: boolean) => {
      const key = await keys.activeSigningKey('audit');
      const checkpointer = new AuditCheckpointer(store.auditLog, key, {
        everyEvents: config.audit.checkpointEveryEvents,
        everySeconds: config.audit.checkpointIntervalSeconds,
      });
      return force ? checkpointer.checkpointNow(now) : checkpointer.checkpointIfDue(now);
    };

    const viewAuditContext = (principal: Principal) =>
      policy.decide(principal, 'view_audit', null, null, {
        durationMinutes: 0,
        ...policyClock(clock.now(), config.timeZone),
        reason: '',
        ticket: '',
        sensitivity: 'high',
        source: 'api',
        requesterId: principal.id,
      });

    await store.transaction((tx) =>
      tx.audit.append(
        {
          type: 'config.loaded',
          actor: 'system',
          data: {
            file: config.file,
            resources: [...config.resources.keys()],
            identityProviders: config.identityProviders.map((p) => p.id),
            policyFiles: config.policyFiles,
            breakGlassAccounts: config.breakGlass.accounts.map((a) => a.id),
            degraded: config.degraded,
          },
          ...(config.degraded.length > 0 ? { severity: 'high' as const } : {}),
        },
        clock.now(),
      ),
    );

    const reconciler = new Reconciler({
      store,
      provisioners,
      resources: config.resources,
      clock,
      metrics: new PrometheusReconcileMetrics(metrics.registry),
      newId: randomUUID,
      log: logger.child({ component: 'reconcile' }),
      intervalMs: config.reconcileIntervalSeconds === null ? null : config.reconcileIntervalSeconds * 1000,
      owner: `${hostname()}:${process.pid}:${randomUUID()}`,
      isAdmin: (principal) => access.isAdmin(principal),
      onError: (error) => logger.error({ err: error }, 'reconciliation'),
    });

    const auditRetention =
      config.audit.retentionSeconds === null
        ? undefined
        : new AuditRetention({
            store,
            clock,
            retentionMs: config.audit.retentionSeconds * 1000,
            streams: config.audit.streams.map((stream) => stream.name),
            owner: `${hostname()}:${process.pid}:${randomUUID()}`,
            signingKey: () => keys.activeSigningKey('audit'),
            checkpointValid: async (checkpoint) => {
              const published = (await keys.publicKeys('audit', clock.now())).keys;
              const jwk = published.find((key) => key.kid === checkpoint.kid);
              return jwk !== undefined && checkpointSignatureValid(checkpoint, ed25519PublicKey(jwk as JWK));
            },
            metrics: new PrometheusAuditRetentionMetrics(metrics.registry),
            log: (message, fields) => logger.info(fields, message),
            onError: (error) => logger.error({ err: error }, 'audit retention'),
          });

    const { remindAfterSeconds, warnBeforeExpirySeconds } = config.notifications;
    const notices = new ScheduledNotices({
      store,
      clock,
      ...(remindAfterSeconds === null ? {} : { remindAfterMs: remindAfterSeconds * 1000 }),
      ...(warnBeforeExpirySeconds === null ? {} : { warnBeforeExpiryMs: warnBeforeExpirySeconds * 1000 }),
      owner: `${hostname()}:${process.pid}:${randomUUID()}`,
      onError: (error) => logger.error({ err: error }, 'scheduled notices'),
    });

    expiry = new ExpiryLoop(access, store, clock, {
      pollIntervalMs: config.expiry.pollIntervalSeconds * 1000,
      onError: (error) => logger.error({ err: error }, 'expiry loop'),
      onTick: async (now) => {
        await checkpointNow(now, false);
        await store.ephemeral.purgeExpired(now);
        await breakGlass?.tick();
        const rotated = await scheduledRotation.rotateIfDue(now);
        if (rotated)
          logger.info(
            { kid: rotated.kid, alg: rotated.alg, retired: rotated.retiredKids },
            'token key rotated on schedule',
          );
        reconciler.tick(now);
        auditRetention?.tick(now);
        notices.tick(now);
      },
    });
    // Emergency requests left approved by a crash must not outlive their activation.
    await breakGlass?.prepareRecovery();
    const recovered = await access.recover();
    if (Object.values(recovered).some((count) => count > 0)) logger.info(recovered, 'recovered at boot');
    expiry.start();
    closers.push(() => (expiry as ExpiryLoop).stop());
    closers.push(() => reconciler.stop());
    if (auditRetention) closers.push(() => auditRetention.stop());
    closers.push(() => notices.stop());

    if (config.audit.streams.length > 0) {
      const auditStreams = new AuditStreamRelay({
        store,
        clock,
        owner: `${hostname()}:${process.pid}:${randomUUID()}`,
        streams: config.audit.streams.map((stream) => ({
          sink: new WebhookAuditStreamSink(stream.name, {
            url: stream.target.url.reveal(),
            secret: stream.target.secret.reveal(),
            timeoutMs: stream.target.timeoutMs,
          }),
          batchSize: stream.batchSize,
          startAt: stream.startAt,
          // Longer than one request may take, renewed before each.
          leaseMs: stream.target.timeoutMs + 60_000,
        })),
        metrics: new PrometheusAuditStreamMetrics(metrics.registry),
        onError: (error, stream) => logger.error({ err: error, stream }, 'audit stream'),
      });
      auditStreams.start();
      closers.push(() => auditStreams.stop());
    }

    if (config.notifications.channels.length > 0) {
      const notifications = new NotificationRelay({
        store,
        channels: config.notifications.channels,
        clock,
        owner: `${hostname()}:${process.pid}:${randomUUID()}`,
        maxAttempts: config.notifications.maxAttempts,
        onError: (error, channel) => logger.error({ err: error, channel }, 'notification relay'),
      });
      notifications.start();
      closers.push(() => notifications.stop());
    }

    const app = await buildHttpApp({
      access,
      sessions,
      gatewaySessions: new GatewaySessions({
        store,
        clock,
        maySeeGrant: (viewer, grant) => access.maySeeGrant(viewer, grant),
        // Set once the gateway listens, below; until then there are no local sessions.
        local: () => gateway?.directory,
      }),
      reconciler,
      principalLocks: new PrincipalLocks({
        store,
        clock,
        isAdmin: (principal) => access.isAdmin(principal),
        endAllAccessOf: (...args) => access.endAllAccessOf(...args),
        canonicalId: (idp, subject) => identityLinks.canonicalId(idp, subject),
        identitiesOf: (id) => identityLinks.identitiesOf(id),
        knowsIdp: (idp) => config.identityProviders.some((p) => p.id === idp),
      }),
      tokenJwks: async () => ({ keys: [...(await keys.publicKeys('token', clock.now())).keys] }),
      ssh: sshHostMaterial({ store, provisioner: ssh, resources: config.resources, clock }),
      sshKeys: new SshKeyCertification({
        access,
        resources: config.resources,
        provisioner: ssh,
        clock,
      }),
      sshReports: new SshSessionReports({
        store,
        clock,
        tokens: new Map(
          sshResources.flatMap((resource) => {
            const tokens = resource.ssh?.sessionReportTokens ?? [];
            return tokens.length > 0 ? [[resource.id, tokens.map((token) => token.reveal())] as const] : [];
          }),
        ),
      }),
      auditJwks: async () => ({ keys: [...(await keys.publicKeys('audit', clock.now())).keys] }),
      introspect: async (token) =>
        (await tokens.introspect(token, clock.now(), (grantId) => access.isGrantLive(grantId))) as Record<
          string,
          unknown
        >,
      exportAudit: async (sink) => {
        await checkpointNow(clock.now(), true);
        await exportAudit(store.auditLog, sink);
      },
      readAudit: (after, limit) => store.auditLog.read(after, limit),
      auditHead: async () => (await store.auditLog.head()).seq,
      mayViewAudit: viewAuditContext,
      recordAuditView: async (principal, from, what) => {
        await store.transaction((tx) =>
          tx.audit.append(
            {
              type: 'audit.viewed',
              actor: principal.id,
              sourceIp: from.sourceIp,
              userAgent: from.userAgent,
              data: { what },
            },
            clock.now(),
          ),
        );
      },
      metrics: () => metrics.exposition(),
      readiness: async () => {
        const checks: Record<string, string> = {};
        try {
          await store.requests.nextExpiry();
          checks.database = 'ok';
        } catch (error) {
          // /readyz is public: the driver's message (database, user, host, port) goes to the log only.
          logger.warn({ err: error }, 'readiness: database unavailable');
          checks.database = 'unavailable';
        }
        try {
          await keys.activeSigningKey('token');
          checks.signing_keys = 'ok';
        } catch {
          checks.signing_keys = 'unavailable';
        }
        checks.policies = 'ok';
        for (const d of config.degraded)
          checks[d.section] = `failed to load: ${d.problems.length} problem(s); see the log`;
        // Drill freshness is reported, but an overdue drill does not take a replica out of service.
        const informational = new Set(['break_glass_drills']);
        if (breakGlass) {
          checks.break_glass = config.degraded.length > 0 ? 'ok (break-glass-only mode)' : 'ok';
          try {
            const overdue = (await breakGlass.overview())
              .filter((a) => a.drillOverdue)
              .map((a) => a.accountId);
            checks.break_glass_drills = overdue.length === 0 ? 'ok' : `overdue: ${overdue.join(', ')}`;
          } catch {
            checks.break_glass_drills = 'unavailable';
          }
        }
        const ready = Object.entries(checks).every(
          ([name, v]) =>
            informational.has(name) || v === 'ok' || (name === 'break_glass' && v.startsWith('ok')),
        );
        return { ready, checks };
      },
      ...(breakGlass ? { breakGlass } : {}),
      scim: scim.enabled ? { service: scim, baseUrl: scimBaseUrl } : null,
      bodyLimitBytes: config.server.bodyLimitBytes,
      trustProxy: config.server.trustProxy,
      logger: {
        level: options.logLevel ?? env.PORTCULLIS_LOG_LEVEL ?? 'info',
        redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
        serializers: {
          // Query strings can carry OIDC codes and state: log the path only.
          req: (req: { method: string; url: string; ip?: string }) => ({
            method: req.method,
            path: req.url.split('?')[0],
            ip: req.ip,
          }),
        },
      },
    });
    closers.push(() => app.close());

    let url = config.server.publicUrl;
    if (config.gateway && (options.listen ?? true)) {
      const started = gatewayFromConfig({
        config: config.gateway,
        resources: config.resources,
        verifyAccessToken: (token, now, opts) => tokens.verifyAccessToken(token, now, opts),
        upstreamCredentials: (grantId) => access.upstreamCredentials(grantId),
        isGrantLive: (grantId) => access.isGrantLive(grantId),
        store,
        clock,
        log: logger.child({ component: 'gateway' }),
        metrics: registerGatewayMetrics(metrics.registry, () => gateway?.state()),
      });
      await started.listen();
      gateway = started;
      closers.push(() => started.close());
    }
    if (options.listen ?? true) {
      await app.listen({ host: config.server.host, port: config.server.port });
      const address = app.server.address();
      if (address && typeof address === 'object') url = `http://${config.server.host}:${address.port}`;
    }
    if (!options.quiet)
      logger.info({ url, config: config.file, storage: store.dialect }, 'Portcullis is serving');
    return {
      config,
      app,
      store,
      access,
      tokens,
      keys,
      expiry,
      gateway,
      breakGlass,
      alerts,
      url,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
