/**
 * Certificates for keys their holders made (docs/provisioners.md#bring-your-own-key): the requester
 * of a live grant of an `ssh` resource sends an Ed25519 public key and gets a certificate for it,
 * with the grant's serial, principals, options and end. The private key never reaches Portcullis;
 * the certificate is audited as `ssh.key_certified` before it is returned.
 */
import type { RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition } from '../core/resource.js';
import type { SshProvisioner } from '../provisioners/ssh-provisioner.js';
import { ed25519KeysOfAuthorizedKeys } from '../ssh/ssh-wire.js';
import type { AccessService } from './access-service.js';

export interface CertifiedSshKey {
  readonly grantId: string;
  /** `ssh-ed25519-cert-v01@openssh.com AAAA… portcullis-<grant>`: the `-cert.pub` file. */
  readonly certificate: string;
  /** `SHA256:…` of the certified key, as sshd logs it. */
  readonly fingerprint: string;
  readonly serial: string;
  readonly login: string;
  readonly principals: readonly string[];
  /** Milliseconds since the epoch: the grant's end. */
  readonly validBefore: number;
  /** The resource's `host` and `port`, when configured. */
  readonly host?: { readonly name: string; readonly port: number };
}

export class SshKeyCertification {
  constructor(
    private readonly deps: {
      readonly access: Pick<AccessService, 'liveGrantOfRequester' | 'auditGrantUse'>;
      readonly resources: ReadonlyMap<string, ResourceDefinition>;
      readonly provisioner: SshProvisioner;
      readonly clock: Clock;
    },
  ) {}

  async certify(
    principal: Principal,
    grantId: string,
    publicKeyLine: string,
    from: RequestOrigin,
  ): Promise<CertifiedSshKey> {
    const publicKey = ed25519PublicKeyOf(publicKeyLine);
    const { grant } = await this.deps.access.liveGrantOfRequester(principal, grantId);
    const resource = this.deps.resources.get(grant.resourceId);
    const role = resource?.roles.get(grant.role);
    if (resource?.kind !== 'ssh' || !role)
      throw new PortcullisError('validation_failed', `Grant ${grantId} is not on an ssh resource`);
    const certified = this.deps.provisioner.certifyKey({ grant, resource, role }, publicKey);
    // Fail closed: a certificate whose issue is not on record is never handed out.
    await this.deps.access.auditGrantUse('ssh.key_certified', principal, grant, from, this.deps.clock.now(), {
      fingerprint: certified.fingerprint,
      serial: certified.serial.toString(),
      validBefore: certified.validBefore * 1000,
    });
    return {
      grantId: grant.id,
      certificate: certified.certificate,
      fingerprint: certified.fingerprint,
      serial: certified.serial.toString(),
      login: role.grants[0] as string,
      principals: role.grants,
      validBefore: certified.validBefore * 1000,
      ...(certified.host ? { host: certified.host } : {}),
    };
  }
}

/** The raw key of one `ssh-ed25519 AAAA… [comment]` line; anything else is a validation error. */
function ed25519PublicKeyOf(line: string): Buffer {
  const trimmed = line.trim();
  if (trimmed.includes('\n'))
    throw new PortcullisError('validation_failed', 'public_key must be one key: a single line');
  let parsed: ReturnType<typeof ed25519KeysOfAuthorizedKeys>;
  try {
    parsed = ed25519KeysOfAuthorizedKeys(trimmed);
  } catch {
    throw new PortcullisError('validation_failed', 'public_key is not a well-formed ssh-ed25519 key');
  }
  const [key] = parsed.keys;
  if (!key || parsed.others > 0)
    throw new PortcullisError(
      'validation_failed',
      `Only ssh-ed25519 keys can be certified, not ${JSON.stringify(trimmed.split(/\s+/)[0]?.slice(0, 40) ?? '')}`,
      { supported: ['ssh-ed25519'] },
    );
  return key;
}
