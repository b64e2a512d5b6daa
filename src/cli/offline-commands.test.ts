/** `policy test` and `keys rotate`: the commands that work on the configuration, without a server. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { JweSecretBox } from '../crypto/secret-box.js';
import { openStore } from '../storage/open-store.js';
import { SigningKeyStore } from '../tokens/key-store.js';
import { exitCodes } from './cli-error.js';
import type { CliIo } from './context.js';
import { runCli } from './program.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const demoPolicies = join(repoRoot, 'examples', 'demo', 'policies');

let dir: string;
const kek = randomBytes(32).toString('base64url');

/** A configuration like the demo's, with every secret behind an environment variable. */
function config() {
  return {
    storage: { url: { env: 'TEST_STORAGE_URL' } },
    identity_providers: [
      {
        id: 'demo',
        type: 'oidc',
        display_name: 'Demo',
        issuer: 'http://127.0.0.1:1',
        client_id: 'portcullis',
        client_secret: { env: 'TEST_UNSET_CLIENT_SECRET' },
      },
    ],
    resources: [
      {
        id: 'demo-api',
        kind: 'token',
        sensitivity: 'low',
        owners: ['sre'],
        roles: [{ name: 'reader' }, { name: 'operator' }],
      },
      {
        id: 'demo-db',
        kind: 'postgres',
        sensitivity: 'high',
        owners: ['dba'],
        postgres: { admin_url: { env: 'TEST_UNSET_PG_URL' }, database: 'portcullis_demo' },
        roles: [{ name: 'readonly' }, { name: 'readwrite' }],
      },
      {
        id: 'demo-hosts',
        kind: 'ssh',
        sensitivity: 'high',
        owners: ['sre'],
        ssh: { ca_key: { env: 'TEST_UNSET_SSH_CA' } },
        roles: [{ name: 'ops', grants: ['ops'] }],
      },
    ],
    policies: { files: [join(demoPolicies, 'access.cedar')] },
    admins: ['admins'],
    tokens: {
      key_encryption_key: { env: 'TEST_KEK' },
      access_token_ttl: '15m',
      session_ttl: '1h',
      rotation_overlap: '2h',
    },
  };
}

async function writeConfig(): Promise<string> {
  const file = join(dir, 'portcullis.yaml');
  await writeFile(file, stringify(config()));
  return file;
}

