import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newGrant } from '../core/grant.js';
import type { ResourceDefinition } from '../core/resource.js';
import { TokenProvisioner } from './token-provisioner.js';

const role = { name: 'read', description: '', grants: ['orders:read'] };
const resource: ResourceDefinition = {
  id: 'orders-api',
  kind: 'token',
  description: '',
  sensitivity: 'medium',
  labels: {},
  owners: [],
  roles: new Map([[role.name, role]]),
};

describe('TokenProvisioner', () => {
  it('has nothing to plan, create, take back or find outside Portcullis', async () => {
    const provisioner = new TokenProvisioner();
    assert.equal(provisioner.kind, 'token');
    assert.deepEqual(provisioner.plan({ id: 'g1' }, resource), {});
    const grant = newGrant({
      id: 'g1',
      requestId: 'r1',
      principalId: 'okta:alice',
      resourceId: resource.id,
      role: role.name,
      notBefore: 0,
      expiresAt: 60_000,
      artefacts: {},
    });
    assert.deepEqual(await provisioner.apply({ grant, resource, role }), { artefacts: {} });
    await provisioner.revoke({ grant, resource, role });
    await provisioner.revoke({ grant, resource, role });
    assert.equal(await provisioner.inspect(resource), null);
    await provisioner.close();
  });
});
