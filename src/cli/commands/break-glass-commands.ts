/**
 * `portcullis break-glass …`. Two kinds of commands:
 *
 * - **On the server host, straight against the storage** (like `keys rotate`; no server or SSO
 *   needed): `enroll`, `seal`, `rotate`, `report`, `accounts`.
 * - **Over the HTTP API, authenticated by custodian credentials, never SSO**: `activate`,
 *   `confirm`, `status`, `credentials`, `end`, `cancel`, `drill`; and `review` with a normal
 *   signed-in session (the reviewer is a person other than the participants), and `keys list` /
 *   `keys revoke` with an administrator's session.
 *
 * Secrets are never taken from argv: a passphrase and a TOTP code come from files
 * (`--passphrase-file`, `--totp-file`), the environment (`PORTCULLIS_BG_PASSPHRASE`,
 * `PORTCULLIS_BG_TOTP`) or stdin: one line each, in order, for whatever was not given otherwise
 * (passphrase, code), then the shares.
 * The initiator's activation handle is saved under `$PORTCULLIS_HOME/break-glass/` (0600).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient } from '../api-client.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import { type CliContext, cliVersion } from '../context.js';
import { loadOfflineConfig, requireRealSecret } from '../offline-config.js';

// ------------------------------------------------------------ secrets input

export interface SecretOptions {
  readonly passphraseFile?: string;
  readonly totpFile?: string;
  readonly sharesFile?: string;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > 256 * 1024) throw usageError('more than 256 KiB on stdin');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const firstLine = (text: string) => (text.split(/\r?\n/)[0] ?? '').trim();

/** Reads passphrase, TOTP code and shares: files, then environment, then stdin lines. */
async function readSecrets(
  ctx: CliContext,
  options: SecretOptions,
  need: { totp: boolean; shares: boolean },
): Promise<{ passphrase: string; totp: string; shares: string[] }> {
  let stdinLines: string[] | undefined;
  const stdin = async () => {
    if (stdinLines === undefined) {
      if (ctx.io.stdin.isTTY)
        ctx.output.note(
          'Reading the passphrase (line 1), then the TOTP code (line 2) from stdin; end with Ctrl-D…',
        );
      stdinLines = (await readAll(ctx.io.stdin)).split(/\r?\n/).map((l) => l.trim());
    }
    return stdinLines;
  };
  const fromFile = (path: string | undefined) => (path ? firstLine(readFileSync(path, 'utf8')) : undefined);
  // Stdin lines are taken in order by what is not given otherwise: passphrase, code, then shares.
  let consumed = 0;
  const nextLine = async () => (await stdin())[consumed++];
  const passphrase =
    fromFile(options.passphraseFile) ??
    (ctx.io.env.PORTCULLIS_BG_PASSPHRASE || undefined) ??
    (await nextLine()) ??
    '';
  if (passphrase === '')
    throw usageError('No passphrase: give --passphrase-file, PORTCULLIS_BG_PASSPHRASE or stdin');
  let totp = '';
  if (need.totp) {
    totp =
      fromFile(options.totpFile) ?? (ctx.io.env.PORTCULLIS_BG_TOTP || undefined) ?? (await nextLine()) ?? '';
    if (totp === '')
      throw usageError('No TOTP code: give --totp-file, PORTCULLIS_BG_TOTP or a line on stdin');
  }
  let shares: string[] = [];
  if (need.shares) {
    if (options.sharesFile) shares = readFileSync(options.sharesFile, 'utf8').split(/\r?\n/);
    else if (ctx.io.env.PORTCULLIS_BG_SHARES) shares = ctx.io.env.PORTCULLIS_BG_SHARES.split(/[\n,]/);
    else shares = (await stdin()).slice(consumed);
    shares = shares.map((s) => s.trim()).filter((s) => s !== '');
  }
  return { passphrase, totp, shares };
}

// ------------------------------------------------------------ offline (server host)

