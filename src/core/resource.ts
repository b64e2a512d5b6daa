/** A thing access is granted to, and the named roles that can be requested on it. */
export type Sensitivity = 'low' | 'medium' | 'high' | 'critical';

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  /** What the provisioner grants for this role (PostgreSQL roles, token scopes, …). */
  readonly grants: readonly string[];
}

export interface ResourceDefinition {
  readonly id: string;
  /** Selects the provisioner adapter, e.g. `postgres` or `token`. */
  readonly kind: string;
  readonly description: string;
  readonly sensitivity: Sensitivity;
  readonly labels: Readonly<Record<string, string>>;
  /** Portcullis groups that own the resource (may revoke its grants). */
  readonly owners: readonly string[];
  readonly roles: ReadonlyMap<string, RoleDefinition>;
}

/** A login name as `useradd` takes it: what an `ssh` resource's roles grant (certificate principals). */
export const loginName = /^[a-z_][a-z0-9_.-]{0,31}$/;
