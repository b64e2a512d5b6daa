import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Provisioner } from '../app/ports.js';
import { isPortcullisError } from '../core/errors.js';
import type { ResourceDefinition } from '../core/resource.js';
import { ProvisionerRegistry } from './provisioner-registry.js';
import { TokenProvisioner } from './token-provisioner.js';

function fake(kind: string, onClose: () => Promise<void> = async () => {}): Provisioner {
  return {
    kind,
    activatesInProcess: false,
    plan: () => ({}),
    apply: async () => ({ artefacts: {} }),
    revoke: async () => {},
    inspect: async () => [],
    close: onClose,
  };
}

const resourceOfKind = (id: string, kind: string) => ({ id, kind }) as ResourceDefinition;

describe('ProvisionerRegistry', () => {
  it('finds a provisioner by kind', () => {
    const token = new TokenProvisioner();
    const registry = new ProvisionerRegistry([token, fake('postgres')]);
    assert.equal(registry.get('token'), token);
    assert.deepEqual(registry.kinds(), ['postgres', 'token']);
  });

  it('names the registered kinds when asked for an unknown one', () => {
    const registry = new ProvisionerRegistry([new TokenProvisioner()]);
    assert.throws(
      () => registry.get('ssh'),
      (error: unknown) =>
        isPortcullisError(error) &&
        error.code === 'config_invalid' &&
        error.message === 'No provisioner is registered for resource kind "ssh" (registered: token)',
    );
  });

  it('refuses two provisioners for one kind', () => {
    assert.throws(() => new ProvisionerRegistry([fake('token'), fake('token')]), /already registered/);
  });

  it('checks at start-up that every resource has a provisioner', () => {
    const registry = new ProvisionerRegistry([fake('postgres')]);
    registry.assertCovers([resourceOfKind('prod-db', 'postgres')]);
    assert.throws(
      () => registry.assertCovers([resourceOfKind('prod-db', 'postgres'), resourceOfKind('api', 'token')]),
      /resource api \(kind "token"\)/,
    );
  });

  it('closes every provisioner even when one fails', async () => {
    const closed: string[] = [];
    const registry = new ProvisionerRegistry([
      fake('a', async () => {
        throw new Error('a failed');
      }),
      fake('b', async () => {
        closed.push('b');
      }),
    ]);
    await assert.rejects(registry.close(), /a failed/);
    assert.deepEqual(closed, ['b']);
  });
});
