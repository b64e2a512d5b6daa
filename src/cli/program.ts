/**
 * The `portcullis` command line: every command and flag, and how errors become exit codes.
 * `runCli` is the whole program; main.ts only hands it the real process.
 */
import { Command, CommanderError, Option } from 'commander';
import { type ReportCsvSection, reportCsvSections } from '../audit/report-csv.js';
import { PortcullisError } from '../core/errors.js';
import { exitCodeForStatus } from './api-client.js';
import { registerBreakGlassCommands } from './break-glass-program.js';
import { CliError, exitCodeHelp, exitCodes } from './cli-error.js';
import { exportAuditLog, verifyAuditLog } from './commands/audit-commands.js';
import { reportAuditLog } from './commands/audit-report-command.js';
import { login, logout, whoami } from './commands/auth-commands.js';
import { endGatewaySession, listGatewaySessions } from './commands/gateway-commands.js';
import { issueToken, listGrants, revokeGrant, showCredentials } from './commands/grant-commands.js';
import { testIdentityProvider } from './commands/idp-commands.js';
import { emergencyRotate, initRecoveryKey, rotateKeys } from './commands/keys-commands.js';
import { testPolicies } from './commands/policy-commands.js';
import {
  listPrincipals,
  lockPrincipal,
  showPrincipal,
  unlockPrincipal,
} from './commands/principal-commands.js';
import { proxyGrant } from './commands/proxy-commands.js';
import { exportPublicKeys, verifyToken } from './commands/public-key-commands.js';
import { reconcile } from './commands/reconcile-commands.js';
import {
  cancelRequest,
  createRequest,
  listRequests,
  reviewRequest,
  showRequest,
} from './commands/request-commands.js';
import { dev, serve } from './commands/server-commands.js';
import { runSshGuard, type SshGuardOptions } from './commands/ssh-guard-command.js';
import { CliContext, type CliIo, cliVersion, type GlobalOptions } from './context.js';
import { Output } from './output.js';

const environmentHelp = `Environment:
  PORTCULLIS_SERVER    server URL (like --server)
  PORTCULLIS_PROFILE   saved session to use (like --profile; default "default")
  PORTCULLIS_HOME      where sessions are saved (default ~/.config/portcullis; files 0600)
  PORTCULLIS_CONFIG    configuration file for serve, policy test, idp test, keys rotate
  PORTCULLIS_PASSWORD  password for \`login --username\` (demo identity provider only)`;

