import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { stringify } from 'yaml';
import {
  type Config,
  ConfigError,
  decodeKeyEncryptionKey,
  type Environment,
  loadConfig,
  parseConfig,
} from './load.js';

// Secret values that must never show up in anything printable.
const databaseUrl = 'postgres://portcullis:db-pw-7f3a9e@db.internal:5432/portcullis';
const oktaClientSecret = 'okta-client-secret-91b2c4';
const ordersAdminUrl = 'postgres://admin:orders-admin-pw-c4d1@orders.internal:5432/orders';
const kekBytes = randomBytes(32);
const kek = kekBytes.toString('base64');

const env: Environment = {
  PORTCULLIS_DATABASE_URL: databaseUrl,
  OKTA_CLIENT_SECRET: oktaClientSecret,
  ORDERS_ADMIN_URL: ordersAdminUrl,
};

let root = '';
let file = '';

before(() => {
  root = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
  mkdirSync(join(root, 'policies'));
  mkdirSync(join(root, 'secrets'));
  writeFileSync(join(root, 'policies', 'access.cedar'), 'permit (principal, action, resource);\n');
  writeFileSync(join(root, 'secrets', 'kek'), `${kek}\n`);
  file = join(root, 'portcullis.yaml');
});

after(() => rmSync(root, { recursive: true, force: true }));

type Tree = Record<string, any>;

function validConfig(): Tree {
  return {
    server: { port: 9000, public_url: 'https://portcullis.example.com/' },
    storage: { url: { env: 'PORTCULLIS_DATABASE_URL' } },
    time_zone: 'Europe/Berlin',
    identity_providers: [
      {
        id: 'okta',
        type: 'oidc',
        display_name: 'Okta',
        issuer: 'https://example.okta.com',
        client_id: '0oa1example',
        client_secret: { env: 'OKTA_CLIENT_SECRET' },
        group_mapping: { 'Eng-Prod': ['engineering', 'oncall'] },
        api_audiences: ['api://portcullis'],
      },
    ],
    resources: [
      {
        id: 'orders-db',
        kind: 'postgres',
        owners: ['dba'],
        postgres: { admin_url: { env: 'ORDERS_ADMIN_URL' }, database: 'orders' },
        roles: [{ name: 'read', grants: ['pg_read_all_data'] }, { name: 'write' }],
      },
      { id: 'deploy-api', kind: 'token', roles: [{ name: 'deploy', grants: ['deploy:write'] }] },
    ],
    policies: { files: ['policies/access.cedar'] },
    admins: ['platform'],
    tokens: { key_encryption_key: { file: 'secrets/kek' }, access_token_ttl: '10m' },
  };
}

/** A `webhook` resource, valid unless `webhook` overrides make it not. */
function webhookResource(webhook: Tree = {}): Tree {
  return {
    id: 'saas',
    kind: 'webhook',
    webhook: { url: 'https://hooks.example.com/provision', secret: { file: 'secrets/kek' }, ...webhook },
    roles: [{ name: 'admin', grants: ['workspace-admin'] }],
  };
}

function parse(tree: unknown, environment: Environment = env, at = file): Config {
  return parseConfig(stringify(tree), at, environment);
}

/** A valid config with one change applied. */
function changed(change: (tree: Tree) => void): Tree {
  const tree = validConfig();
  change(tree);
  return tree;
}

/** Parses text expected to be refused and returns the error. */
function refused(text: string, environment: Environment = env, at = file): ConfigError {
  try {
    parseConfig(text, at, environment);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'config_invalid');
    assert.equal(error.file, at);
    return error;
  }
  assert.fail('the configuration was accepted');
}

function paths(error: ConfigError): string[] {
  return error.issues.map((i) => i.path).sort();
}

describe('parseConfig: identity_links', () => {
  it('keeps valid links and defaults to none', () => {
    assert.deepEqual(parse(validConfig()).identityLinks, []);
    const links = [{ principal: 'okta:00u1abc', also: ['okta:00u9xyz'] }];
    assert.deepEqual(parse(changed((t) => (t.identity_links = links))).identityLinks, links);
  });

  it('refuses unknown IdPs, bad ids, double links and self-links, each with its path', () => {
    const error = refused(
      stringify(
        changed((t) => {
          t.identity_links = [
            { principal: 'okta:a', also: ['entra:b', 'okta:a'] },
            { principal: 'okta:c', also: ['okta'] },
            { principal: 'okta:d', also: ['okta:c'] },
          ];
        }),
      ),
    );
    assert.deepEqual(
      error.issues.map((i) => [i.path, i.message]),
      [
        ['identity_links[0].also[0]', 'no identity provider "entra"'],
        ['identity_links[0].also[1]', '"okta:a" is linked to itself (also at identity_links[0].principal)'],
        ['identity_links[1].also[0]', '"okta" is not an identity "idp:subject"'],
        ['identity_links[2].also[0]', '"okta:c" is already linked at identity_links[1].principal'],
      ],
    );
    const empty = refused(
      stringify(changed((t) => (t.identity_links = [{ principal: 'okta:a', also: [] }]))),
    );
    assert.deepEqual(paths(empty), ['identity_links[0].also']);
  });
});

