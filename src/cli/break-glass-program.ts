/** The `portcullis break-glass` command group (see commands/break-glass-commands.ts and docs/cli.md). */
import { type Command, Option } from 'commander';
import * as bg from './commands/break-glass-commands.js';
import type { CliContext } from './context.js';

type Run = <A extends unknown[]>(
  handler: (ctx: CliContext, ...args: A) => Promise<number | undefined | void>,
) => (...args: unknown[]) => Promise<void>;

const example = (...lines: string[]) =>
  `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;

const secretOptions = (command: Command) =>
  command
    .option(
      '--passphrase-file <file>',
      'passphrase in a file (else PORTCULLIS_BG_PASSPHRASE, else the first stdin line)',
    )
    .option('--totp-file <file>', 'TOTP code in a file (else PORTCULLIS_BG_TOTP, else the next stdin line)');

export function registerBreakGlassCommands(
  program: Command,
  run: Run,
  configFile: (ctx: CliContext, flag: string | undefined) => string,
): void {
  const group = program
    .command('break-glass')
    .description('emergency access without the identity provider: custodians, quorum, drills');
  const config = () =>
    new Option('--config <file>', 'configuration file, on the server host (env: PORTCULLIS_CONFIG)');

  group
    .command('enroll')
    .description(
      'enrol a custodian (on the server host): passphrase from stdin/env/file, prints the TOTP URI once',
    )
    .argument('<account>', 'emergency account id')
    .requiredOption('--custodian <id>', 'custodian id from the configuration')
    .option('--passphrase-file <file>', 'passphrase in a file (else PORTCULLIS_BG_PASSPHRASE, else stdin)')
    .addOption(config())
    .addHelpText(
      'after',
      example('portcullis break-glass enroll prod-db-emergency --custodian alice < passphrase.txt'),
    )
    .action(
      run((ctx, account: string, o: { custodian: string; passphraseFile?: string; config?: string }) =>
        bg.enroll(ctx, account, { ...o, config: configFile(ctx, o.config) }),
      ),
    );

  group
    .command('seal')
    .description('seal a sealed-mode account (on the server host): prints n shares once')
    .argument('<account>', 'emergency account id')
    .option('--shares <n>', 'shares to print (default: from the configuration)')
    .option('--threshold <k>', 'shares needed (default: from the configuration)')
    .addOption(config())
    .action(
      run((ctx, account: string, o: { shares?: string; threshold?: string; config?: string }) =>
        bg.seal(ctx, account, { ...o, config: configFile(ctx, o.config) }),
      ),
    );

  group
    .command('rotate')
    .description('after use: new TOTP secrets for every custodian (and new shares); clears the rotation owed')
    .argument('<account>', 'emergency account id')
    .addOption(config())
    .action(
      run((ctx, account: string, o: { config?: string }) =>
        bg.rotate(ctx, account, { config: configFile(ctx, o.config) }),
      ),
    );

  group
    .command('report')
    .description(
      'write the evidence of an activation (timeline, grants, audit events, review) as JSON and Markdown',
    )
    .argument('<activation>', 'activation id')
    .option('--out <dir>', 'directory for the two files', '.')
    .addOption(config())
    .action(
      run((ctx, id: string, o: { out?: string; config?: string }) =>
        bg.report(ctx, id, { ...o, config: configFile(ctx, o.config) }),
      ),
    );

  group
    .command('accounts')
    .description('emergency accounts with enrolment, drills (overdue flagged, exit 10) and what is owed')
    .addOption(config())
    .action(run((ctx, o: { config?: string }) => bg.accounts(ctx, { config: configFile(ctx, o.config) })));

  secretOptions(
    group
      .command('activate')
      .description('initiate an activation as a custodian (no SSO); saves your handle')
      .argument('<account>', 'emergency account id')
      .requiredOption('--custodian <id>', 'your custodian id')
      .requiredOption('--reason <text>', 'why (in every alert and the audit log)')
      .requiredOption('--incident <ref>', 'incident reference')
      .requiredOption('--for <minutes>', 'duration in minutes (at most the account maximum)')
      .option('--roles <roles>', 'comma-separated roles (default: the whole scope)')
      .option('--shares-file <file>', 'recovery shares, one per line (sealed accounts)'),
  )
    .addHelpText(
      'after',
      example(
        'printf "%s\\n%s\\n" "$PASS" 123456 | portcullis break-glass activate prod-db-emergency --custodian alice --reason "db down" --incident INC-1 --for 30',
      ),
    )
    .action(run((ctx, account: string, o: bg.ActivateOptions) => bg.activate(ctx, account, o)));

  secretOptions(
    group
      .command('confirm')
      .description("confirm another custodian's activation with your own credentials")
      .argument('<activation>', 'activation id')
      .requiredOption('--custodian <id>', 'your custodian id'),
  ).action(run((ctx, id: string, o: bg.SecretOptions & { custodian: string }) => bg.confirm(ctx, id, o)));

  group
    .command('status')
    .description('state of your activation (initiator handle); without one, the accounts (like `accounts`)')
    .argument('[activation]', 'activation id')
    .addOption(config())
    .action(
      run((ctx, id: string | undefined, o: { config?: string }) =>
        id ? bg.status(ctx, id) : bg.accounts(ctx, { config: configFile(ctx, o.config) }),
      ),
    );

  group
    .command('credentials')
    .description('the emergency credentials (initiator handle; audited)')
    .argument('<activation>', 'activation id')
    .action(run((ctx, id: string) => bg.credentials(ctx, id)));

  group
    .command('end')
    .description('end your emergency access now (initiator handle)')
    .argument('<activation>', 'activation id')
    .action(run((ctx, id: string) => bg.end(ctx, id)));

  secretOptions(
    group
      .command('cancel')
      .description(
        'cancel before the quorum (your handle, or --custodian with credentials); once active, ends it',
      )
      .argument('<activation>', 'activation id')
      .option('--custodian <id>', 'cancel as this custodian (credentials from stdin/env/files)'),
  ).action(run((ctx, id: string, o: bg.SecretOptions & { custodian?: string }) => bg.cancel(ctx, id, o)));

  group
    .command('review')
    .description('record the review of an ended activation (signed-in; not a participant)')
    .argument('<activation>', 'activation id')
    .requiredOption('--notes <text>', 'what was checked and concluded')
    .action(run((ctx, id: string, o: { notes: string }) => bg.review(ctx, id, o)));

  const keys = group
    .command('keys')
    .description("list and revoke custodians' security keys (signed-in admin)");
  keys
    .command('list')
    .description('the security keys enrolled for an account, per custodian')
    .argument('<account>', 'emergency account id')
    .action(run((ctx, account: string) => bg.listKeys(ctx, account)));
  keys
    .command('revoke')
    .description('revoke one security key (audited and alerted); the custodian enrols again if needed')
    .argument('<account>', 'emergency account id')
    .argument('<credential>', 'credential id, as `keys list` shows it')
    .addHelpText('after', example('portcullis break-glass keys revoke prod-db-emergency q2v3…'))
    .action(run((ctx, account: string, credential: string) => bg.revokeKey(ctx, account, credential)));

  group
    .command('drill')
    .description('walk the whole path in drill mode, check scope and expiry, write and record a report')
    .argument('<account>', 'emergency account id')
    .requiredOption('--custodian <id>', 'initiating custodian')
    .requiredOption('--confirmer <id>', 'confirming custodian')
    .requiredOption('--initiator-file <file>', "initiator's passphrase, TOTP code (and shares), one per line")
    .requiredOption('--confirmer-file <file>', "confirmer's passphrase and TOTP code, one per line")
    .option('--roles <roles>', 'comma-separated roles (default: the whole scope)')
    .option('--out <dir>', 'directory for the report', '.')
    .action(run((ctx, account: string, o: bg.DrillOptions) => bg.drill(ctx, account, o)));
}