async function cli(args: string[], env: Record<string, string>) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
  const io: CliIo = {
    env: { PORTCULLIS_HOME: dir, ...env },
    stdout: sink(out),
    stderr: sink(err),
    stdin: Readable.from([]),
    fetch,
    now: () => Date.now(),
    openBrowser: () => {},
  };
  const code = await runCli(['node', 'portcullis', ...args], io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-cli-offline-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('policy test', () => {
  it('passes the demo cases without any of the configuration secrets set', async () => {
    const file = await writeConfig();
    const { code, stdout, stderr } = await cli(
      ['policy', 'test', join(demoPolicies, 'cases.yaml'), '--config', file],
      {},
    );
    assert.equal(code, exitCodes.ok, stderr);
    assert.match(stdout, /\d+ cases: (\d+) passed, 0 failed\n$/);
  });

  it('exits 10 on a mismatch and explains it', async () => {
    const file = await writeConfig();
    const cases = join(dir, 'cases.yaml');
    await writeFile(
      cases,
      stringify({
        cases: [
          {
            name: 'engineers may read the audit log (wrong on purpose)',
            principal: { id: 'demo:alice', groups: ['engineering'] },
            action: 'view_audit',
            context: { at: '2026-11-24T10:00:00' },
            expect: 'allow',
          },
        ],
      }),
    );
    const { code, stdout } = await cli(['policy', 'test', cases, '--json'], { PORTCULLIS_CONFIG: file });
    assert.equal(code, exitCodes.verificationFailed);
    const report = JSON.parse(stdout) as { failed: number; results: { passed: boolean; message: string }[] };
    assert.equal(report.failed, 1);
    assert.match(report.results[0]?.message ?? '', /expected allow, got deny/);
  });

  it('a missing cases file is a usage error', async () => {
    const { code, stderr } = await cli(['policy', 'test', join(dir, 'nope.yaml')], {});
    assert.equal(code, exitCodes.usage);
    assert.match(stderr, /Cannot read .*nope\.yaml: no such file/);
  });
});

describe('keys rotate', () => {
  let storageUrl: string;
  before(async () => {
    storageUrl = `sqlite:${join(dir, 'portcullis.db')}`;
    await writeConfig();
  });

  async function withKeys<T>(work: (keys: SigningKeyStore) => Promise<T>): Promise<T> {
    const store = await openStore(storageUrl);
    try {
      const box = new JweSecretBox(Buffer.from(kek, 'base64url'));
      return await work(new SigningKeyStore(store.keys, box, { longestTokenLifetimeSeconds: 3600 }));
    } finally {
      await store.close();
    }
  }

  it('refuses to create the first key (the server does that) and explains', async () => {
    const { code, stderr } = await cli(['keys', 'rotate', '--config', join(dir, 'portcullis.yaml')], {
      TEST_STORAGE_URL: storageUrl,
      TEST_KEK: kek,
    });
    assert.equal(code, exitCodes.conflict);
    assert.match(stderr, /There is no active token signing key yet\nhint: start the server once/);
  });

  it('adds a key the servers can open and keeps the old one published for the overlap', async () => {
    const before = await withKeys(async (keys) => (await keys.ensureActiveKey('token', Date.now())).kid);
    const { code, stdout, stderr } = await cli(
      ['keys', 'rotate', '--config', join(dir, 'portcullis.yaml'), '--json'],
      { TEST_STORAGE_URL: storageUrl, TEST_KEK: kek },
    );
    assert.equal(code, exitCodes.ok, stderr);
    const result = JSON.parse(stdout) as { kid: string; retired_kids: string[]; publish_until: string };
    assert.deepEqual(result.retired_kids, [before]);
    const overlap = Date.parse(result.publish_until) - Date.now();
    assert.ok(overlap > 7100_000 && overlap <= 7200_000, `published for the 2h overlap, not ${overlap} ms`);
    await withKeys(async (keys) => {
      assert.equal(
        (await keys.activeSigningKey('token')).kid,
        result.kid,
        'the server side opens the new key',
      );
      assert.deepEqual(
        (await keys.publicKeys('token', Date.now())).keys.map((k) => k.kid),
        [result.kid, before],
      );
    });
    const store = await openStore(storageUrl);
    try {
      const events = await store.auditLog.read(0, 100);
      const rotation = events.find((e) => e.type === 'keys.rotated');
      assert.equal(rotation?.data?.kid, result.kid, 'the rotation is audited');
    } finally {
      await store.close();
    }
  });

  it('refuses to rotate with another key-encryption key, adding nothing', async () => {
    const active = await withKeys(async (keys) => (await keys.activeSigningKey('token')).kid);
    const { code, stderr } = await cli(['keys', 'rotate', '--config', join(dir, 'portcullis.yaml')], {
      TEST_STORAGE_URL: storageUrl,
      TEST_KEK: randomBytes(32).toString('base64url'),
    });
    assert.equal(code, exitCodes.usage);
    assert.match(stderr, /error\[config_invalid\]: The value was sealed with a different key-encryption key/);
    assert.equal(await withKeys(async (keys) => (await keys.activeSigningKey('token')).kid), active);
  });

  it('needs the storage URL and key-encryption key for real', async () => {
    const { code, stderr } = await cli(['keys', 'rotate', '--config', join(dir, 'portcullis.yaml')], {
      TEST_KEK: kek,
    });
    assert.equal(code, exitCodes.usage);
    assert.match(
      stderr,
      /storage\.url comes from the environment variable TEST_STORAGE_URL, which is not set/,
    );
  });
});

describe('idp test', () => {
  async function writeIdpConfig(): Promise<string> {
    const file = join(dir, 'portcullis-idp.yaml');
    const base = config();
    await writeFile(join(dir, 'corp-metadata.xml'), corpMetadata);
    await writeFile(
      file,
      stringify({
        ...base,
        identity_providers: [
          {
            ...base.identity_providers[0],
            allow: [{ email_domain: 'corp.example' }],
            deny: [{ claim: 'employee_type', equals: 'contractor' }],
            group_mapping: { 'Eng-Prod': ['engineering'] },
            mapping_rules: [{ when: { claim: 'department', equals: ['SRE', 'Ops'] }, groups: ['sre'] }],
          },
          {
            id: 'corp-saml',
            type: 'saml',
            display_name: 'Corp SAML',
            metadata_file: 'corp-metadata.xml',
            groups_attribute: 'memberOf',
            email_attribute: 'mail',
          },
        ],
      }),
    );
    return file;
  }
  const corpMetadata =
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.corp.example">' +
    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing">' +
    '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>MIIBfake</ds:X509Certificate></ds:X509Data></ds:KeyInfo>' +
    '</md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/sso"/>' +
    '</md:IDPSSODescriptor></md:EntityDescriptor>';

  it('prints the groups and why, offline, without the secrets', async () => {
    const file = await writeIdpConfig();
    const claims = join(dir, 'alice.json');
    await writeFile(
      claims,
      JSON.stringify({
        sub: '00u1',
        email: 'alice@corp.example',
        groups: ['Eng-Prod', 'Everyone'],
        department: 'SRE',
      }),
    );
    const { code, stdout, stderr } = await cli(
      ['idp', 'test', 'demo', '--claims', claims, '--config', file],
      {},
    );
    assert.equal(code, exitCodes.ok, stderr);
    assert.match(stdout, /principal +demo:00u1/);
    assert.match(stdout, /sign-in +allowed \(allow\[0\] matched\)/);
    assert.match(stdout, /groups +engineering, sre/);
    assert.match(stdout, /engineering ← group_mapping\["Eng-Prod"\]/);
    assert.match(stdout, /sre ← mapping_rules\[0\]/);
  });

  it('exits 4 and names the rule when the user is denied', async () => {
    const file = await writeIdpConfig();
    const claims = join(dir, 'contractor.yaml');
    await writeFile(
      claims,
      stringify({ sub: '00u2', email: 'bob@corp.example', employee_type: 'contractor' }),
    );
    const { code, stdout } = await cli(
      ['idp', 'test', 'demo', '--claims', claims, '--config', file, '--json'],
      {},
    );
    assert.equal(code, exitCodes.forbidden);
    const result = JSON.parse(stdout) as { allowed: boolean; reason: string; groups: string[] };
    assert.deepEqual([result.allowed, result.reason, result.groups], [false, 'deny[0] matched', []]);
    const outsider = join(dir, 'outsider.json');
    await writeFile(outsider, JSON.stringify({ sub: '00u3', email: 'eve@elsewhere.example' }));
    const denied = await cli(['idp', 'test', 'demo', '--claims', outsider, '--config', file], {});
    assert.equal(denied.code, exitCodes.forbidden);
    assert.match(denied.stdout, /sign-in +DENIED \(no allow rule matched\)/);
  });

  it('reads SAML attributes by their configured names', async () => {
    const file = await writeIdpConfig();
    const attributes = join(dir, 'saml.yaml');
    await writeFile(
      attributes,
      stringify({ NameID: 'erin', mail: 'erin@corp.example', memberOf: ['sre', 'Domain Users'] }),
    );
    const { code, stdout } = await cli(
      ['idp', 'test', 'corp-saml', '--claims', attributes, '--config', file, '--json'],
      {},
    );
    assert.equal(code, exitCodes.ok);
    const result = JSON.parse(stdout) as { principal: string; email: string; groups: string[] };
    assert.deepEqual(
      [result.principal, result.email, result.groups],
      ['corp-saml:erin', 'erin@corp.example', ['sre']],
    );
  });

  it('an unknown identity provider is a usage error', async () => {
    const file = await writeIdpConfig();
    const claims = join(dir, 'empty.json');
    await writeFile(claims, '{}');
    const { code, stderr } = await cli(['idp', 'test', 'nope', '--claims', claims, '--config', file], {});
    assert.equal(code, exitCodes.usage);
    assert.match(stderr, /No identity provider "nope"/);
  });
});