describe('parseConfig: a valid configuration', () => {
  it('parses, applies defaults and resolves secrets', () => {
    const config = parse(validConfig());
    assert.equal(config.file, file);
    assert.deepEqual(config.server, {
      host: '127.0.0.1',
      port: 9000,
      publicUrl: 'https://portcullis.example.com',
      trustProxy: false,
      bodyLimitBytes: 65_536,
    });
    assert.equal(config.storageUrl.reveal(), databaseUrl);
    assert.equal(config.timeZone, 'Europe/Berlin');

    const [okta] = config.identityProviders;
    assert.ok(okta?.type === 'oidc');
    assert.equal(okta.clientSecret?.reveal(), oktaClientSecret);
    assert.deepEqual(okta.scopes, ['openid', 'profile', 'email']);
    assert.equal(okta.groups_claim, 'groups');
    assert.deepEqual(okta.allowed_algorithms, ['RS256', 'ES256', 'EdDSA']);
    assert.equal(okta.timeout, 5);
    assert.deepEqual(okta.group_mapping, { 'Eng-Prod': ['engineering', 'oncall'] });
    assert.deepEqual(okta.api_audiences, ['api://portcullis']);
    assert.equal('client_secret' in okta, false, 'the raw reference is replaced by the resolved secret');

    assert.deepEqual([...config.resources.keys()], ['orders-db', 'deploy-api']);
    const orders = config.resources.get('orders-db');
    assert.ok(orders?.postgres);
    assert.equal(orders.kind, 'postgres');
    assert.equal(orders.sensitivity, 'medium');
    assert.deepEqual(orders.owners, ['dba']);
    assert.deepEqual(orders.roles.get('read'), {
      name: 'read',
      description: '',
      grants: ['pg_read_all_data'],
    });
    assert.deepEqual(orders.roles.get('write'), { name: 'write', description: '', grants: [] });
    assert.equal(orders.postgres.adminUrl.reveal(), ordersAdminUrl);
    assert.equal(orders.postgres.database, 'orders');
    assert.equal(orders.postgres.connectionLimit, 5);
    assert.equal(orders.postgres.reassignOwnedTo, 'postgres');
    assert.equal(orders.postgres.publicHost, undefined);
    const deploy = config.resources.get('deploy-api');
    assert.equal(deploy?.kind, 'token');
    assert.equal(deploy?.postgres, undefined);

    assert.deepEqual(config.policyFiles, [join(root, 'policies', 'access.cedar')]);
    assert.deepEqual(config.admins, ['platform']);
    assert.equal(config.tokens.keyEncryptionKey.reveal(), kek, 'the file is read and trimmed');
    assert.equal(config.tokens.audience, 'portcullis');
    assert.equal(config.tokens.accessTokenTtlSeconds, 600);
    assert.equal(config.tokens.sessionTtlSeconds, 3600);
    assert.equal(config.tokens.rotationOverlapSeconds, 86_400);
    assert.deepEqual(config.audit, {
      checkpointEveryEvents: 1000,
      checkpointIntervalSeconds: 300,
      retentionSeconds: null,
      streams: [],
    });
    assert.deepEqual(config.expiry, { pollIntervalSeconds: 1 });
    assert.ok(Object.isFrozen(config));
  });

  it('needs only policies and tokens; everything else has a default', () => {
    const config = parse(
      {
        policies: { files: ['policies/access.cedar'] },
        tokens: { key_encryption_key: { file: 'secrets/kek' } },
      },
      {},
    );
    assert.equal(config.storageUrl.reveal(), 'sqlite:portcullis.db');
    assert.deepEqual(config.server, {
      host: '127.0.0.1',
      port: 8080,
      publicUrl: 'http://127.0.0.1:8080',
      trustProxy: false,
      bodyLimitBytes: 65_536,
    });
    assert.equal(config.timeZone, 'UTC');
    assert.deepEqual(config.identityProviders, []);
    assert.equal(config.resources.size, 0);
    assert.deepEqual(config.admins, []);
  });

  it('an omitted section gets the same values as an empty one', () => {
    const minimal = {
      policies: { files: ['policies/access.cedar'] },
      tokens: { key_encryption_key: { file: 'secrets/kek' } },
    };
    const omitted = parse(minimal, {});
    const empty = parse({ ...minimal, server: {}, storage: {}, audit: {}, expiry: {} }, {});
    assert.deepEqual(empty.server, omitted.server);
    assert.equal(empty.storageUrl.reveal(), omitted.storageUrl.reveal());
    assert.deepEqual(empty.audit, omitted.audit);
    assert.deepEqual(empty.expiry, omitted.expiry);
  });

  it('accepts durations as text or as seconds', () => {
    const config = parse(
      changed((t) => {
        t.tokens = {
          key_encryption_key: { file: 'secrets/kek' },
          access_token_ttl: 120,
          session_ttl: '8h',
          rotation_overlap: '2d',
          rotation_interval: '7d',
        };
        t.audit = { checkpoint_interval: '1m' };
        t.expiry = { poll_interval: '5s' };
      }),
    );
    assert.equal(config.tokens.accessTokenTtlSeconds, 120);
    assert.equal(config.tokens.sessionTtlSeconds, 8 * 3600);
    assert.equal(config.tokens.rotationOverlapSeconds, 2 * 86_400);
    assert.equal(config.tokens.rotationIntervalSeconds, 7 * 86_400);
    assert.equal(config.audit.checkpointIntervalSeconds, 60);
    assert.equal(config.expiry.pollIntervalSeconds, 5);
  });

  it('rotates token keys every 30 days unless told otherwise; `off` turns it off', () => {
    assert.equal(parse(validConfig()).tokens.rotationIntervalSeconds, 30 * 86_400);
    const off = parse(changed((t) => (t.tokens.rotation_interval = 'off')));
    assert.equal(off.tokens.rotationIntervalSeconds, null);
  });

  it('a webhook resource: its URL and secret resolved as secrets, a 10 s timeout by default', () => {
    const config = parse(
      changed((t) => t.resources.push(webhookResource({ url: { env: 'HOOK_URL' }, inspect: true }))),
      { ...env, HOOK_URL: 'https://hooks.example.com/provision?token=hook-token-5e1' },
    );
    const webhook = config.resources.get('saas')?.webhook;
    assert.ok(webhook);
    assert.equal(webhook.url.reveal(), 'https://hooks.example.com/provision?token=hook-token-5e1');
    assert.equal(webhook.secret.reveal(), kek);
    assert.equal(webhook.timeoutMs, 10_000);
    assert.equal(webhook.inspect, true);
    assert.doesNotMatch(inspect(config, { depth: 10 }), /hook-token-5e1/);
  });

  it('audit streams: their URL and secret resolved as secrets; a name used twice is refused', () => {
    const siem = { name: 'siem', type: 'webhook', url: { env: 'SIEM_URL' }, secret: { file: 'secrets/kek' } };
    const config = parse(
      changed((t) => (t.audit = { streams: [siem] })),
      { ...env, SIEM_URL: 'https://siem.example.com/in?token=siem-token-77' },
    );
    const [stream] = config.audit.streams;
    assert.equal(stream?.target.url.reveal(), 'https://siem.example.com/in?token=siem-token-77');
    assert.deepEqual([stream?.batchSize, stream?.startAt, stream?.target.timeoutMs], [500, 'end', 10_000]);
    assert.doesNotMatch(inspect(config, { depth: 10 }), /siem-token-77/);
    const twice = refused(stringify(changed((t) => (t.audit = { streams: [siem, siem] }))), {
      ...env,
      SIEM_URL: 'https://siem.example.com/',
    });
    assert.deepEqual(paths(twice), ['audit.streams']);
    const plain = refused(
      stringify(changed((t) => (t.audit = { streams: [{ ...siem, url: 'http://siem.example.com/' }] }))),
    );
    assert.deepEqual(paths(plain), ['audit.streams[0].url']);
  });

  it('takes an ssh resource whose roles name login names, and refuses roles that name none or others', () => {
    const ssh = (grants: unknown[][]) => ({
      id: 'hosts',
      kind: 'ssh',
      ssh: { ca_key: { file: 'secrets/kek' }, source_addresses: ['10.0.0.0/8'] },
      roles: grants.map((g, i) => ({ name: `r${i}`, grants: g })),
    });
    const config = parse(changed((t) => (t.resources as Tree[]).push(ssh([['ops', 'deploy.bot']]))));
    const hosts = config.resources.get('hosts');
    assert.deepEqual(
      [hosts?.ssh?.extensions, hosts?.ssh?.sourceAddresses, hosts?.ssh?.port],
      [['permit-pty'], ['10.0.0.0/8'], 22],
    );
    const bad = refused(
      stringify(changed((t) => (t.resources as Tree[]).push(ssh([['ops', 'Root Shell'], []])))),
    );
    assert.deepEqual(paths(bad), ['resources[2].roles[0].grants[1]', 'resources[2].roles[1].grants']);
  });

  it('reminds approvers only when remind_after is set, and only before requests lapse', () => {
    assert.equal(parse(validConfig()).notifications.remindAfterSeconds, null);
    const fourHours = parse(changed((t) => (t.notifications = { remind_after: '4h' })));
    assert.equal(fourHours.notifications.remindAfterSeconds, 4 * 3600);
    const late = refused(stringify(changed((t) => (t.notifications = { remind_after: '2d' }))));
    assert.deepEqual(paths(late), ['notifications.remind_after']);
    const tiny = refused(stringify(changed((t) => (t.notifications = { remind_after: '10s' }))));
    assert.deepEqual(paths(tiny), ['notifications.remind_after']);
    const warned = parse(changed((t) => (t.notifications = { warn_before_expiry: '10m' })));
    assert.deepEqual(
      [
        warned.notifications.warnBeforeExpirySeconds,
        parse(validConfig()).notifications.warnBeforeExpirySeconds,
      ],
      [600, null],
    );
  });

  it('keeps audit events forever unless a retention of at least a day is set', () => {
    assert.equal(parse(validConfig()).audit.retentionSeconds, null);
    const year = parse(changed((t) => (t.audit = { retention: '365d' })));
    assert.equal(year.audit.retentionSeconds, 365 * 86_400);
    const hour = refused(stringify(changed((t) => (t.audit = { retention: '1h' }))));
    assert.deepEqual(paths(hour), ['audit.retention']);
    assert.match(hour.message, /at least 1d \(or forever\)/);
  });

  it('publishes the next token key a day before the rotation, or a quarter of a shorter interval', () => {
    assert.equal(parse(validConfig()).tokens.rotationPrepublishSeconds, 86_400);
    const hourly = parse(changed((t) => (t.tokens.rotation_interval = '4h')));
    assert.equal(hourly.tokens.rotationPrepublishSeconds, 3600);
    const off = parse(changed((t) => (t.tokens.rotation_prepublish = 'off')));
    assert.equal(off.tokens.rotationPrepublishSeconds, null);
    const noRotation = parse(changed((t) => (t.tokens.rotation_interval = 'off')));
    assert.equal(noRotation.tokens.rotationPrepublishSeconds, null);
    const tooLong = refused(
      stringify(changed((t) => Object.assign(t.tokens, { rotation_prepublish: '31d' }))),
    );
    assert.deepEqual(paths(tooLong), ['tokens.rotation_prepublish']);
  });

  it('loadConfig reads the file from disk', () => {
    writeFileSync(file, stringify(validConfig()));
    assert.equal(loadConfig(file, env).timeZone, 'Europe/Berlin');
  });

  it('loadConfig reports a file it cannot read', () => {
    const missing = join(root, 'nope.yaml');
    assert.throws(
      () => loadConfig(missing, env),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.file === missing &&
        error.issues.length === 1 &&
        /cannot read: ENOENT/.test(error.issues[0]?.message ?? ''),
    );
  });
});

