/**
 * The `break_glass` section: every problem reported with its path in one go, the cross-checks
 * against resources and alert channels, and the break-glass-only (degraded) loading rules.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from './load.js';

let root = '';
let file = '';
const env = { HOOK_SECRET: 'a-webhook-signing-secret-of-at-least-32-characters' };

before(() => {
  root = mkdtempSync(join(tmpdir(), 'portcullis-bg-config-'));
  mkdirSync(join(root, 'policies'));
  writeFileSync(join(root, 'policies', 'access.cedar'), 'permit (principal, action, resource);\n');
  writeFileSync(join(root, 'kek'), randomBytes(32).toString('base64'));
  // Written for real: the loader is given the text, but the file exists as in production.
  file = join(root, 'portcullis.yaml');
  writeFileSync(file, '# see the test trees\n');
});
after(() => rmSync(root, { recursive: true, force: true }));

type Tree = Record<string, any>;

function tree(): Tree {
  return {
    storage: { url: 'sqlite::memory:' },
    identity_providers: [
      { id: 'okta', type: 'oidc', display_name: 'Okta', issuer: 'https://okta.example.com', client_id: 'c' },
    ],
    resources: [{ id: 'orders-api', kind: 'token', roles: [{ name: 'read' }, { name: 'write' }] }],
    policies: { files: ['policies/access.cedar'] },
    tokens: { key_encryption_key: { file: 'kek' } },
    break_glass: {
      accounts: [
        {
          id: 'orders-emergency',
          scope: { resource: 'orders-api', roles: ['read'] },
          max_duration_minutes: 60,
          custodians: ['alice', { id: 'bob', principal: 'okta:bob' }],
          alert_channels: ['soc'],
        },
      ],
      alert_channels: [
        { name: 'soc', type: 'webhook', url: 'https://soc.example.com/h', secret: { env: 'HOOK_SECRET' } },
      ],
    },
  };
}

const parse = (t: Tree) => parseConfig(stringify(t), file, env);
const issuesOf = (t: Tree, options = {}): string[] => {
  try {
    parseConfig(stringify(t), file, env, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected the configuration to be refused');
};

describe('break_glass configuration', () => {
  it('resolves accounts with defaults, custodian principals and channels', () => {
    const config = parse(tree());
    const [account] = config.breakGlass.accounts;
    assert.equal(account?.quorum, 2);
    assert.equal(account?.activationWindowMinutes, 15);
    assert.deepEqual(account?.custodians, ['alice', 'bob']);
    assert.deepEqual(account?.custodianPrincipals, { bob: 'okta:bob' });
    assert.equal(account?.sealed, null);
    assert.equal(account?.drillIntervalSeconds, 90 * 86_400);
    assert.equal(config.breakGlass.drillAccessSeconds, 30);
    assert.deepEqual(
      config.breakGlass.alertChannels.map((c) => c.name),
      ['soc'],
    );
  });

  it('reports every problem with its path', () => {
    const t = tree();
    Object.assign(t.break_glass.accounts[0], {
      quorum: 3,
      max_duration_minutes: 500,
      activation_window_minutes: 90,
      scope: { resource: 'orders-api', roles: ['read', 'admin'] },
      alert_channels: ['soc', 'pager'],
      sealed: { threshold: 4, shares: 3 },
    });
    t.break_glass.accounts.push({
      id: 'ghost',
      scope: { resource: 'nope', roles: ['x'] },
      max_duration_minutes: 10,
      custodians: ['carol', 'carol'],
      quorum: 1,
    });
    t.break_glass.drill_access = '1h';
    const issues = issuesOf(t);
    const expected = [
      /^break_glass\.accounts\[0\]\.quorum: quorum 3 is more than the 2 distinct/,
      /^break_glass\.accounts\[0\]\.max_duration_minutes: .*240/,
      /^break_glass\.accounts\[0\]\.activation_window_minutes: /,
      /^break_glass\.accounts\[0\]\.scope\.roles: resource "orders-api" has no role "admin"/,
      /^break_glass\.accounts\[0\]\.alert_channels: no alert channel "pager"/,
      /^break_glass\.accounts\[0\]\.sealed: threshold must not exceed shares/,
      /^break_glass\.accounts\[1\]\.scope\.resource: unknown resource "nope"/,
      /^break_glass\.accounts\[1\]\.custodians: duplicate custodian "carol"/,
      /^break_glass\.accounts\[1\]\.quorum: quorum must be a whole number of at least 2/,
      /^break_glass\.accounts\[1\]\.alert_channels: at least one alert channel is required/,
      /^break_glass\.drill_access: must be at most 15m/,
    ];
    for (const pattern of expected)
      assert.ok(
        issues.some((i) => pattern.test(i)),
        `${pattern} in\n${issues.join('\n')}`,
      );
  });

  it('refuses a webhook secret that is too short, without echoing it', () => {
    try {
      parseConfig(stringify(tree()), file, { HOOK_SECRET: 'short-secret-xyz' });
      assert.fail('expected a refusal');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
      assert.match(text, /break_glass\.alert_channels\[0\]\.secret: must be at least 32 characters/);
      assert.doesNotMatch(`${text}${error.message}`, /short-secret-xyz/);
    }
  });

  describe('break-glass-only loading (degradable)', () => {
    const brokenIdp = (t: Tree) => {
      t.identity_providers[0].issuer = 'not a url';
      return t;
    };

    it('leaves out a broken identity_providers or policies section and says why', () => {
      const t = brokenIdp(tree());
      t.policies.files = ['policies/missing.cedar'];
      const config = parseConfig(stringify(t), file, env, { degradable: true });
      assert.deepEqual(config.identityProviders, []);
      assert.deepEqual(config.policyFiles, []);
      assert.deepEqual(
        config.degraded.map((d) => d.section),
        ['identity_providers', 'policies'],
      );
      assert.match(config.degraded[0]?.problems[0] ?? '', /identity_providers\[0\]\.issuer/);
      assert.equal(config.breakGlass.accounts.length, 1);
    });

    it('still refuses without emergency accounts, or when anything else is broken', () => {
      const noAccounts = brokenIdp(tree());
      noAccounts.break_glass.accounts = [];
      assert.ok(
        issuesOf(noAccounts, { degradable: true }).some((i) => i.startsWith('identity_providers[0].issuer')),
      );
      const brokenBreakGlass = brokenIdp(tree());
      brokenBreakGlass.break_glass.accounts[0].quorum = 1;
      assert.ok(issuesOf(brokenBreakGlass, { degradable: true }).some((i) => i.includes('quorum')));
      const brokenStorage = brokenIdp(tree());
      brokenStorage.storage = { url: 42 };
      assert.ok(issuesOf(brokenStorage, { degradable: true }).some((i) => i.startsWith('storage')));
      // Without `degradable` (the offline commands, config checks) nothing is left out.
      assert.ok(issuesOf(brokenIdp(tree())).some((i) => i.startsWith('identity_providers')));
    });
  });
});
