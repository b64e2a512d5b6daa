import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, type Environment, parseConfig } from './load.js';
import { configSchema } from './schema.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const examplePath = join(repo, 'examples', 'portcullis.example.yaml');
const demoPolicies = join(repo, 'examples', 'demo', 'policies', 'access.cedar');
/** Where the example expects its key-encryption key; the test puts a real key in a temp dir instead. */
const exampleKekPath = '/run/secrets/portcullis-kek';

const env: Environment = {
  PORTCULLIS_DATABASE_URL: 'postgres://portcullis:example-db-pw@db.internal:5432/portcullis',
  OKTA_CLIENT_SECRET: 'example-okta-secret',
  ORDERS_DB_ADMIN_URL: 'postgres://portcullis_admin:example-admin-pw@orders-db.internal:5432/orders',
  ALERT_WEBHOOK_SECRET: 'example-webhook-signing-secret-of-32-chars',
  OKTA_SCIM_TOKEN: 'example-okta-scim-token-0123456789abcdef',
  ACCESS_WEBHOOK_URL: 'https://chat-relay.example.com/hooks/access',
  ACCESS_WEBHOOK_SECRET: 'example-access-webhook-secret-of-32-chars',
  SMTP_PASSWORD: 'example-smtp-password',
};

const exampleText = readFileSync(examplePath, 'utf8');
let dir = '';
let configFile = '';
let configText = '';
const kek = randomBytes(32).toString('base64');

before(() => {
  // The example as an operator would install it: next to its policies, with the key file mounted.
  dir = mkdtempSync(join(tmpdir(), 'portcullis-example-'));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(
    join(dir, 'policies', 'access.cedar'),
    existsSync(demoPolicies) ? readFileSync(demoPolicies) : 'permit (principal, action, resource);\n',
  );
  writeFileSync(join(dir, 'portcullis-kek'), `${kek}\n`);
  const tokens = (parse(exampleText) as { tokens: { key_encryption_key: unknown } }).tokens;
  assert.deepEqual(tokens.key_encryption_key, { file: exampleKekPath });
  configText = exampleText.replaceAll(exampleKekPath, join(dir, 'portcullis-kek'));
  configFile = join(dir, 'portcullis.yaml');
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('examples/portcullis.example.yaml', () => {
  it('is accepted by parseConfig given its environment and files', () => {
    const config = parseConfig(configText, configFile, env);
    assert.equal(config.server.publicUrl, 'https://portcullis.example.com');
    assert.deepEqual(config.server.trustProxy, ['10.0.0.0/8']);
    assert.equal(config.storageUrl.reveal(), env.PORTCULLIS_DATABASE_URL);
    assert.equal(config.timeZone, 'Europe/Berlin');

    const [okta] = config.identityProviders;
    assert.equal(config.identityProviders.length, 1);
    assert.ok(okta?.type === 'oidc');
    assert.equal(okta?.id, 'okta');
    assert.equal(okta?.clientSecret?.reveal(), env.OKTA_CLIENT_SECRET);
    assert.deepEqual(okta?.api_audiences, ['api://portcullis']);
    assert.deepEqual(okta?.group_mapping['SRE On-Call'], ['sre']);
    assert.equal(okta?.timeout, 5);

    const orders = config.resources.get('orders-db');
    assert.equal(orders?.kind, 'postgres');
    assert.equal(orders?.postgres?.adminUrl.reveal(), env.ORDERS_DB_ADMIN_URL);
    assert.deepEqual([...(orders?.roles.keys() ?? [])], ['readonly', 'readwrite']);
    const deploy = config.resources.get('deploy-api');
    assert.equal(deploy?.kind, 'token');
    assert.deepEqual(deploy?.roles.get('deployer')?.grants, ['deploy:read', 'deploy:write']);

    assert.deepEqual(config.policyFiles, [join(dir, 'policies', 'access.cedar')]);
    assert.deepEqual(config.admins, ['platform-admins']);
    assert.equal(config.tokens.keyEncryptionKey.reveal(), kek);
    assert.equal(config.tokens.accessTokenTtlSeconds, 15 * 60);
    assert.equal(config.tokens.sessionTtlSeconds, 3600);
    assert.equal(config.tokens.rotationOverlapSeconds, 86_400);
    assert.deepEqual(config.audit, {
      checkpointEveryEvents: 1000,
      checkpointIntervalSeconds: 300,
      retentionSeconds: 400 * 86_400,
      streams: [],
    });
    assert.deepEqual(config.expiry, { pollIntervalSeconds: 1 });
  });

  it('takes every secret from outside the file: without its environment, each is reported', () => {
    assert.throws(
      () => parseConfig(configText, configFile, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.issues.map((i) => i.path).sort(), [
          'break_glass.alert_channels[0].secret',
          'break_glass.alert_channels[0].secret',
          'identity_providers[0].client_secret',
          'notifications.channels[0].secret',
          'notifications.channels[0].secret',
          'notifications.channels[0].url',
          'notifications.channels[0].url',
          'notifications.channels[1].auth.pass',
          'resources[0].postgres.admin_url',
          'scim.clients[0].token',
          'storage.url',
        ]);
        return true;
      },
    );
  });

  it('shows every section of the schema', () => {
    const raw = parse(exampleText) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw).sort(), Object.keys(configSchema.shape).sort());
  });
});