describe('parseConfig: every problem is reported at once', () => {
  it('four distinct mistakes give four issues, each with its path', () => {
    writeFileSync(join(root, 'secrets', 'short-kek'), randomBytes(16).toString('hex'));
    const error = refused(
      stringify(
        changed((t) => {
          t.resources[0].roles[1].name = 'Read Only';
          t.tokens.key_encryption_key = { file: 'secrets/short-kek' };
          t.time_zone = 'Mars/Olympus';
          t.identity_providers[0].issuer = 'not a url';
        }),
      ),
    );
    assert.deepEqual(paths(error), [
      'identity_providers[0].issuer',
      'resources[0].roles[1].name',
      'time_zone',
      'tokens.key_encryption_key',
    ]);
    for (const issue of error.issues)
      assert.ok(error.message.includes(`${file}: ${issue.path}: `), issue.path);
    assert.match(error.message, /has 4 problem\(s\)/);
    assert.deepEqual(error.details, { issues: error.issues });
  });

  it('schema mistakes and missing secrets are reported together', () => {
    const error = refused(
      stringify(
        changed((t) => {
          t.server.port = 70_000;
          t.tokens.key_encryption_key = { file: 'secrets/absent' };
        }),
      ),
      { ...env, PORTCULLIS_DATABASE_URL: undefined },
    );
    assert.deepEqual(paths(error), ['server.port', 'storage.url', 'tokens.key_encryption_key']);
  });

  // One mistake in an otherwise valid file: exactly one issue, at this path.
  const singleMistakes: ReadonlyArray<readonly [string, (t: Tree) => void, string]> = [
    ['a port out of range', (t) => (t.server.port = 70_000), 'server.port'],
    ['a public URL that is not a URL', (t) => (t.server.public_url = 'portcullis'), 'server.public_url'],
    ['a body limit below 1 KiB', (t) => (t.server.body_limit_bytes = 100), 'server.body_limit_bytes'],
    ['an unknown time zone', (t) => (t.time_zone = 'Europe/Atlantis'), 'time_zone'],
    [
      'an unknown identity provider type',
      (t) => (t.identity_providers[0].type = 'ws-fed'),
      'identity_providers[0].type',
    ],
    [
      'an uppercase group in a mapping',
      (t) => (t.identity_providers[0].group_mapping = { x: ['Admins'] }),
      'identity_providers[0].group_mapping.x[0]',
    ],
    [
      'an unsupported signing algorithm',
      (t) => (t.identity_providers[0].allowed_algorithms = ['HS256']),
      'identity_providers[0].allowed_algorithms[0]',
    ],
    [
      'no signing algorithm at all',
      (t) => (t.identity_providers[0].allowed_algorithms = []),
      'identity_providers[0].allowed_algorithms',
    ],
    [
      'an IdP timeout that is not a duration',
      (t) => (t.identity_providers[0].timeout = 'soon'),
      'identity_providers[0].timeout',
    ],
    ['an unknown resource kind', (t) => (t.resources[1].kind = 'ldap'), 'resources[1].kind'],
    ['a resource without roles', (t) => (t.resources[1].roles = []), 'resources[1].roles'],
    ['an unknown sensitivity', (t) => (t.resources[0].sensitivity = 'extreme'), 'resources[0].sensitivity'],
    [
      'a postgres resource without its connection',
      (t) => delete t.resources[0].postgres,
      'resources[0].postgres',
    ],
    [
      'a connection limit above 10000',
      (t) => (t.resources[0].postgres.connection_limit = 20_000),
      'resources[0].postgres.connection_limit',
    ],
    [
      'a webhook target over plain http to another host',
      (t) => t.resources.push(webhookResource({ url: 'http://hooks.example.com/provision' })),
      'resources[2].webhook.url',
    ],
    [
      'a webhook URL with credentials before the host',
      (t) => t.resources.push(webhookResource({ url: 'https://user:pw@hooks.example.com/' })),
      'resources[2].webhook.url',
    ],
    [
      'a webhook signing secret under 32 characters',
      (t) => {
        writeFileSync(join(root, 'secrets', 'short'), 'too-short');
        t.resources.push(webhookResource({ secret: { file: 'secrets/short' } }));
      },
      'resources[2].webhook.secret',
    ],
    [
      'a webhook timeout above 2 minutes',
      (t) => t.resources.push(webhookResource({ timeout: '5m' })),
      'resources[2].webhook.timeout',
    ],
    ['an admin group that is not an identifier', (t) => (t.admins = ['Platform Team']), 'admins[0]'],
    ['no policy files', (t) => (t.policies.files = []), 'policies.files'],
    ['no policies section', (t) => delete t.policies, 'policies'],
    ['no tokens section', (t) => delete t.tokens, 'tokens'],
    [
      'a policy file that does not exist',
      (t) => t.policies.files.push('policies/missing.cedar'),
      'policies.files[1]',
    ],
    ['a token TTL of zero', (t) => (t.tokens.access_token_ttl = 0), 'tokens.access_token_ttl'],
    [
      'a signing algorithm Portcullis does not sign with',
      (t) => (t.tokens.signing_algorithm = 'HS256'),
      'tokens.signing_algorithm',
    ],
    [
      'a rotation interval under an hour',
      (t) => (t.tokens.rotation_interval = '30m'),
      'tokens.rotation_interval',
    ],
    [
      'a rotation overlap shorter than the session lifetime',
      (t) => Object.assign(t.tokens, { session_ttl: '2d', rotation_overlap: '1d' }),
      'tokens.rotation_overlap',
    ],
    [
      'a fractional checkpoint count',
      (t) => (t.audit = { checkpoint_every_events: 2.5 }),
      'audit.checkpoint_every_events',
    ],
    [
      'a poll interval that is not a duration',
      (t) => (t.expiry = { poll_interval: '1 minute' }),
      'expiry.poll_interval',
    ],
  ];
  for (const [description, change, path] of singleMistakes) {
    it(`${description} → ${path}`, () => {
      assert.deepEqual(paths(refused(stringify(changed(change)))), [path]);
    });
  }

  it('an empty document is missing its required sections', () => {
    assert.deepEqual(paths(refused('')), ['policies', 'tokens']);
  });

  it('a document that is not a mapping is refused at the root', () => {
    const error = refused('- policies\n- tokens\n');
    assert.deepEqual(paths(error), ['']);
    assert.match(error.message, /\(root\)/);
  });
});