async function openOffline(ctx: CliContext, configPath: string) {
  const { decodeKeyEncryptionKey } = await import('../../config/load.js');
  const { openStore } = await import('../../storage/open-store.js');
  const { JweSecretBox } = await import('../../crypto/secret-box.js');
  const { BreakGlassAdmin } = await import('../../app/break-glass-admin.js');
  const config = await loadOfflineConfig(configPath, ctx.io.env);
  const kek = decodeKeyEncryptionKey(
    requireRealSecret(config.tokens.keyEncryptionKey, 'tokens.key_encryption_key'),
  );
  if (!kek) throw usageError('tokens.key_encryption_key is not 32 bytes');
  const store = await openStore(requireRealSecret(config.storageUrl, 'storage.url'));
  const admin = new BreakGlassAdmin({
    store,
    settings: config.breakGlass,
    // The same purpose label as the server (src/server/start.ts).
    totpSecrets: new JweSecretBox(kek).withPurpose('break-glass-totp'),
    clock: { now: ctx.io.now },
  });
  return { config, store, admin };
}

const operator = () => `operator:${userInfo().username}`;

export async function enroll(
  ctx: CliContext,
  accountId: string,
  options: SecretOptions & { config: string; custodian: string },
): Promise<void> {
  const { passphrase } = await readSecrets(ctx, options, { totp: false, shares: false });
  const { store, admin } = await openOffline(ctx, options.config);
  try {
    const { uri } = await admin.enroll(accountId, options.custodian, passphrase, operator());
    ctx.output.result({ account: accountId, custodian: options.custodian, otpauth_uri: uri }, () => {
      ctx.output.line(`Enrolled ${options.custodian} as a custodian of ${accountId}.`);
      ctx.output.line('Add this to the authenticator app now; it is shown only once:');
      ctx.output.line(uri);
    });
  } finally {
    await store.close();
  }
}

export async function seal(
  ctx: CliContext,
  accountId: string,
  options: { config: string; shares?: string; threshold?: string },
): Promise<void> {
  const { store, admin } = await openOffline(ctx, options.config);
  try {
    const override =
      options.shares || options.threshold
        ? { shares: Number(options.shares), threshold: Number(options.threshold) }
        : undefined;
    const result = await admin.seal(accountId, operator(), override);
    ctx.output.result(
      { account: accountId, seal_id: result.sealId, threshold: result.threshold, shares: result.shares },
      () => {
        ctx.output.line(
          `Sealed ${accountId} (seal ${result.sealId}): ${result.threshold} of ${result.shares.length} shares open it.`,
        );
        ctx.output.line('Hand each share to one custodian for offline storage; they are shown only once:');
        for (const share of result.shares) ctx.output.line(share);
      },
    );
  } finally {
    await store.close();
  }
}

export async function rotate(ctx: CliContext, accountId: string, options: { config: string }): Promise<void> {
  const { store, admin } = await openOffline(ctx, options.config);
  try {
    const r = await admin.rotate(accountId, operator());
    ctx.output.result(
      {
        account: accountId,
        totp: r.totp.map((t) => ({ custodian: t.custodianId, otpauth_uri: t.uri })),
        shares: r.shares,
        rotated_activations: r.rotatedActivations,
      },
      () => {
        ctx.output.line(
          `Rotated the emergency credentials of ${accountId}; old TOTP secrets${r.shares ? ' and shares' : ''} no longer work.`,
        );
        for (const t of r.totp) ctx.output.line(`${t.custodianId}: ${t.uri}`);
        if (r.shares) for (const share of r.shares) ctx.output.line(`share: ${share}`);
        ctx.output.line(`Rotation recorded for ${r.rotatedActivations.length} activation(s).`);
      },
    );
  } finally {
    await store.close();
  }
}