const example = (...lines: string[]) =>
  `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;

/** Turns anything thrown by a command into a CliError with the right exit code. */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof PortcullisError) {
    const exitCode =
      error.code === 'config_invalid' || error.code === 'validation_failed'
        ? exitCodes.usage
        : exitCodeForStatus(error.status, error.code);
    return new CliError(error.code, error.message, exitCode, { details: { ...error.details }, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CliError('unexpected', message, exitCodes.unexpected, { cause: error });
}

const configOption = () =>
  new Option('--config <file>', 'configuration file (env: PORTCULLIS_CONFIG; default: portcullis.yaml)');

/** Empty environment variables count as unset. */
const fromEnv = (io: CliIo, name: string): string | undefined => io.env[name] || undefined;

/**
 * The global options with their environment fallbacks. Resolved here from `io.env` rather than by
 * commander (which reads process.env), so that the whole CLI runs against an injected environment.
 */
function globalOptions(
  io: CliIo,
  parsed: { json?: boolean; server?: string; profile?: string },
): GlobalOptions {
  const server = parsed.server ?? fromEnv(io, 'PORTCULLIS_SERVER');
  return {
    json: parsed.json === true,
    ...(server === undefined ? {} : { server }),
    profile: parsed.profile ?? fromEnv(io, 'PORTCULLIS_PROFILE') ?? 'default',
  };
}

/** `--config`, else PORTCULLIS_CONFIG, else portcullis.yaml. */
const configFile = (ctx: CliContext, flag: string | undefined): string =>
  flag ?? fromEnv(ctx.io, 'PORTCULLIS_CONFIG') ?? 'portcullis.yaml';

/** Builds the program; `setExitCode` receives a command's own exit code (audit verify, request --wait…). */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('portcullis');
  program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage)')
    .description('Just-in-time access: ask for access, approve it, use it, and lose it on time.')
    .version(cliVersion, '-V, --version')
    .option('--json', 'machine-readable JSON output')
    .option('--server <url>', "Portcullis server URL (env: PORTCULLIS_SERVER; default: the saved session's)")
    .option(
      '--profile <name>',
      'saved session to use, one per person or server (env: PORTCULLIS_PROFILE; default: "default")',
    )
    .addHelpText('after', `\n${environmentHelp}\n\n${exitCodeHelp}\n\nDocumentation: docs/cli.md`);

  /** Wraps a command handler: builds its context, records a returned exit code. */
  const run =
    <A extends unknown[]>(handler: (ctx: CliContext, ...args: A) => Promise<number | undefined | void>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const ctx = new CliContext(io, globalOptions(io, command.optsWithGlobals()));
      const code = await handler(ctx, ...(args.slice(0, -1) as A));
      if (typeof code === 'number') setExitCode(code);
    };

  // ------------------------------------------------------------------ server
  program
    .command('serve')
    .description('run the Portcullis server from a configuration file')
    .addOption(configOption())
    .addHelpText('after', example('portcullis serve --config /etc/portcullis/portcullis.yaml'))
    .action(
      run((ctx, options: { config?: string }) => serve(ctx, { config: configFile(ctx, options.config) })),
    );

  program
    .command('dev')
    .description('run the demo: SQLite, a built-in identity provider and demo users (not for production)')
    .option('--port <n>', 'port of the server (the demo identity provider takes the next one)', '8080')
    .addHelpText('after', example('portcullis dev --port 8080'))
    .action(run((ctx, options: { port?: string }) => dev(ctx, options)));

  // ------------------------------------------------------------------ sessions
  program
    .command('login')
    .description(
      'sign in through your identity provider (browser, loopback redirect + PKCE) and save the session',
    )
    .option('--idp <id>', 'identity provider (default: the only one the server offers)')
    .option('--username <name>', 'scripted login, built-in demo identity provider only')
    .option('--password-stdin', 'read the --username password from stdin (or set PORTCULLIS_PASSWORD)')
    .option('--no-browser', 'print the sign-in URL without opening a browser')
    .option(
      '--device',
      'sign in on another device with a code (OAuth device flow, RFC 8628); no local browser needed',
    )
    .option('--print-token', 'print the session token on stdout (for tools that need a bearer token)')
    .addHelpText(
      'after',
      example(
        'portcullis login --server https://access.example.com',
        'portcullis login --device   # on a server or over SSH: enter the code on your phone or laptop',
        'echo alice-demo-password | portcullis login --profile alice --username alice --password-stdin',
      ),
    )
    .action(
      run(
        (
          ctx,
          options: {
            idp?: string;
            username?: string;
            passwordStdin?: boolean;
            browser: boolean;
            printToken?: boolean;
            device?: boolean;
          },
        ) => login(ctx, options),
      ),
    );

  program
    .command('logout')
    .description("forget the profile's saved session")
    .addHelpText('after', example('portcullis logout --profile bob'))
    .action(run((ctx) => logout(ctx)));

  program
    .command('whoami')
    .description('who the server says you are, your groups, and when the session expires')
    .addHelpText('after', example('portcullis whoami --json'))
    .action(run((ctx) => whoami(ctx)));

  // ------------------------------------------------------------------ requests
  program
    .command('request')
    .description('ask for ROLE on RESOURCE for a while')
    .argument('<resource>', 'resource id, e.g. prod-db')
    .argument('<role>', 'role on the resource, e.g. readonly')
    .requiredOption('--for <duration>', 'how long, e.g. 30m, 2h')
    .option('--reason <text>', 'why (shown to approvers and audited)')
    .option('--ticket <ref>', 'ticket reference, e.g. OPS-1234')
    .option('--wait', 'wait until the access is active, denied or failed (exit 0, 4 or 7)')
    .option('--timeout <duration>', 'give up waiting after this long (exit 6)', '1h')
    .addHelpText(
      'after',
      example(
        'portcullis request prod-db migrate --for 45m --reason "migration 42" --ticket OPS-1234 --wait',
      ),
    )
    .action(
      run((ctx, resource: string, role: string, options: Parameters<typeof createRequest>[3]) =>
        createRequest(ctx, resource, role, options),
      ),
    );

  program
    .command('requests')
    .description('list your requests, those you may review, or all you may see')
    .option('--reviewable', 'requests waiting for your review')
    .option('--all', 'every request you may see')
    .option(
      '--state <states>',
      'comma-separated: pending,approved,active,expired,revoked,denied,cancelled,failed',
    )
    .option('--limit <n>', 'at most this many (1–500, default 100)')
    .option('--cursor <cursor>', 'continue where the previous listing said "More requests"')
    .addHelpText(
      'after',
      example('portcullis requests --reviewable', 'portcullis requests --all --state pending,active'),
    )
    .action(run((ctx, options: Parameters<typeof listRequests>[1]) => listRequests(ctx, options)));

  program
    .command('show')
    .description('everything about one request: state, approvals, reviews, grant')
    .argument('<request>', 'request id')
    .addHelpText('after', example('portcullis show 0b5e…'))
    .action(run((ctx, id: string) => showRequest(ctx, id)));

  program
    .command('approve')
    .description('approve a pending request (never your own)')
    .argument('<request>', 'request id')
    .option('--reason <text>', 'note for the audit log')
    .addHelpText('after', example('portcullis approve 0b5e… --reason "matches OPS-1234"'))
    .action(
      run((ctx, id: string, options: { reason?: string }) =>
        reviewRequest(ctx, 'approve', id, options.reason),
      ),
    );

  program
    .command('deny')
    .description('deny a pending request')
    .argument('<request>', 'request id')
    .requiredOption('--reason <text>', 'why (shown to the requester)')
    .addHelpText('after', example('portcullis deny 0b5e… --reason "use the read replica"'))
    .action(
      run((ctx, id: string, options: { reason: string }) => reviewRequest(ctx, 'deny', id, options.reason)),
    );

  program
    .command('cancel')
    .description('withdraw your own pending or approved request')
    .argument('<request>', 'request id')
    .addHelpText('after', example('portcullis cancel 0b5e…'))
    .action(run((ctx, id: string) => cancelRequest(ctx, id)));

  // ------------------------------------------------------------------ grants
  program
    .command('grants')
    .description('list your grants, or all you may see')
    .option('--all', 'every grant you may see (resource owners, admins)')
    .option(
      '--status <statuses>',
      'comma-separated: applying,active,revoking,revoked,revoke_failed,apply_failed',
    )
    .addHelpText('after', example('portcullis grants --status active'))
    .action(run((ctx, options: { all?: boolean; status?: string }) => listGrants(ctx, options)));

  program
    .command('revoke')
    .description('end a grant now (owners, admins), or release your own early')
    .argument('<grant>', 'grant id')
    .option('--reason <text>', 'why (audited)')
    .addHelpText('after', example('portcullis revoke 7c1d… --reason "done early"'))
    .action(run((ctx, id: string, options: { reason?: string }) => revokeGrant(ctx, id, options.reason)));

  program
    .command('creds')
    .description('your credentials for a live grant: the connection string (all fields with --json)')
    .argument('<grant>', 'grant id')
    .option('--ssh-key <file>', 'SSH grants: write the key to FILE and its certificate to FILE-cert.pub')
    .option(
      '--ssh-public-key <file>',
      'SSH grants: certify your own key instead (KEY.pub; the certificate goes to KEY-cert.pub)',
    )
    .option('--force', 'replace a key or certificate file Portcullis did not write')
    .addHelpText(
      'after',
      example(
        'psql "$(portcullis creds 7c1d…)"',
        '$(portcullis creds 9a2e… --ssh-key ~/.ssh/portcullis) uptime',
        'portcullis creds 9a2e… --ssh-public-key ~/.ssh/id_ed25519.pub',
      ),
    )
    .action(
      run((ctx, id: string, options: { sshKey?: string; sshPublicKey?: string; force?: boolean }) =>
        showCredentials(ctx, id, options),
      ),
    );

  const gateway = program
    .command('gateway')
    .description('open database-gateway sessions: list them, end one (its grant stays)');
  gateway
    .command('sessions')
    .description('open gateway sessions: yours, or with --all every one you may see (owners, admins)')
    .option('--all', 'every session you may see')
    .addHelpText('after', example('portcullis gateway sessions --all'))
    .action(run((ctx, options: { all?: boolean }) => listGatewaySessions(ctx, options)));
  gateway
    .command('end')
    .description('end one gateway session now (the client reads the reason); its grant stays active')
    .argument('<session>', 'session id (from `gateway sessions`)')
    .option('--reason <text>', 'why (audited, and shown to the client)')
    .addHelpText('after', example('portcullis gateway end 5b0e… --reason "runaway query"'))
    .action(
      run((ctx, id: string, options: { reason?: string }) => endGatewaySession(ctx, id, options.reason)),
    );

  const principals = program
    .command('principals')
    .description('administrators: lock a person out at once (incident, offboarding), unlock, list');
  principals
    .command('list')
    .description('locked principals, or with --disabled those their identity provider deactivated (SCIM)')
    .option('--disabled', 'deactivated through SCIM instead of locked')
    .addHelpText('after', example('portcullis principals list'))
    .action(run((ctx, options: { disabled?: boolean }) => listPrincipals(ctx, options)));
  principals
    .command('show')
    .description('one principal: groups, last sign-in, whether it is locked or deactivated')
    .argument('<principal>', 'principal id, idp:subject')
    .addHelpText('after', example('portcullis principals show okta:00u1abcd'))
    .action(run((ctx, id: string) => showPrincipal(ctx, id)));
  principals
    .command('lock')
    .description(
      'end all access of a principal now (grants revoked, requests cancelled, gateway sessions closed) and refuse its sessions and sign-ins until unlocked',
    )
    .argument('<principal>', 'principal id, idp:subject')
    .requiredOption('--reason <text>', 'why (audited; shown to administrators only)')
    .addHelpText(
      'after',
      example('portcullis principals lock okta:00u1abcd --reason "laptop stolen, INC-512"'),
    )
    .action(run((ctx, id: string, options: { reason: string }) => lockPrincipal(ctx, id, options.reason)));
  principals
    .command('unlock')
    .description('lift a lock; restores nothing (ended access stays ended)')
    .argument('<principal>', 'principal id, idp:subject')
    .requiredOption('--reason <text>', 'why (audited)')
    .addHelpText('after', example('portcullis principals unlock okta:00u1abcd --reason "laptop recovered"'))
    .action(run((ctx, id: string, options: { reason: string }) => unlockPrincipal(ctx, id, options.reason)));

  program
    .command('reconcile')
    .description(
      'administrators: compare every target with the grants now and take back access no grant accounts for; exit 10 on drift',
    )
    .addHelpText('after', example('portcullis reconcile --json'))
    .action(run((ctx) => reconcile(ctx)));

  program
    .command('proxy')
    .description(
      'a local PostgreSQL listener for a gateway-only grant: clients log in with a local password, the proxy logs in to the gateway with fresh tokens',
    )
    .argument('<grant>', 'grant id')
    .option('--port <port>', 'local port (default: a free one)')
    .option('--host <address>', 'local loopback address', '127.0.0.1')
    .option(
      '--ca <file>',
      "CA certificates (PEM) to check the gateway's TLS certificate with, instead of the system's",
    )
    .addHelpText(
      'after',
      `${example('portcullis proxy 7c1d… --port 5433', 'psql "postgres://7c1d…:<printed password>@127.0.0.1:5433/orders-db"')}