describe('parseConfig: unknown keys are refused', () => {
  const cases: ReadonlyArray<readonly [string, (t: Tree) => void, string, string]> = [
    ['at the top level', (t) => (t.listen = 8080), '', 'listen'],
    ['in server', (t) => (t.server.prot = 8080), 'server', 'prot'],
    ['in storage', (t) => (t.storage.pool = 10), 'storage', 'pool'],
    [
      'in an identity provider (a misspelt secret)',
      (t) => (t.identity_providers[0].client_sercet = 'x'),
      'identity_providers[0]',
      'client_sercet',
    ],
    ['in a resource', (t) => (t.resources[1].owner = 'dba'), 'resources[1]', 'owner'],
    [
      'a postgres connection on a token resource',
      (t) => (t.resources[1].postgres = t.resources[0].postgres),
      'resources[1]',
      'postgres',
    ],
    ['in a role', (t) => (t.resources[0].roles[0].grant = ['x']), 'resources[0].roles[0]', 'grant'],
    [
      'in a postgres connection',
      (t) => (t.resources[0].postgres.password = 'x'),
      'resources[0].postgres',
      'password',
    ],
    ['in policies', (t) => (t.policies.dir = 'policies'), 'policies', 'dir'],
    ['in tokens', (t) => (t.tokens.issuer = 'x'), 'tokens', 'issuer'],
    ['in audit', (t) => (t.audit = { checkpoint_every: 10 }), 'audit', 'checkpoint_every'],
    ['in expiry', (t) => (t.expiry = { interval: '1s' }), 'expiry', 'interval'],
    ['in a secret reference', (t) => (t.storage.url = { env: 'X', default: 'y' }), 'storage.url', ''],
  ];
  for (const [description, change, path, key] of cases) {
    it(description, () => {
      const error = refused(stringify(changed(change)));
      assert.deepEqual(paths(error), [path]);
      if (key) assert.match(error.issues[0]?.message ?? '', new RegExp(`"${key}"`));
    });
  }
});

