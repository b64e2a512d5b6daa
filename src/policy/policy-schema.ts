/**
 * The Cedar schema every policy is validated against (namespace `Portcullis`).
 *
 * The text lives in this module rather than being read from disk so that a compiled `dist/` build
 * carries it without copying assets. `portcullis.cedarschema` next to this file is the identical
 * text for editors and the `cedar` CLI; `policy-schema.test.ts` fails when the two drift apart.
 */
export const portcullisSchemaText = `// The Cedar schema Portcullis validates every policy against at start-up.
//
// This file is a readable copy for editors and the "cedar" CLI
// ("cedar validate --schema portcullis.cedarschema --policies access.cedar").
// At run time Portcullis uses the identical text in policy-schema.ts, so a compiled dist/ build
// needs no extra file; a test fails if the two drift apart.
namespace Portcullis {
  // A Portcullis group, as mapped from the identity provider's claims. Groups are flat.
  entity Group;

  // A person as an identity provider asserts them. Id: "idp:subject"; parents: their groups.
  entity User in [Group] {
    idp: String,
    email?: String,
  };

  // Something access is granted to. Id: the resource id from the configuration.
  // It is the parent of its roles, so a scope can say resource in Portcullis::Resource::"demo-db".
  // Its facts (kind, sensitivity, labels, owners) are attributes of each Role: giving them twice
  // would cost every decision a second entity to read in.
  entity Resource;

  // A requestable role on a resource. Id: "resource-id/role-name"; parent: its Resource.
  // Carries the resource's facts, so a policy says "resource.owners", "resource.kind".
  entity Role in [Resource] {
    name: String,
    resource_id: String,
    kind: String,
    sensitivity: String,
    labels: Set<String>,
    owners: Set<Group>,
  };

  // The audit log (one entity, id "audit"), the resource of "view_audit".
  entity AuditLog;

  // Facts of the decision. Times are in the configured time zone.
  type DecisionContext = {
    // Requested (or, for approve/revoke, the reviewed request's) length, rounded up to minutes.
    duration_minutes: Long,
    // 0..23
    hour: Long,
    // "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"
    weekday: String,
    // "" when none was given.
    reason: String,
    // "" when none was given; see has_ticket.
    ticket: String,
    has_ticket: Bool,
    // Sensitivity of the resource concerned ("" for view_audit).
    sensitivity: String,
    // Where the action came from: "api", "cli", ...
    source: String,
    // Principal id of the requester (for approve/revoke: of the request under review).
    requester: String,
  };

  action request, approve, revoke appliesTo {
    principal: [User],
    resource: [Role],
    context: DecisionContext,
  };

  action view_audit appliesTo {
    principal: [User],
    resource: [AuditLog],
    context: DecisionContext,
  };
}
`;

/** Fully qualified Cedar names used when building requests and entities. */
export const cedarTypes = {
  user: 'Portcullis::User',
  group: 'Portcullis::Group',
  resource: 'Portcullis::Resource',
  role: 'Portcullis::Role',
  auditLog: 'Portcullis::AuditLog',
  action: 'Portcullis::Action',
} as const;

/** Id of the single `AuditLog` entity, the resource of `view_audit`. */
export const auditLogId = 'audit';
