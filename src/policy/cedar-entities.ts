/**
 * The entity slice of one decision: the User (parents = its groups), its Groups, and for role
 * actions the Resource and the Role; for `view_audit` the AuditLog. Nothing else is passed,
 * because cedar-wasm charges for every entity and attribute it has to read in.
 */
import type { EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
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
export function userEntities(principal: Principal): EntityJson[] {
  const attrs: Record<string, string> = { idp: principal.idp };
  if (principal.email !== null) attrs.email = principal.email;
  const entities: EntityJson[] = [
    { uid: userUid(principal.id) as EntityUidJson, attrs, parents: principal.groups.map(groupUid) },
  ];
  for (const group of principal.groups) entities.push({ uid: groupUid(group), attrs: {}, parents: [] });
  return entities;
}

/** The Resource and one of its Roles (the Role's parent is the Resource). */
export function roleEntities(resource: ResourceDefinition, role: RoleDefinition): EntityJson[] {
  const labels = labelSet(resource.labels);
  const owners = resource.owners.map((g) => entityRef(groupUid(g)));
  return [
    {
      uid: resourceUid(resource.id),
      attrs: { kind: resource.kind, sensitivity: resource.sensitivity, labels, owners },
      parents: [],
    },
    {
      uid: roleUid(resource.id, role.name),
      attrs: {
        name: role.name,
        resource_id: resource.id,
        kind: resource.kind,
        sensitivity: resource.sensitivity,
        labels,
        owners,
      },
      parents: [resourceUid(resource.id)],
    },
  ];
}
