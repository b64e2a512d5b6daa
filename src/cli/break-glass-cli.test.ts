/**
 * The real `portcullis break-glass` commands against a real server, a real PostgreSQL target and
 * SQLite storage: enrolment on the host, activation/confirmation/credentials/end over HTTP with
 * custodian credentials read from stdin, review with an SSO session, the evidence report,
 * rotation, and a drill that proves scope, expiry and audit — with the documented exit codes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  demoDbEmergencyAccount,
  secretOfUri,
  TestCustodian,
  webhookChannelConfig,
} from '../../test-support/break-glass-fixtures.js';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason, sharedPostgresAdminUrl } from '../../test-support/postgres.js';
import { SoftAuthenticator } from '../../test-support/soft-authenticator.js';
import { systemClock } from '../core/clock.js';

const account = 'db-emergency';
/** Each CLI call starts a process first: its TOTP code must not expire meanwhile on a busy machine. */
const cliStartMarginMs = 15_000;

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('portcullis break-glass end to end', async () => {
  const skip = await postgresSkipReason();
  let h: Harness;
  let home: string;

  function cli(args: string[], input = ''): Promise<Result> {
    return runCliProcess(
      args,
      { ...h.env, PORTCULLIS_HOME: home, PORTCULLIS_SERVER: h.url, PORTCULLIS_CONFIG: h.configPath },
      input,
    );
  }
  const json = (r: Result) => JSON.parse(r.stdout) as Record<string, unknown>;

  before(async () => {
    if (skip) return;
    home = mkdtempSync(join(tmpdir(), 'portcullis-bg-cli-'));
    h = await startHarness({
      storage: 'sqlite',
      targetAdminUrl: sharedPostgresAdminUrl,
      configOverrides: {
        break_glass: {
          accounts: [demoDbEmergencyAccount(account, ['alice', { id: 'bob', principal: 'demo:bob' }])],
          drill_access: '3s',
          alert_channels: [webhookChannelConfig('ops', 'http://127.0.0.1:9/alerts')],
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('enrol, activate, confirm, use, end, review, report, rotate, drill', { skip }, async () => {
    const custodians: Record<string, TestCustodian> = {};
    for (const id of ['alice', 'bob']) {
      const passphrase = `${id} has a long emergency passphrase`;
      const r = await cli(['--json', 'break-glass', 'enroll', account, '--custodian', id], `${passphrase}\n`);
      assert.equal(r.code, 0, r.stderr);
      const uri = json(r).otpauth_uri as string;
      assert.match(uri, /^otpauth:\/\/totp\//);
      custodians[id] = new TestCustodian(id, passphrase, secretOfUri(uri), systemClock, true);
    }
    const alice = custodians.alice as TestCustodian;
    const bob = custodians.bob as TestCustodian;
    const tooShort = await cli(['break-glass', 'enroll', account, '--custodian', 'alice'], 'short\n');
    assert.equal(tooShort.code, 2, tooShort.stderr);

    const overdue = await cli(['break-glass', 'accounts']);
    assert.equal(overdue.code, 10, overdue.stderr);
    assert.match(overdue.stdout, /DRILL OVERDUE/);

    const activated = await cli(
      [
        '--json',
        'break-glass',
        'activate',
        account,
        '--custodian',
        'alice',
        '--reason',
        'db refuses logins',
        '--incident',
        'INC-9',
        '--for',
        '15',
      ],
      `${alice.passphrase}\n${await alice.code(cliStartMarginMs)}\n`,
    );
    assert.equal(activated.code, 0, activated.stderr);
    const id = (json(activated).activation as { id: string }).id;
    assert.ok(existsSync(json(activated).handle_file as string));

    const selfConfirm = await cli(
      ['break-glass', 'confirm', id, '--custodian', 'alice'],
      `${alice.passphrase}\n${await alice.code(cliStartMarginMs)}\n`,
    );
    assert.equal(selfConfirm.code, 4, selfConfirm.stderr);
    assert.match(selfConfirm.stderr, /self_confirmation/);
    const wrong = await cli(
      ['break-glass', 'confirm', id, '--custodian', 'bob'],
      `not bobs passphrase at all\n${await bob.code(cliStartMarginMs)}\n`,
    );
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /break_glass_auth_failed/);

    const confirmed = await cli(
      ['--json', 'break-glass', 'confirm', id, '--custodian', 'bob'],
      `${bob.passphrase}\n${await bob.code(cliStartMarginMs)}\n`,
    );
    assert.equal(confirmed.code, 0, confirmed.stderr);
    assert.equal(json(confirmed).state, 'active');

    const status = await cli(['break-glass', 'status', id]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /ACTIVE/);
    const creds = await cli(['--json', 'break-glass', 'credentials', id]);
    assert.equal(creds.code, 0, creds.stderr);
    assert.match(JSON.stringify(json(creds)), /postgres(ql)?:\/\//);
    const ended = await cli(['--json', 'break-glass', 'end', id]);
    assert.equal(ended.code, 0, ended.stderr);
    assert.equal(json(ended).state, 'ended');

    // Review with an ordinary signed-in session; bob took part and is refused.
    const bobLogin = await cli(
      ['login', '--profile', 'bob', '--username', 'bob', '--password-stdin'],
      'bob-demo-password\n',
    );
    assert.equal(bobLogin.code, 0, bobLogin.stderr);
    const byBob = await cli(['break-glass', 'review', id, '--profile', 'bob', '--notes', 'fine']);
    assert.equal(byBob.code, 4, byBob.stderr);
    const daveLogin = await cli(
      ['login', '--profile', 'dave', '--username', 'dave', '--password-stdin'],
      'dave-demo-password\n',
    );
    assert.equal(daveLogin.code, 0, daveLogin.stderr);
    const reviewed = await cli([
      '--json',
      'break-glass',
      'review',
      id,
      '--profile',
      'dave',
      '--notes',
      'checked INC-9',
    ]);
    assert.equal(reviewed.code, 0, reviewed.stderr);
    assert.equal(json(reviewed).state, 'reviewed');

    // A security key enrolled (in a browser) shows in `accounts`; an admin lists and revokes it.
    const key = new SoftAuthenticator(h.url);
    const creation = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys/options', {
      account,
      ...(await alice.body()),
    });
    assert.equal(creation.status, 200, JSON.stringify(creation.body));
    const enrolledKey = await h.api(null, 'POST', '/api/v1/break-glass/activations/security-keys', {
      account,
      custodian: 'alice',
      response: key.create(creation.body as never),
    });
    assert.equal(enrolledKey.status, 201, JSON.stringify(enrolledKey.body));
    const withKey = await cli(['break-glass', 'accounts']);
    assert.match(withKey.stdout, /alice \(1 security key\)/);
    const keysByBob = await cli(['break-glass', 'keys', 'list', account, '--profile', 'bob']);
    assert.equal(keysByBob.code, 4, keysByBob.stderr);
    const keys = await cli(['--json', 'break-glass', 'keys', 'list', account, '--profile', 'dave']);
    assert.equal(keys.code, 0, keys.stderr);
    assert.deepEqual(
      (json(keys).security_keys as { custodian: string; credential_id: string }[]).map((k) => [
        k.custodian,
        k.credential_id,
      ]),
      [['alice', key.id]],
    );
    const revokedKey = await cli(['break-glass', 'keys', 'revoke', account, key.id, '--profile', 'dave']);
    assert.equal(revokedKey.code, 0, revokedKey.stderr);
    assert.match(revokedKey.stdout, /Revoked security key/);
    const revokedAgain = await cli(['break-glass', 'keys', 'revoke', account, key.id, '--profile', 'dave']);
    assert.equal(revokedAgain.code, 5, revokedAgain.stderr);

    const out = join(home, 'reports');
    const report = await cli(['--json', 'break-glass', 'report', id, '--out', out]);
    assert.equal(report.code, 0, report.stderr);
    const evidence = JSON.parse(readFileSync(join(out, `break-glass-${id}.json`), 'utf8')) as {
      auditEvents: { type: string }[];
      activation: { state: string };
    };
    assert.equal(evidence.activation.state, 'reviewed');
    for (const t of [
      'break_glass.initiated',
      'break_glass.refused',
      'break_glass.activated',
      'grant.activated',
      'break_glass.credentials_shown',
      'grant.released',
      'break_glass.ended',
      'break_glass.reviewed',
    ])
      assert.ok(
        evidence.auditEvents.some((e) => e.type === t),
        t,
      );
    assert.match(readFileSync(join(out, `break-glass-${id}.md`), 'utf8'), /## Timeline/);

    const rotated = await cli(['--json', 'break-glass', 'rotate', account]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const newUris = json(rotated).totp as { custodian: string; otpauth_uri: string }[];
    assert.deepEqual(json(rotated).rotated_activations, [id]);
    const fresh = Object.fromEntries(
      newUris.map((t) => [
        t.custodian,
        new TestCustodian(
          t.custodian,
          (custodians[t.custodian] as TestCustodian).passphrase,
          secretOfUri(t.otpauth_uri),
          systemClock,
          true,
        ),
      ]),
    ) as Record<string, TestCustodian>;

    const initiatorFile = join(home, 'alice.txt');
    const confirmerFile = join(home, 'bob.txt');
    writeFileSync(
      initiatorFile,
      `${alice.passphrase}\n${await (fresh.alice as TestCustodian).code(cliStartMarginMs)}\n`,
      {
        mode: 0o600,
      },
    );
    writeFileSync(
      confirmerFile,
      `${bob.passphrase}\n${await (fresh.bob as TestCustodian).code(cliStartMarginMs)}\n`,
      {
        mode: 0o600,
      },
    );
    const drill = await cli([
      '--json',
      'break-glass',
      'drill',
      account,
      '--custodian',
      'alice',
      '--confirmer',
      'bob',
      '--initiator-file',
      initiatorFile,
      '--confirmer-file',
      confirmerFile,
      '--out',
      out,
    ]);
    assert.equal(drill.code, 0, `${drill.stdout}\n${drill.stderr}`);
    const result = json(drill);
    assert.equal(result.passed, true);
    const drillReport = JSON.parse(readFileSync(result.json as string, 'utf8')) as {
      checks: { name: string; passed: boolean }[];
    };
    const names = drillReport.checks.map((c) => c.name);
    for (const n of [
      'out-of-scope role app_readwrite refused',
      'login refused after the end',
      'access ended on time',
      'audit: break_glass.ended',
    ])
      assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    assert.ok(drillReport.checks.every((c) => c.passed));

    const fine = await cli(['break-glass', 'accounts']);
    assert.equal(fine.code, 0, fine.stderr);
    assert.doesNotMatch(fine.stdout, /DRILL OVERDUE/);
  });
});