describe('parseConfig: duplicate ids', () => {
  it('reports duplicate identity providers, resources and roles', () => {
    const error = refused(
      stringify(
        changed((t) => {
          t.identity_providers.push({ ...t.identity_providers[0] });
          t.resources.push({ id: 'orders-db', kind: 'token', roles: [{ name: 'x' }] });
          t.resources[1].roles.push({ name: 'deploy' });
        }),
      ),
    );
    assert.deepEqual(error.issues.map((i) => [i.path, i.message]).sort(), [
      ['identity_providers', 'duplicate identity provider id "okta"'],
      ['resources', 'duplicate resource id "orders-db"'],
      ['resources[1].roles', 'duplicate role "deploy"'],
    ]);
  });
});

describe('parseConfig: secrets', () => {
  it('reports every missing environment variable with its path', () => {
    const error = refused(stringify(validConfig()), {});
    assert.deepEqual(error.issues.map((i) => [i.path, i.message]).sort(), [
      ['identity_providers[0].client_secret', 'environment variable OKTA_CLIENT_SECRET is not set'],
      ['resources[0].postgres.admin_url', 'environment variable ORDERS_ADMIN_URL is not set'],
      ['storage.url', 'environment variable PORTCULLIS_DATABASE_URL is not set'],
    ]);
  });

  it("checks the login policy of Portcullis's own PostgreSQL URLs, without quoting them", () => {
    const error = refused(stringify(validConfig()), {
      ...env,
      PORTCULLIS_DATABASE_URL: `${databaseUrl}?require_auth=password`,
      ORDERS_ADMIN_URL: `${ordersAdminUrl}?sslmode=require&channel_binding=always`,
    });
    assert.deepEqual(error.issues.map((i) => [i.path, i.message]).sort(), [
      ['resources[0].postgres.admin_url', 'channel_binding must be disable, prefer or require'],
      [
        'storage.url',
        'require_auth allows a cleartext password, which needs sslmode=verify-ca or verify-full (or a unix socket): anyone on the path could ask for it',
      ],
    ]);
    assert.doesNotMatch(error.message, /db-pw-7f3a9e|orders-admin-pw-c4d1/);
    const accepted = parse(validConfig(), {
      ...env,
      PORTCULLIS_DATABASE_URL: `${databaseUrl}?sslmode=verify-full&require_auth=scram-sha-256,password`,
    });
    assert.equal(accepted.storageUrl.reveal().endsWith('require_auth=scram-sha-256,password'), true);
  });

  it('an empty environment variable counts as missing', () => {
    const error = refused(stringify(validConfig()), { ...env, OKTA_CLIENT_SECRET: '' });
    assert.deepEqual(paths(error), ['identity_providers[0].client_secret']);
  });

  it('reports a secret file that does not exist, with the resolved path', () => {
    const error = refused(
      stringify(changed((t) => (t.tokens.key_encryption_key = { file: 'secrets/absent' }))),
    );
    assert.deepEqual(paths(error), ['tokens.key_encryption_key']);
    assert.equal(
      error.issues[0]?.message,
      `cannot read secret file ${join(root, 'secrets', 'absent')}: ENOENT`,
    );
  });

  it('reports a secret file that cannot be read', () => {
    const error = refused(stringify(changed((t) => (t.tokens.key_encryption_key = { file: 'secrets' }))));
    assert.deepEqual(paths(error), ['tokens.key_encryption_key']);
    assert.match(error.issues[0]?.message ?? '', /cannot read secret file .*: EISDIR$/);
  });

  it('a secret written inline is refused, and the message does not repeat it', () => {
    const inline = 'inline-kek-value-5e6f';
    const error = refused(stringify(changed((t) => (t.tokens.key_encryption_key = inline))));
    assert.deepEqual(paths(error), ['tokens.key_encryption_key']);
    assert.match(error.issues[0]?.message ?? '', /\{ env: NAME \} or \{ file: PATH \}/);
    assert.ok(!error.message.includes(inline));
    assert.ok(!JSON.stringify(error.details).includes(inline));
  });

  it('a secret reference names either env or file, not both', () => {
    const error = refused(stringify(changed((t) => (t.tokens.key_encryption_key = { env: 'A', file: 'b' }))));
    assert.deepEqual(paths(error), ['tokens.key_encryption_key']);
  });

  it('secret values never appear in JSON, util.inspect or String()', () => {
    const config = parse(validConfig());
    const secrets = [databaseUrl, oktaClientSecret, ordersAdminUrl, kek];
    const printed = {
      json: JSON.stringify(config),
      inspect: inspect(config, { depth: 10 }),
      resources: inspect([...config.resources.values()], { depth: 10 }),
      strings: [
        String(config.storageUrl),
        `${config.tokens.keyEncryptionKey}`,
        String((config.identityProviders[0] as { clientSecret?: unknown } | undefined)?.clientSecret),
        String(config.resources.get('orders-db')?.postgres?.adminUrl),
      ].join('\n'),
    };
    for (const [how, text] of Object.entries(printed)) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `${how} leaks ${secret}`);
      for (const fragment of ['db-pw-7f3a9e', 'orders-admin-pw', kekBytes.toString('hex')]) {
        assert.ok(!text.includes(fragment), `${how} leaks ${fragment}`);
      }
    }
    assert.match(printed.inspect, /\[secret PORTCULLIS_DATABASE_URL\]/);
    assert.equal(String(config.storageUrl), '[secret PORTCULLIS_DATABASE_URL]');
    assert.equal(JSON.stringify({ url: config.storageUrl }), '{"url":"[secret PORTCULLIS_DATABASE_URL]"}');
  });

  it('an inline storage URL is still wrapped as a secret', () => {
    const url = 'postgres://u:inline-pw-0a1b@db/portcullis';
    const config = parse(changed((t) => (t.storage.url = url)));
    assert.equal(config.storageUrl.reveal(), url);
    assert.ok(!JSON.stringify(config).includes('inline-pw-0a1b'));
  });

  it('errors about other fields do not leak resolved secrets', () => {
    const error = refused(stringify(changed((t) => (t.time_zone = 'Nowhere/Special'))));
    for (const secret of [databaseUrl, oktaClientSecret, ordersAdminUrl, kek]) {
      assert.ok(!error.message.includes(secret));
      assert.ok(!inspect(error, { depth: 10 }).includes(secret));
    }
  });
});

