/**
 * The ssh provisioner's rules without a host (the real sshd is src/server/ssh-access.test.ts):
 * what goes into the certificate, never past the grant's end, and what it refuses.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ProvisionContext } from '../app/ports.js';
import type { ConfiguredResource, SshTargetSettings } from '../config/load.js';
import { Secret } from '../config/secret.js';
import { ManualClock } from '../core/clock.js';
import type { Grant } from '../core/grant.js';
import { ed25519CertificateType } from '../ssh/ssh-wire.js';
import { SshProvisioner, sshSerialOf } from './ssh-provisioner.js';

const now = Date.UTC(2026, 10, 24, 12, 0, 0);
const caPem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

function resource(overrides: Partial<SshTargetSettings> = {}): ConfiguredResource {
  return {
    id: 'hosts',
    kind: 'ssh',
    description: '',
    sensitivity: 'high',
    labels: {},
    owners: [],
    roles: new Map([['ops', { name: 'ops', description: '', grants: ['deploy', 'ops'] }]]),
    ssh: {
      caKey: new Secret(caPem, 'ca key'),
      extensions: ['permit-pty'],
      sourceAddresses: undefined,
      forceCommand: undefined,
      host: 'bastion.example.com',
      port: 2222,
      sessionReportTokens: [],
      ...overrides,
    },
  };
}

function context(
  provisioner: SshProvisioner,
  target: ConfiguredResource,
  expiresAt: number,
): ProvisionContext {
  const grant = {
    id: 'g-1',
    principalId: 'okta:00u1',
    expiresAt,
    artefacts: provisioner.plan({ id: 'g-1' }, target),
  } as unknown as Grant;
  return { grant, resource: target, role: target.roles.get('ops') as ProvisionContext['role'] };
}

/** The certificate's fields after the key id, read back from its blob (validity and options). */
function validity(certificate: string): { after: bigint; before: bigint } {
  const blob = Buffer.from(certificate.split(' ')[1] as string, 'base64');
  let offset = 0;
  const string = () => {
    const length = blob.readUInt32BE(offset);
    offset += 4 + length;
  };
  string(); // type
  string(); // nonce
  string(); // key
  offset += 8 + 4; // serial, type
  string(); // key id
  string(); // principals
  const after = blob.readBigUInt64BE(offset);
  const before = blob.readBigUInt64BE(offset + 8);
  return { after, before };
}

describe('SshProvisioner', () => {
  it('certifies a fresh key for the role’s logins until the grant’s end, with the command to use it', async () => {
    const provisioner = new SshProvisioner({ clock: new ManualClock(now) });
    const target = resource();
    const ctx = context(provisioner, target, now + 30 * 60_000);
    const serial = sshSerialOf(ctx.grant.artefacts);
    assert.ok(serial !== undefined && serial < 2n ** 63n);
    const { artefacts, credentials } = await provisioner.apply(ctx);
    assert.equal(artefacts.serial, serial?.toString());
    assert.match(String(artefacts.fingerprint), /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(credentials?.login, 'deploy');
    assert.equal(credentials?.principals, 'deploy,ops');
    assert.equal(credentials?.valid_before, new Date(now + 30 * 60_000).toISOString());
    assert.equal(
      credentials?.ssh_command,
      'ssh -i KEY_FILE -o CertificateFile=CERT_FILE -p 2222 deploy@bastion.example.com',
    );
    assert.match(String(credentials?.private_key), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.ok(String(credentials?.certificate).startsWith(`${ed25519CertificateType} `));
    const { after, before } = validity(String(credentials?.certificate));
    assert.equal(before, BigInt((now + 30 * 60_000) / 1000));
    assert.equal(after, BigInt(now / 1000 - 60), 'a minute of clock skew, no more');
  });

  it('keeps the planned serial across a retried apply, with a new key each time', async () => {
    const provisioner = new SshProvisioner({ clock: new ManualClock(now) });
    const ctx = context(provisioner, resource(), now + 60_000);
    const first = await provisioner.apply(ctx);
    const second = await provisioner.apply(ctx);
    assert.equal(first.artefacts.serial, second.artefacts.serial);
    assert.notEqual(first.artefacts.fingerprint, second.artefacts.fingerprint);
  });

  it('refuses a grant that has already ended, and a CA key that is not Ed25519', async () => {
    const provisioner = new SshProvisioner({ clock: new ManualClock(now) });
    await assert.rejects(provisioner.apply(context(provisioner, resource(), now)), {
      code: 'provisioning_failed',
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    const target = resource({ caKey: new Secret(rsa.toString(), 'ca key') });
    assert.throws(() => provisioner.authority(target), { code: 'config_invalid' });
  });

  it('has nothing on the hosts to revoke or inspect', async () => {
    const provisioner = new SshProvisioner();
    const target = resource();
    await provisioner.revoke(context(provisioner, target, now + 60_000));
    assert.equal(await provisioner.inspect(target), null);
    assert.equal(sshSerialOf({ serial: 'x' }), undefined);
  });
});