export async function report(
  ctx: CliContext,
  activationId: string,
  options: { config: string; out?: string },
): Promise<void> {
  const { evidenceMarkdown } = await import('../../app/break-glass-admin.js');
  const { store, admin } = await openOffline(ctx, options.config);
  try {
    const evidence = await admin.evidence(activationId);
    const dir = resolve(options.out ?? '.');
    mkdirSync(dir, { recursive: true });
    const json = join(dir, `break-glass-${activationId}.json`);
    const md = join(dir, `break-glass-${activationId}.md`);
    writeFileSync(json, `${JSON.stringify(evidence, null, 2)}\n`);
    writeFileSync(md, evidenceMarkdown(evidence));
    ctx.output.result(
      { json, markdown: md, events: evidence.auditEvents.length, state: evidence.activation.state },
      () => {
        ctx.output.line(`Wrote ${json} and ${md} (${evidence.auditEvents.length} audit events).`);
      },
    );
  } finally {
    await store.close();
  }
}

export async function accounts(ctx: CliContext, options: { config: string }): Promise<number> {
  const { accountOverview } = await import('../../app/break-glass-admin.js');
  const { config, store } = await openOffline(ctx, options.config);
  try {
    const list = await accountOverview(store, config.breakGlass, ctx.io.now());
    ctx.output.result({ accounts: list }, () => {
      for (const a of list) {
        const flags = [
          a.drillOverdue ? 'DRILL OVERDUE' : null,
          a.enrolled.length < a.quorum ? 'NOT ENOUGH CUSTODIANS ENROLLED' : null,
          a.sealReady ? null : 'NOT SEALED YET',
          a.awaitingReview > 0 ? `${a.awaitingReview} awaiting review` : null,
          a.rotationOwed > 0 ? `${a.rotationOwed} rotation(s) owed` : null,
        ].filter((f) => f !== null);
        ctx.output.line(
          `${a.accountId}: ${a.resourceId} [${a.roles.join(', ')}], quorum ${a.quorum}, enrolled ${a.enrolled.map((c) => (a.securityKeys[c] ? `${c} (${a.securityKeys[c]} security key${a.securityKeys[c] === 1 ? '' : 's'})` : c)).join(', ') || 'nobody'}; last drill ${a.lastDrillAt ? `${new Date(a.lastDrillAt).toISOString()} (${a.lastDrillPassed ? 'passed' : 'FAILED'})` : 'never'}${flags.length ? ` — ${flags.join('; ')}` : ''}`,
        );
      }
    });
    // Exit 10 when something needs attention, so a cron job can alert on it.
    return list.some((a) => a.drillOverdue) ? exitCodes.verificationFailed : exitCodes.ok;
  } finally {
    await store.close();
  }
}

// ------------------------------------------------------------ over HTTP, custodian credentials

function server(ctx: CliContext): string {
  const explicit = ctx.explicitServer;
  if (!explicit) throw usageError('Which server? Pass --server URL or set PORTCULLIS_SERVER');
  return explicit;
}

function handleDir(ctx: CliContext): string {
  return join(ctx.home, 'break-glass');
}