describe('the key-encryption key', () => {
  const filled = Buffer.alloc(32, 0xfb); // encodes to both "+/" (base64) and "-_" (base64url)
  const accepted: ReadonlyArray<readonly [string, string, Uint8Array]> = [
    ['64 hex digits', kekBytes.toString('hex'), kekBytes],
    ['64 uppercase hex digits', kekBytes.toString('hex').toUpperCase(), kekBytes],
    ['base64 with padding', filled.toString('base64'), filled],
    ['base64 without padding', filled.toString('base64').replace(/=$/, ''), filled],
    ['base64url', filled.toString('base64url'), filled],
    ['base64 with surrounding whitespace', `  ${kek}\n`, kekBytes],
  ];
  for (const [description, text, bytes] of accepted) {
    it(`accepts ${description}`, () => {
      assert.deepEqual(Buffer.from(decodeKeyEncryptionKey(text) ?? []), Buffer.from(bytes));
      writeFileSync(join(root, 'secrets', 'kek-variant'), text);
      const config = parse(changed((t) => (t.tokens.key_encryption_key = { file: 'secrets/kek-variant' })));
      assert.ok(config.tokens.keyEncryptionKey.reveal().length > 0);
    });
  }

  const rejected: ReadonlyArray<readonly [string, string]> = [
    ['16 bytes of hex', randomBytes(16).toString('hex')],
    ['63 hex digits', kekBytes.toString('hex').slice(1)],
    ['65 hex digits', `${kekBytes.toString('hex')}0`],
    ['31 bytes of base64', randomBytes(31).toString('base64')],
    ['33 bytes of base64', randomBytes(33).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
  ];
  for (const [description, text] of rejected) {
    it(`refuses ${description}, at tokens.key_encryption_key`, () => {
      assert.equal(decodeKeyEncryptionKey(text), null);
      const error = refused(stringify(changed((t) => (t.tokens.key_encryption_key = { env: 'KEK' }))), {
        ...env,
        KEK: text,
      });
      assert.deepEqual(error.issues, [
        { path: 'tokens.key_encryption_key', message: 'must be 32 random bytes, as base64 or 64 hex digits' },
      ]);
      assert.ok(!error.message.includes(text), 'the rejected key is not echoed');
    });
  }
});

describe('parseConfig: YAML', () => {
  it('reports a syntax error', () => {
    const error = refused('server:\n  port: [8080\npolicies: {\n');
    assert.ok(error.issues.length >= 1);
    assert.equal(error.issues[0]?.path, '');
    assert.ok(error.issues[0]?.message);
  });

  it('refuses a key written twice', () => {
    const error = refused('time_zone: UTC\ntime_zone: Europe/Paris\n');
    assert.ok(error.issues.length >= 1);
    assert.match(error.message, /unique|duplicate/i);
  });
});

describe('parseConfig: relative paths', () => {
  it('resolve against the directory of the config file, not the working directory', () => {
    const nested = join(root, 'deploy', 'prod');
    mkdirSync(join(nested, 'policies'), { recursive: true });
    mkdirSync(join(nested, 'keys'), { recursive: true });
    writeFileSync(join(nested, 'policies', 'prod.cedar'), '');
    writeFileSync(join(root, 'deploy', 'shared.cedar'), '');
    writeFileSync(join(nested, 'keys', 'kek.hex'), kekBytes.toString('hex'));
    const absolute = join(root, 'policies', 'access.cedar');
    const config = parse(
      {
        policies: { files: ['policies/prod.cedar', '../shared.cedar', absolute] },
        tokens: { key_encryption_key: { file: 'keys/kek.hex' } },
      },
      {},
      join(nested, 'portcullis.yaml'),
    );
    assert.notEqual(process.cwd(), nested);
    assert.deepEqual(config.policyFiles, [
      join(nested, 'policies', 'prod.cedar'),
      join(root, 'deploy', 'shared.cedar'),
      absolute,
    ]);
    assert.equal(config.tokens.keyEncryptionKey.reveal(), kekBytes.toString('hex'));
  });

  it('a missing policy file is reported with the path it was looked for at', () => {
    const error = refused(
      stringify(changed((t) => (t.policies.files = ['policies/access.cedar', 'other.cedar']))),
    );
    assert.deepEqual(error.issues, [
      { path: 'policies.files[1]', message: `policy file ${join(root, 'other.cedar')} does not exist` },
    ]);
  });
});

describe('parseConfig: gateway-only resources', () => {
  it('gateway_only defaults to false and needs a gateway section', () => {
    assert.equal(parse(validConfig()).resources.get('orders-db')?.postgres?.gatewayOnly, false);
    const error = refused(stringify(changed((t) => (t.resources[0].postgres.gateway_only = true))));
    assert.deepEqual(paths(error), ['resources[0].postgres.gateway_only']);
    const served = parse(
      changed((t) => {
        t.resources[0].postgres.gateway_only = true;
        t.gateway = { host: '0.0.0.0', public_host: 'db-gateway.example.com', public_port: 6543 };
      }),
    );
    assert.equal(served.resources.get('orders-db')?.postgres?.gatewayOnly, true);
    assert.equal(served.gateway?.publicHost, 'db-gateway.example.com');
    assert.equal(served.gateway?.publicPort, 6543);
  });
});
