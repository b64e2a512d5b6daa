/**
 * The entity slice of one decision: the User (parents = its groups) and, for role actions, the Role
 * (parent = its Resource). Nothing else is passed, because cedar-wasm charges for every entity and
 * attribute it reads in (measured here: about 45 µs for the User, 100 µs for the Role).
 *
 * Group, Resource and AuditLog entities are deliberately left out: they have no attributes, groups
 * and resources have no parents, and Cedar treats an entity it is not given as one without
 * attributes or parents. So `principal in Portcullis::Group::"sre"` and `resource in
 * Portcullis::Resource::"demo-db"` (answered from the User's and the Role's parents) and every other
 * expression evaluate exactly as if they were passed; policy-index.test.ts checks this against a
 * reference that passes them.
 */
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../core/principal.js';
import type { ResourceDefinition, RoleDefinition } from '../core/resource.js';
import { auditLogId, cedarTypes } from './policy-schema.js';

type Uid = { readonly type: string; readonly id: string };

export function userUid(principalId: string): Uid {
  return { type: cedarTypes.user, id: principalId };
}

export function groupUid(group: string): Uid {
  return { type: cedarTypes.group, id: group };
}

export function resourceUid(resourceId: string): Uid {
  return { type: cedarTypes.resource, id: resourceId };
}

/** Role ids are `resource-id/role-name`; resource ids cannot contain `/`, so the split is unambiguous. */
export function roleEntityId(resourceId: string, roleName: string): string {
  return `${resourceId}/${roleName}`;
}

export function roleUid(resourceId: string, roleName: string): Uid {
  return { type: cedarTypes.role, id: roleEntityId(resourceId, roleName) };
}

export const auditLogUid: Uid = { type: cedarTypes.auditLog, id: auditLogId };

export function actionUid(action: string): Uid {
  return { type: cedarTypes.action, id: action };
}

function labelSet(labels: Readonly<Record<string, string>>): string[] {
  return Object.entries(labels).map(([key, value]) => `${key}=${value}`);
}

function entityRef(uid: Uid): { __entity: Uid } {
  return { __entity: uid };
}

/** The principal as a Cedar User whose parents are its groups. */
export function userEntity(principal: Principal): EntityJson {
  const attrs: Record<string, string> = { idp: principal.idp };
  if (principal.email !== null) attrs.email = principal.email;
  return { uid: userUid(principal.id), attrs, parents: principal.groups.map(groupUid) };
}

/**
 * The Role, carrying its resource's facts. Its parent is the Resource, which is not passed: it has
 * no attributes, and `resource in Portcullis::Resource::"x"` is answered from the Role's parents.
 */
export function roleEntity(resource: ResourceDefinition, role: RoleDefinition): EntityJson {
  return {
    uid: roleUid(resource.id, role.name),
    attrs: {
      name: role.name,
      resource_id: resource.id,
      kind: resource.kind,
      sensitivity: resource.sensitivity,
      labels: labelSet(resource.labels),
      owners: resource.owners.map((g) => entityRef(groupUid(g))),
    },
    parents: [resourceUid(resource.id)],
  };
}