function saveHandle(ctx: CliContext, activationId: string, serverUrl: string, handle: string): string {
  const dir = handleDir(ctx);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${activationId}.json`);
  writeFileSync(file, JSON.stringify({ server: serverUrl, activation: activationId, handle }), {
    mode: 0o600,
  });
  chmodSync(file, 0o600);
  return file;
}

function handleClient(ctx: CliContext, activationId: string): ApiClient {
  let saved: { server: string; handle: string };
  try {
    saved = JSON.parse(readFileSync(join(handleDir(ctx), `${activationId}.json`), 'utf8')) as typeof saved;
  } catch {
    throw new CliError(
      'no_handle',
      `No saved handle for activation ${activationId}`,
      exitCodes.unauthenticated,
      {
        hint: 'only the initiator, on the machine where they ran `break-glass activate`, holds it',
      },
    );
  }
  return clientFor(ctx, saved.server, { 'x-break-glass-handle': saved.handle });
}

function clientFor(ctx: CliContext, serverUrl: string, headers: Record<string, string> = {}): ApiClient {
  return new ApiClient({
    server: serverUrl,
    fetch: ctx.io.fetch,
    userAgent: `portcullis-cli/${cliVersion}`,
    headers: { 'x-portcullis-client': 'cli', ...headers },
  });
}

interface ActivationView {
  id: string;
  account: string;
  state: string;
  drill: boolean;
  initiator: string;
  confirmers: string[];
  quorum: number;
  window_ends_at: string;
  expires_at: string | null;
  roles: string[];
  resource: string;
}

function printActivation(ctx: CliContext, a: ActivationView): void {
  ctx.output.line(
    `Activation ${a.id}${a.drill ? ' (drill)' : ''} on ${a.account}: ${a.state.toUpperCase()} — ${a.resource} [${a.roles.join(', ')}]`,
  );
  ctx.output.line(
    `  initiator ${a.initiator}; confirmed by ${a.confirmers.join(', ') || 'nobody yet'} (quorum ${a.quorum})`,
  );
  if (a.state === 'awaiting_quorum')
    ctx.output.line(`  other custodians must confirm before ${a.window_ends_at}`);
  if (a.expires_at) ctx.output.line(`  access ends at ${a.expires_at}`);
}

export interface ActivateOptions extends SecretOptions {
  readonly custodian: string;
  readonly reason: string;
  readonly incident: string;
  readonly for: string;
  readonly roles?: string;
  readonly drill?: boolean;
}

async function startActivation(
  ctx: CliContext,
  accountId: string,
  options: ActivateOptions,
  secrets: { passphrase: string; totp: string; shares: string[] },
) {
  const serverUrl = server(ctx);
  const minutes = Number(options.for.replace(/m$/, ''));
  if (!Number.isInteger(minutes)) throw usageError('--for takes whole minutes, e.g. 30 or 30m');
  const result = await clientFor(ctx, serverUrl).post<{ activation: ActivationView; handle: string }>(
    '/api/v1/break-glass/activations',
    {
      account: accountId,
      custodian: options.custodian,
      passphrase: secrets.passphrase,
      totp: secrets.totp,
      ...(secrets.shares.length > 0 ? { shares: secrets.shares } : {}),
      reason: options.reason,
      incident: options.incident,
      ...(options.roles ? { roles: options.roles.split(',') } : {}),
      duration_minutes: minutes,
      drill: options.drill === true,
    },
  );
  const file = saveHandle(ctx, result.activation.id, serverUrl, result.handle);
  return { ...result, file, serverUrl };
}

export async function activate(ctx: CliContext, accountId: string, options: ActivateOptions): Promise<void> {
  const secrets = await readSecrets(ctx, options, { totp: true, shares: true });
  const { activation, file } = await startActivation(ctx, accountId, options, secrets);
  ctx.output.result({ activation, handle_file: file }, () => {
    printActivation(ctx, activation);
    ctx.output.line(
      `Your activation handle is saved in ${file}; you alone can fetch the credentials with it.`,
    );
    ctx.output.line(
      `Ask another custodian to run: portcullis break-glass confirm ${activation.id} --custodian ID`,
    );
  });
}

export async function confirm(
  ctx: CliContext,
  activationId: string,
  options: SecretOptions & { custodian: string },
): Promise<void> {
  const secrets = await readSecrets(ctx, options, { totp: true, shares: false });
  const activation = await clientFor(ctx, server(ctx)).post<ActivationView>(
    `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}/confirm`,
    { custodian: options.custodian, passphrase: secrets.passphrase, totp: secrets.totp },
  );
  ctx.output.result(activation, () => printActivation(ctx, activation));
}

export async function status(ctx: CliContext, activationId: string): Promise<void> {
  const activation = await handleClient(ctx, activationId).get<ActivationView>(
    `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}`,
  );
  ctx.output.result(activation, () => printActivation(ctx, activation));
}

interface GrantAccess {
  grant_id: string;
  role: string;
  expires_at: string;
  credentials?: Record<string, string>;
  token?: string;
  out_of_scope?: string[];
}

export async function credentials(ctx: CliContext, activationId: string): Promise<void> {
  const result = await handleClient(ctx, activationId).post<{ grants: GrantAccess[] }>(
    `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}/credentials`,
  );
  ctx.output.result(result, () => {
    for (const g of result.grants) {
      ctx.output.line(`${g.role} (grant ${g.grant_id}, until ${g.expires_at}):`);
      if (g.credentials?.connection_string) ctx.output.line(`  ${g.credentials.connection_string}`);
      if (g.token) ctx.output.line(`  token: ${g.token}`);
    }
  });
}

export async function end(ctx: CliContext, activationId: string): Promise<void> {
  const activation = await handleClient(ctx, activationId).post<ActivationView>(
    `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}/end`,
  );
  ctx.output.result(activation, () => printActivation(ctx, activation));
}

export async function cancel(
  ctx: CliContext,
  activationId: string,
  options: SecretOptions & { custodian?: string },
): Promise<void> {
  const path = `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}/cancel`;
  let activation: ActivationView;
  if (options.custodian) {
    const secrets = await readSecrets(ctx, options, { totp: true, shares: false });
    activation = await clientFor(ctx, server(ctx)).post<ActivationView>(path, {
      custodian: options.custodian,
      passphrase: secrets.passphrase,
      totp: secrets.totp,
    });
  } else {
    activation = await handleClient(ctx, activationId).post<ActivationView>(path);
  }
  ctx.output.result(activation, () => printActivation(ctx, activation));
}

export async function review(
  ctx: CliContext,
  activationId: string,
  options: { notes: string },
): Promise<void> {
  const client = await ctx.client();
  const activation = await client.post<ActivationView>(
    `/api/v1/break-glass/activations/${encodeURIComponent(activationId)}/review`,
    { notes: options.notes },
  );
  ctx.output.result(activation, () => printActivation(ctx, activation));
}

// ------------------------------------------------------------ security keys (signed-in admin)

interface SecurityKeyView {
  credential_id: string;
  custodian: string;
  aaguid: string;
  backed_up: boolean;
  created_at: string;
}

const keysPath = (accountId: string) =>
  `/api/v1/break-glass/accounts/${encodeURIComponent(accountId)}/security-keys`;

export async function listKeys(ctx: CliContext, accountId: string): Promise<void> {
  const client = await ctx.client();
  const result = await client.get<{ security_keys: SecurityKeyView[] }>(keysPath(accountId));
  ctx.output.result(result, () => {
    if (result.security_keys.length === 0) ctx.output.line(`No security keys enrolled on ${accountId}.`);
    for (const k of result.security_keys)
      ctx.output.line(
        `${k.custodian}: ${k.credential_id} (enrolled ${k.created_at}${k.backed_up ? ', synced passkey' : ''})`,
      );
  });
}

export async function revokeKey(ctx: CliContext, accountId: string, credentialId: string): Promise<void> {
  const client = await ctx.client();
  const revoked = await client.post<SecurityKeyView>(
    `${keysPath(accountId)}/${encodeURIComponent(credentialId)}/revoke`,
  );
  ctx.output.result(revoked, () =>
    ctx.output.line(`Revoked security key ${revoked.credential_id} of ${revoked.custodian} on ${accountId}.`),
  );
}

// ------------------------------------------------------------ drill

export interface DrillOptions {
  readonly custodian: string;
  readonly confirmer: string;
  readonly initiatorFile: string;
  readonly confirmerFile: string;
  readonly out?: string;
  readonly roles?: string;
}

interface Check {
  name: string;
  passed: boolean;
  detail: string;
}

/** A client for the emergency login that sends its password only as its URL allows (guarded-client.ts). */
async function emergencyLoginClient(connectionString: string) {
  const { GuardedClient } = await import('../../postgres/guarded-client.js');
  const client = new GuardedClient({
    connectionString,
    urlSource: 'the emergency login',
    connectionTimeoutMillis: 5000,
  });
  client.on('error', () => {});
  return client;
}

async function probePostgres(connectionString: string, outOfScope: readonly string[]): Promise<Check[]> {
  const client = await emergencyLoginClient(connectionString);
  const checks: Check[] = [];
  try {
    await client.connect();
    await client.query('select 1');
    checks.push({ name: 'in-scope login works', passed: true, detail: 'connected and ran select 1' });
    for (const role of outOfScope) {
      const member = await client
        .query('select pg_has_role(current_user, $1, $2) as m', [role, 'member'])
        .then(
          (r) => r.rows[0]?.m === true,
          () => false,
        );
      const setRole = await client.query(`set role "${role.replace(/"/g, '""')}"`).then(
        () => 'allowed',
        (e: { code?: string }) => e.code ?? 'error',
      );
      checks.push({
        name: `out-of-scope role ${role} refused`,
        passed: !member && setRole !== 'allowed',
        detail: `member=${member}, set role → ${setRole}`,
      });
    }
  } catch (error) {
    checks.push({ name: 'in-scope login works', passed: false, detail: (error as Error).message });
  } finally {
    await client.end().catch(() => {});
  }
  return checks;
}

