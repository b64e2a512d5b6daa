/**
 * What the hosts of `ssh` resources fetch (docs/provisioners.md#ssh-a-short-lived-openssh-certificate-per-grant):
 * the certificate authority's public key, and the revocation list of the certificates whose grants
 * ended before their time. Undefined answers mean "no such ssh resource".
 */
import type { Store } from '../app/ports.js';
import type { Clock } from '../core/clock.js';
import type { ResourceDefinition } from '../core/resource.js';
import type { SshHostMaterial } from '../http/context.js';
import { type SshProvisioner, sshSerialOf } from './ssh-provisioner.js';

/** A grant stays listed this long past its end: a host whose clock runs behind still accepts it. */
const hostClockSkewMs = 5 * 60_000;

export function sshHostMaterial(deps: {
  readonly store: Pick<Store, 'grants'>;
  readonly provisioner: SshProvisioner;
  readonly resources: ReadonlyMap<string, ResourceDefinition>;
  readonly clock: Clock;
}): SshHostMaterial {
  const sshResource = (id: string) => {
    const resource = deps.resources.get(id);
    return resource?.kind === 'ssh' ? resource : undefined;
  };
  return {
    caPublicKey(id) {
      const resource = sshResource(id);
      return resource && deps.provisioner.authority(resource).publicKeyLine(`portcullis-ca:${id}`);
    },
    async revocationList(id) {
      const resource = sshResource(id);
      if (!resource) return undefined;
      const now = deps.clock.now();
      const ended = await deps.store.grants.listEndedBeforeTheirTime(id, now - hostClockSkewMs);
      const serials = ended.flatMap((grant) => sshSerialOf(grant.artefacts) ?? []);
      return deps.provisioner.authority(resource).revocationList(serials, now, `portcullis ${id}`);
    },
  };
}