PORTCULLIS_PROXY_PASSWORD sets the local password (at least 16 characters); by default each run makes one.`,
    )
    .action(
      run((ctx, id: string, options: { host?: string; port?: string; ca?: string }) =>
        proxyGrant(ctx, id, options),
      ),
    );

  program
    .command('ssh-guard')
    .description(
      'on an SSH host, as root: end live sessions whose Portcullis certificate expired or was revoked, and keep the revocation list current',
    )
    .requiredOption('--resource <id>', 'the ssh resource whose hosts these are')
    .requiredOption(
      '--ca-keys <file>',
      "the authorities' public keys (the file sshd's TrustedUserCAKeys names)",
    )
    .requiredOption('--revoked-keys <file>', "where sshd's RevokedKeys reads the revocation list")
    .option(
      '--records <dir>',
      'where contrib/ssh/portcullis-ssh-session records sessions',
      '/run/portcullis-ssh-guard/sessions',
    )
    .requiredOption(
      '--record-user <name>',
      "sshd's AuthorizedPrincipalsCommandUser, owner of --records: an account of its own",
    )
    .option(
      '--login-records <dir>',
      "where sshd's PAM session hook (contrib/ssh/portcullis-ssh-login) records each login's audit session",
      '/run/portcullis-ssh-guard/logins',
    )
    .option(
      '--login-cgroups <dir>',
      'on hosts without pam_systemd: the cgroup v2 directory the session hook (its second argument) puts each login in, so a login is killed whole',
    )
    .option(
      '--pam-config <file>',
      "sshd's PAM stack, checked for the session hook's place (right after pam_loginuid.so)",
      '/etc/pam.d/sshd',
    )
    .option(
      '--connections-only',
      'for sshd without PAM: follow connections only, so what a login leaves running after it closes outlives the grant',
    )
    .option(
      '--report-token-file <file>',
      "report logins and their ends into Portcullis' audit log with this secret (the resource's session_report_tokens)",
    )
    .option('--host-name <name>', 'the name reports give this host (default: its host name)')
    .option('--sshd-config <file>', "sshd's configuration, checked with sshd -T", '/etc/ssh/sshd_config')
    .option('--refresh <duration>', 'how often the revocation list is fetched', '5s')
    .addHelpText(
      'after',
      example(
        'portcullis ssh-guard --server https://access.example.com --resource prod-hosts --ca-keys /etc/ssh/portcullis-ca.pub --revoked-keys /etc/ssh/portcullis.krl --record-user portcullis-ssh',
      ),
    )
    .action(run((ctx, options: SshGuardOptions) => runSshGuard(ctx, options)));

  const token = program
    .command('token')
    .description(
      'a signed access token for a live grant (`token GRANT`), or check one offline (`token verify`)',
    );
  token
    .command('issue', { isDefault: true })
    .description(
      'a signed access token for a live grant (expires no later than the grant); `token GRANT` for short',
    )
    .argument('<grant>', 'grant id')
    .addHelpText(
      'after',
      example('curl -H "Authorization: Bearer $(portcullis token 7c1d…)" https://api.internal/orders'),
    )
    .action(run((ctx, id: string) => issueToken(ctx, id)));
  token
    .command('verify')
    .description('check offline that a token is genuine and valid, with public keys alone (exit 10 when not)')
    .argument('<token>', 'the token, or - to read it from stdin (keeps it out of shell history)')
    .requiredOption('--keys <file>', 'token public keys: a file from `keys export`, the JWKS, or PEM')
    .option('--issuer <url>', 'expected issuer (default: the one named in the `keys export` file)')
    .option('--audience <aud>', 'expected base audience (tokens.audience)', 'portcullis')
    .option('--at <time>', 'judge nbf/exp at this past instant (ISO 8601) instead of now')
    .addHelpText(
      'after',
      example(
        'portcullis keys export --server https://access.example.com --output portcullis-keys.json',
        'portcullis token verify - --keys portcullis-keys.json < token.txt',
      ),
    )
    .action(
      run((ctx, value: string, options: { keys: string; issuer?: string; audience?: string; at?: string }) =>
        verifyToken(ctx, value, options),
      ),
    );

  // ------------------------------------------------------------------ policy
  const policy = program.command('policy').description('work with the policy set');
  policy
    .command('test')
    .description('run a table of cases against the policy set, offline (exit 10 on any mismatch)')
    .argument('<cases>', 'cases file (YAML)')
    .addOption(configOption())
    .addHelpText('after', example('portcullis policy test policies/cases.yaml --config portcullis.yaml'))
    .action(
      run((ctx, file: string, options: { config?: string }) =>
        testPolicies(ctx, file, { config: configFile(ctx, options.config) }),
      ),
    );

  // ------------------------------------------------------------------ idp
  program
    .command('idp')
    .description('work with the identity providers of the configuration')
    .command('test')
    .description('show what these claims/attributes map to: groups, allowed or denied and why (offline)')
    .argument('<idp>', 'identity provider id')
    .requiredOption('--claims <file>', 'claims (OIDC) or attributes (SAML) as JSON or YAML')
    .addOption(configOption())
    .addHelpText(
      'after',
      example('portcullis idp test okta --claims alice-claims.json --config portcullis.yaml'),
    )
    .action(
      run((ctx, idp: string, options: { claims: string; config?: string }) =>
        testIdentityProvider(ctx, idp, { claims: options.claims, config: configFile(ctx, options.config) }),
      ),
    );

  // ------------------------------------------------------------------ audit
  const audit = program.command('audit').description('export and verify the tamper-evident audit log');
  audit
    .command('export')
    .description('download the audit log as JSON Lines with its signed checkpoints')
    .option('--output <file>', 'write to this file (mode 0600) instead of stdout')
    .addHelpText('after', example('portcullis audit export --output audit.jsonl'))
    .action(run((ctx, options: { output?: string }) => exportAuditLog(ctx, options)));
  audit
    .command('verify')
    .description('check an export offline with the audit public key (exit 10 when tampered)')
    .argument('<file>', 'audit export (JSON Lines)')
    .requiredOption('--key <file>', 'audit public key(s): JWK, JWK Set or PEM')
    .addHelpText(
      'after',
      example(
        'curl -s https://access.example.com/.well-known/portcullis-audit-keys.json > audit-keys.json',
        'portcullis audit verify audit.jsonl --key audit-keys.json',
      ),
    )
    .action(run((ctx, file: string, options: { key: string }) => verifyAuditLog(ctx, file, options)));
  audit
    .command('report')
    .description(
      'who held which access when, who approved it, break-glass uses and reviews, drills and standing privileges found, from a verified export',
    )
    .argument('<file>', 'audit export (JSON Lines); verified first (exit 10 when tampered)')
    .requiredOption('--key <file>', 'audit public key(s): JWK, JWK Set or PEM')
    .option(
      '--from <date>',
      'start of the period: 2026-10-01 (UTC) or an ISO 8601 time (default: the beginning)',
    )
    .option('--to <date>', 'end of the period, exclusive (default: now)')
    .addOption(
      new Option(
        '--csv <section>',
        'print one section as CSV (for a spreadsheet) instead of the report',
      ).choices(reportCsvSections),
    )
    .addHelpText(
      'after',
      example(
        'portcullis audit report audit.jsonl --key audit-keys.json --from 2026-10-01 --to 2026-11-01',
        'portcullis audit report audit.jsonl --key audit-keys.json --csv access > access-2026-10.csv',
      ),
    )
    .action(
      run((ctx, file: string, options: { key: string; from?: string; to?: string; csv?: ReportCsvSection }) =>
        reportAuditLog(ctx, file, options),
      ),
    );

  // ------------------------------------------------------------------ keys
  const keys = program.command('keys').description('manage signing keys');
  keys
    .command('rotate')
    .description('create a new signing key; the old one stays published for the rotation overlap')
    .addOption(configOption())
    .addOption(new Option('--purpose <purpose>', 'which key').choices(['token', 'audit']).default('token'))
    .addHelpText('after', example('portcullis keys rotate --config portcullis.yaml --purpose token'))
    .action(
      run((ctx, options: { config?: string; purpose: string }) =>
        rotateKeys(ctx, { purpose: options.purpose, config: configFile(ctx, options.config) }),
      ),
    );
  keys
    .command('recovery')
    .description('the offline recovery key that authorises an emergency rotation')
    .command('init')
    .description(
      'create the recovery key pair: the private key once, for a safe; the database keeps the public key',
    )
    .addOption(configOption())
    .requiredOption(
      '--out <file>',
      'where to write the private key (mode 0600, never overwritten), or - for stdout',
    )
    .option('--replace', 'replace the registered recovery key (the old one stops working)')
    .addHelpText(
      'after',
      example('portcullis keys recovery init --config portcullis.yaml --out /media/usb/recovery.pem'),
    )
    .action(
      run((ctx, options: { config?: string; out: string; replace?: boolean }) =>
        initRecoveryKey(ctx, { ...options, config: configFile(ctx, options.config) }),
      ),
    );
  keys
    .command('export')
    .description('download the public keys (token and audit) into one file for offline verification')
    .option('--output <file>', 'write to this file (never overwritten) instead of stdout')
    .option('--issuer <url>', 'issuer to record, if the public URL differs from --server')
    .addHelpText(
      'after',
      example('portcullis keys export --server https://access.example.com --output portcullis-keys.json'),
    )
    .action(run((ctx, options: { output?: string; issuer?: string }) => exportPublicKeys(ctx, options)));
  keys
    .command('emergency-rotate')
    .description(
      'token key lost or compromised: retire every token key at once, authorised by the recovery key',
    )
    .addOption(configOption())
    .requiredOption('--recovery-key <file>', 'the offline recovery private key (PEM)')
    .requiredOption('--reason <text>', 'why (audited, and signed in the rotation statement)')
    .addHelpText(
      'after',
      example(
        'portcullis keys emergency-rotate --config portcullis.yaml --recovery-key /media/usb/recovery.pem --reason "INC-7: key leaked"',
      ),
    )
    .action(
      run((ctx, options: { config?: string; recoveryKey: string; reason: string }) =>
        emergencyRotate(ctx, { ...options, config: configFile(ctx, options.config) }),
      ),
    );

  registerBreakGlassCommands(program, run, configFile);
  return program;
}

/**
 * Runs the CLI with `argv` (as in process.argv: node, script, then arguments) and returns the
 * exit code. Never throws.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message already.
      if (['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code))
        return exitCodes.ok;
      return exitCodes.usage;
    }
    const failure = toCliError(error);
    const json = (program.opts() as { json?: boolean }).json === true;
    new Output(json, io.stdout, io.stderr).error(failure);
    if (failure.exitCode === exitCodes.unexpected && io.env.PORTCULLIS_DEBUG) {
      io.stderr.write(`${(failure.cause as Error | undefined)?.stack ?? failure.stack ?? ''}\n`);
    }
    return failure.exitCode;
  }
}
