/**
 * The `ssh` provisioner (docs/provisioners.md#ssh): access to hosts that trust the resource's SSH
 * certificate authority (sshd `TrustedUserCAKeys`). On activation Portcullis makes a fresh Ed25519
 * key pair and an OpenSSH user certificate for it: the role's logins as principals, valid until
 * the grant's end (never later), the key id naming the grant and the person (sshd logs it with
 * every login), and the resource's extensions and critical options. The private key and the
 * certificate are the credentials, sealed and shown to the requester only.
 *
 * A certificate cannot be recalled from the person who holds it: it stops working at its
 * `valid before`, which is the grant's end. A grant ended earlier is listed by serial in the
 * resource's key revocation list (`/ssh/{resource}/revoked.krl`, sshd `RevokedKeys`) until that
 * time, so revocation reaches hosts as often as they fetch the list. Nothing is kept on the hosts,
 * so there is nothing to inspect: reconciliation has no target state to compare for this kind.
 */
import { randomBytes } from 'node:crypto';
import type { ProvisionContext, Provisioner, ProvisionResult } from '../app/ports.js';
import type { ConfiguredResource, SshTargetSettings } from '../config/load.js';
import { type Clock, systemClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Artefacts, Grant } from '../core/grant.js';
import type { ResourceDefinition } from '../core/resource.js';
import { type CertificateRequest, SshCertificateAuthority } from '../ssh/ssh-certificate-authority.js';

/** A certificate is valid from this long before it is made: hosts whose clocks run behind accept it. */
const clockSkewSeconds = 60;

/** What a grant of an `ssh` resource keeps: the serial the revocation list names. */
export function sshSerialOf(artefacts: Artefacts): bigint | undefined {
  const serial = artefacts.serial;
  return typeof serial === 'string' && /^[0-9]{1,20}$/.test(serial) ? BigInt(serial) : undefined;
}

export class SshProvisioner implements Provisioner {
  readonly kind = 'ssh';
  readonly activatesInProcess = false;
  readonly #clock: Clock;
  readonly #authorities = new Map<string, SshCertificateAuthority>();

  constructor(options: { readonly clock?: Clock } = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * A random 63-bit serial, fixed before the certificate is made so a retry keeps it. Never 0:
   * OpenSSH refuses a revocation list that names serial 0.
   */
  plan(_grant: Pick<Grant, 'id'>, _resource: ResourceDefinition): Artefacts {
    const serial = randomBytes(8).readBigUInt64BE() & 0x7fff_ffff_ffff_ffffn;
    return { serial: (serial === 0n ? 1n : serial).toString() };
  }

  async apply(context: ProvisionContext): Promise<ProvisionResult> {
    const { grant, role } = context;
    const settings = sshSettingsOf(context.resource);
    const request = this.#certificateRequest(context);
    const issued = this.authority(context.resource).issueUserCertificate(request);
    const login = role.grants[0] as string;
    const credentials: Record<string, string> = {
      login,
      principals: role.grants.join(','),
      valid_before: new Date(request.validBefore * 1000).toISOString(),
      private_key: issued.privateKey,
      certificate: issued.certificate,
    };
    if (settings.host) {
      const port = settings.port === 22 ? '' : ` -p ${settings.port}`;
      credentials.host = settings.host;
      credentials.port = String(settings.port);
      credentials.ssh_command = `ssh -i KEY_FILE -o CertificateFile=CERT_FILE${port} ${login}@${settings.host}`;
    }
    return {
      artefacts: {
        serial: request.serial.toString(),
        fingerprint: issued.fingerprint,
        valid_before: request.validBefore,
      },
      credentials,
    };
  }

  /**
   * A certificate of a live grant for a key its holder made (the raw Ed25519 public key): the same
   * serial, principals, options and end as the grant's own certificate, so the revocation list
   * and `ssh-guard` treat both alike.
   */
  certifyKey(
    context: ProvisionContext,
    publicKey: Uint8Array,
  ): {
    certificate: string;
    fingerprint: string;
    serial: bigint;
    validBefore: number;
    host?: { name: string; port: number };
  } {
    const request = this.#certificateRequest(context);
    const certified = this.authority(context.resource).certifyPublicKey(publicKey, request);
    const { host, port } = sshSettingsOf(context.resource);
    return {
      ...certified,
      serial: request.serial,
      validBefore: request.validBefore,
      ...(host ? { host: { name: host, port } } : {}),
    };
  }

  #certificateRequest(context: ProvisionContext): CertificateRequest {
    const { grant, role } = context;
    const settings = sshSettingsOf(context.resource);
    const serial = sshSerialOf(grant.artefacts);
    if (serial === undefined)
      throw new PortcullisError('provisioning_failed', 'The grant has no certificate serial');
    const now = Math.floor(this.#clock.now() / 1000);
    const validBefore = Math.floor(grant.expiresAt / 1000);
    if (validBefore <= now) throw new PortcullisError('provisioning_failed', 'The grant has already ended');
    const criticalOptions: Record<string, string> = {};
    if (settings.sourceAddresses) criticalOptions['source-address'] = settings.sourceAddresses.join(',');
    if (settings.forceCommand) criticalOptions['force-command'] = settings.forceCommand;
    return {
      serial,
      keyId: `portcullis grant ${grant.id} for ${grant.principalId}`,
      principals: role.grants,
      validAfter: now - clockSkewSeconds,
      validBefore,
      criticalOptions,
      extensions: Object.fromEntries(settings.extensions.map((name) => [name, ''])),
      comment: `portcullis-${grant.id}`,
    };
  }

  /** Nothing to take back on the hosts: the revocation list names the grant's serial from now on. */
  async revoke(_context: ProvisionContext): Promise<void> {}

  async inspect(_resource: ResourceDefinition): Promise<null> {
    return null;
  }

  /** The certificate authority of an `ssh` resource, read from its secret once. */
  authority(resource: ResourceDefinition): SshCertificateAuthority {
    let authority = this.#authorities.get(resource.id);
    if (!authority) {
      try {
        authority = SshCertificateAuthority.fromPrivateKey(sshSettingsOf(resource).caKey.reveal());
      } catch (error) {
        if (error instanceof PortcullisError) throw error;
        throw new PortcullisError(
          'config_invalid',
          `The SSH certificate authority key of ${resource.id} cannot be used: ${(error as Error).message}`,
        );
      }
      this.#authorities.set(resource.id, authority);
    }
    return authority;
  }

  async close(): Promise<void> {}
}

function sshSettingsOf(resource: ResourceDefinition): SshTargetSettings {
  const settings = (resource as ConfiguredResource).ssh;
  if (!settings) throw new PortcullisError('config_invalid', `Resource ${resource.id} has no ssh settings`);
  return settings;
}