async function postgresLoginRefused(connectionString: string): Promise<Check> {
  const client = await emergencyLoginClient(connectionString);
  try {
    await client.connect();
    return { name: 'login refused after the end', passed: false, detail: 'the login still works' };
  } catch (error) {
    // Only the server turning the login away proves the access ended; an unreachable server does not.
    const code = (error as { code?: string }).code;
    const refusedByServer = code === '28P01' || code === '28000';
    return {
      name: 'login refused after the end',
      passed: refusedByServer,
      detail: refusedByServer
        ? `the server refused the login (SQLSTATE ${code})`
        : `could not tell: ${(error as Error).message}`,
    };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Walks the whole path in drill mode: real quorum (two custodians' credentials), real
 * provisioning with a drill-short expiry, then checks that permissions outside the scope are
 * refused, that access ended on time, and (server side) that every step was audited. Writes a JSON
 * and a Markdown report and records the drill. Exit 10 when any check failed.
 */
export async function drill(ctx: CliContext, accountId: string, options: DrillOptions): Promise<number> {
  const lines = (path: string) =>
    readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim());
  const [initPass = '', initTotp = '', ...initShares] = lines(options.initiatorFile);
  const [confPass = '', confTotp = ''] = lines(options.confirmerFile);
  const started = ctx.io.now();
  const { activation, serverUrl } = await startActivation(
    ctx,
    accountId,
    {
      custodian: options.custodian,
      reason: `drill of ${accountId}`,
      incident: `DRILL-${new Date(started).toISOString().slice(0, 10)}`,
      for: '1',
      drill: true,
      ...(options.roles ? { roles: options.roles } : {}),
    },
    { passphrase: initPass, totp: initTotp, shares: initShares.filter((s) => s !== '') },
  );
  ctx.output.note(`Drill activation ${activation.id} initiated by ${options.custodian}`);
  const confirmed = await clientFor(ctx, serverUrl).post<ActivationView>(
    `/api/v1/break-glass/activations/${activation.id}/confirm`,
    { custodian: options.confirmer, passphrase: confPass, totp: confTotp },
  );
  if (confirmed.state !== 'active')
    throw new CliError(
      'drill_failed',
      `The drill did not become active (${confirmed.state})`,
      exitCodes.conflict,
    );
  const viaHandle = handleClient(ctx, activation.id);
  const access = await viaHandle.post<{ grants: GrantAccess[] }>(
    `/api/v1/break-glass/activations/${activation.id}/credentials`,
  );
  const checks: Check[] = [];
  for (const g of access.grants) {
    if (g.credentials?.connection_string) {
      checks.push(...(await probePostgres(g.credentials.connection_string, g.out_of_scope ?? [])));
    } else if (g.token) {
      const live = await clientFor(ctx, serverUrl).post<{ active: boolean; scope?: string }>(
        '/api/v1/introspect',
        { token: g.token },
      );
      const scopes = (live.scope ?? '').split(' ');
      checks.push({
        name: 'token active during the drill',
        passed: live.active,
        detail: `active=${live.active}`,
      });
      checks.push({
        name: 'token carries no out-of-scope grant',
        passed: (g.out_of_scope ?? []).every((s) => !scopes.includes(s)),
        detail: `scope "${live.scope ?? ''}", out of scope ${(g.out_of_scope ?? []).join(', ') || '(none)'}`,
      });
    }
  }
  // Wait for the hard expiry, then for the server to end the activation.
  const expiresAt = Date.parse(confirmed.expires_at ?? '');
  await sleep(Math.max(0, expiresAt - Date.now()) + 500);
  let current = confirmed;
  for (let i = 0; i < 60 && current.state === 'active'; i++) {
    await sleep(500);
    current = await viaHandle.get<ActivationView>(`/api/v1/break-glass/activations/${activation.id}`);
  }
  checks.push({ name: 'activation ended', passed: current.state === 'ended', detail: current.state });
  for (const g of access.grants) {
    if (g.credentials?.connection_string)
      checks.push(await postgresLoginRefused(g.credentials.connection_string));
    else if (g.token) {
      const after = await clientFor(ctx, serverUrl).post<{ active: boolean }>('/api/v1/introspect', {
        token: g.token,
      });
      checks.push({
        name: 'token inactive after the end',
        passed: !after.active,
        detail: `active=${after.active}`,
      });
    }
  }
  const recorded = await viaHandle.post<{
    drill_id: string;
    passed: boolean;
    report: Record<string, unknown>;
  }>(`/api/v1/break-glass/activations/${activation.id}/drill-report`, { checks });
  const dir = resolve(options.out ?? '.');
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `drill-${accountId}-${activation.id}.json`);
  const md = join(dir, `drill-${accountId}-${activation.id}.md`);
  writeFileSync(json, `${JSON.stringify(recorded.report, null, 2)}\n`);
  const all = (recorded.report.checks as (Check & { by: string })[]) ?? [];
  writeFileSync(
    md,
    [
      `# Break-glass drill of ${accountId}: ${recorded.passed ? 'PASSED' : 'FAILED'}`,
      '',
      `- Activation: ${activation.id}`,
      `- Initiator: ${options.custodian}; confirmer: ${options.confirmer}`,
      `- Recorded: ${String(recorded.report.recordedAt)}`,
      '',
      '| check | by | result | detail |',
      '| --- | --- | --- | --- |',
      ...all.map(
        (c) =>
          `| ${c.name} | ${c.by} | ${c.passed ? 'pass' : '**FAIL**'} | ${c.detail.replace(/\|/g, '\\|')} |`,
      ),
      '',
    ].join('\n'),
  );
  ctx.output.result(
    { passed: recorded.passed, drill_id: recorded.drill_id, activation: activation.id, json, markdown: md },
    () => {
      ctx.output.line(
        `Drill of ${accountId} ${recorded.passed ? 'PASSED' : 'FAILED'}; report: ${json}, ${md}`,
      );
      for (const c of all.filter((x) => !x.passed)) ctx.output.line(`  failed: ${c.name} (${c.detail})`);
    },
  );
  return recorded.passed ? exitCodes.ok : exitCodes.verificationFailed;
}
