/**
 * The `token` provisioner. For a `token` resource the access *is* the Portcullis-signed token
 * (JWT with the grant id, role and an `exp` no later than the grant's end; introspection answers
 * `active: false` once the grant ends). There is nothing outside Portcullis to create or take back,
 * so apply and revoke touch nothing external and always succeed, and inspect answers null: the
 * reconciler has no target state to compare for this kind.
 */
import type { ProvisionContext, Provisioner, ProvisionResult } from '../app/ports.js';
import type { Artefacts, Grant } from '../core/grant.js';
import type { ResourceDefinition } from '../core/resource.js';

/** Provisioner for resources whose access is the Portcullis token itself; stateless. */
export class TokenProvisioner implements Provisioner {
  readonly kind = 'token';
  readonly activatesInProcess = true;

  /** Nothing to name in advance: `{}`. */
  plan(_grant: Pick<Grant, 'id'>, _resource: ResourceDefinition): Artefacts {
    return {};
  }

  /** Nothing external changes; the token service issues the credential from the grant. */
  async apply(_context: ProvisionContext): Promise<ProvisionResult> {
    return { artefacts: {} };
  }

  /** Nothing external to undo: the token stops being valid with the grant (introspection, `exp`). */
  async revoke(_context: ProvisionContext): Promise<void> {}

  /** No external state to compare. */
  async inspect(_resource: ResourceDefinition): Promise<null> {
    return null;
  }

  async close(): Promise<void> {}
}
