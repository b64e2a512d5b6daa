/**
 * The SCIM 2.0 wire format (RFC 7643, RFC 7644) as pure functions: reading User and Group bodies,
 * PATCH operations in the shapes Okta and Entra ID send, `eq` filters, and rendering resources.
 * No I/O. Every refusal is a PortcullisError with a `scim_*` code that maps to a `scimType`.
 *
 * What Portcullis keeps of a user is `userName`, `externalId` and `active`; of a group its
 * `displayName`, `externalId` and members. Other attributes of the core User schema and the
 * enterprise extension (name, emails, password, manager…) are accepted and dropped; attributes
 * that belong to no schema, and unknown schema URNs, are refused.
 */
import { type Filter, parse } from 'scim2-parse-filter';
import { type ErrorCode, PortcullisError } from '../core/errors.js';

export const scimUrn = {
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  group: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  patchOp: 'urn:ietf:params:scim:api:messages:2.0:PatchOp',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

export const scimContentType = 'application/scim+json; charset=utf-8';

/** The `scimType` of each SCIM error code (RFC 7644 §3.12). */
export const scimTypes: Partial<Record<ErrorCode, string>> = {
  scim_invalid_filter: 'invalidFilter',
  scim_invalid_syntax: 'invalidSyntax',
  scim_invalid_value: 'invalidValue',
  scim_invalid_path: 'invalidPath',
  scim_no_target: 'noTarget',
  scim_mutability: 'mutability',
  scim_uniqueness: 'uniqueness',
  malformed_json: 'invalidSyntax',
  validation_failed: 'invalidSyntax',
};

/** Most operations in one PATCH request, and most members named in one request. */
export const maxPatchOperations = 1000;
export const maxMembersPerRequest = 10_000;
const maxStringLength = 256;
const maxFilterLength = 1000;
const hostile = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/;

// Attribute names of the core schemas (RFC 7643 §4), lower-cased: SCIM names are case-insensitive.
const userAttributes = new Set(
  [
    'schemas',
    'id',
    'externalId',
    'meta',
    'userName',
    'name',
    'displayName',
    'nickName',
    'profileUrl',
    'title',
    'userType',
    'preferredLanguage',
    'locale',
    'timezone',
    'active',
    'password',
    'emails',
    'phoneNumbers',
    'ims',
    'photos',
    'addresses',
    'groups',
    'entitlements',
    'roles',
    'x509Certificates',
  ].map((a) => a.toLowerCase()),
);
const groupAttributes = new Set(['schemas', 'id', 'externalid', 'meta', 'displayname', 'members']);

export type ScimResourceKind = 'User' | 'Group';

function fail(code: ErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new PortcullisError(code, message, details);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, attribute: string, required: boolean): string | null {
  if (value === undefined || value === null) {
    if (required) fail('scim_invalid_value', `"${attribute}" is required`, { attribute });
    return null;
  }
  if (typeof value !== 'string' || value.trim() === '')
    fail('scim_invalid_value', `"${attribute}" must be a non-empty string`, { attribute });
  if (value.length > maxStringLength || hostile.test(value))
    fail('scim_invalid_value', `"${attribute}" is too long or has control characters`, { attribute });
  return value;
}

/** `active` as a boolean; Entra ID sends the strings "True"/"False" in PATCH values. */
function booleanValue(value: unknown, attribute: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  return fail('scim_invalid_value', `"${attribute}" must be true or false`, { attribute });
}

/** Strips the core-schema URN from a fully qualified attribute name and lower-cases it. */
function attributeName(name: string, kind: ScimResourceKind): string {
  const urn = (kind === 'User' ? scimUrn.user : scimUrn.group).toLowerCase();
  const lower = name.toLowerCase();
  return lower.startsWith(`${urn}:`) ? lower.slice(urn.length + 1) : lower;
}

function checkSchemas(body: Record<string, unknown>, kind: ScimResourceKind): void {
  const schemas = body.schemas;
  const core = kind === 'User' ? scimUrn.user : scimUrn.group;
  const allowed = kind === 'User' ? [scimUrn.user, scimUrn.enterpriseUser] : [scimUrn.group];
  if (
    !Array.isArray(schemas) ||
    !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === core.toLowerCase())
  )
    fail('scim_invalid_syntax', `"schemas" must list ${core}`, { attribute: 'schemas' });
  for (const schema of schemas) {
    if (typeof schema !== 'string' || !allowed.some((a) => a.toLowerCase() === schema.toLowerCase()))
      fail('scim_invalid_syntax', `unsupported schema ${JSON.stringify(schema)}`, { attribute: 'schemas' });
  }
}

/** Top-level keys must be attributes of the resource's schemas (or the enterprise extension). */
function checkAttributes(body: Record<string, unknown>, kind: ScimResourceKind): void {
  const known = kind === 'User' ? userAttributes : groupAttributes;
  for (const key of Object.keys(body)) {
    const name = attributeName(key, kind);
    if (known.has(name)) continue;
    if (kind === 'User' && name === scimUrn.enterpriseUser.toLowerCase()) continue;
    fail('scim_invalid_syntax', `unknown attribute "${key}"`, { attribute: key });
  }
}

function read(body: Record<string, unknown>, attribute: string, kind: ScimResourceKind): unknown {
  for (const [key, value] of Object.entries(body)) if (attributeName(key, kind) === attribute) return value;
  return undefined;
}

/** What Portcullis keeps of a SCIM user. */
export interface UserState {
  readonly userName: string;
  readonly externalId: string | null;
  readonly active: boolean;
}

/** Reads a User body of POST or PUT. */
export function readUserBody(body: unknown): UserState {
  if (!isObject(body)) return fail('scim_invalid_syntax', 'the body must be a SCIM User object');
  checkSchemas(body, 'User');
  checkAttributes(body, 'User');
  const active = read(body, 'active', 'User');
  return {
    userName: text(read(body, 'username', 'User'), 'userName', true) as string,
    externalId: text(read(body, 'externalid', 'User'), 'externalId', false),
    active: active === undefined || active === null ? true : booleanValue(active, 'active'),
  };
}

export interface MemberRef {
  readonly value: string;
}

/** What Portcullis keeps of a SCIM group. */
export interface GroupState {
  readonly displayName: string;
  readonly externalId: string | null;
}

function readMembers(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > maxMembersPerRequest)
    fail('scim_invalid_value', `at most ${maxMembersPerRequest} members per request`, {
      attribute: 'members',
    });
  return list.map((member) => {
    if (
      !isObject(member) ||
      typeof member.value !== 'string' ||
      member.value === '' ||
      member.value.length > 128
    )
      fail('scim_invalid_value', 'each member must be an object with a "value" (the user id)', {
        attribute: 'members',
      });
    return member.value;
  });
}

/** Reads a Group body of POST or PUT: its state and its complete member list. */
export function readGroupBody(body: unknown): { group: GroupState; members: string[] } {
  if (!isObject(body)) return fail('scim_invalid_syntax', 'the body must be a SCIM Group object');
  checkSchemas(body, 'Group');
  checkAttributes(body, 'Group');
  return {
    group: {
      displayName: text(read(body, 'displayname', 'Group'), 'displayName', true) as string,
      externalId: text(read(body, 'externalid', 'Group'), 'externalId', false),
    },
    members: readMembers(read(body, 'members', 'Group')),
  };
}

// ------------------------------------------------------------------ PATCH

export interface PatchOperation {
  readonly op: 'add' | 'remove' | 'replace';
  readonly path: string | null;
  readonly value: unknown;
}

/** Reads a PatchOp body: the operations in order. */
export function readPatchBody(body: unknown): PatchOperation[] {
  if (!isObject(body)) return fail('scim_invalid_syntax', 'the body must be a SCIM PatchOp object');
  const schemas = body.schemas;
  if (
    !Array.isArray(schemas) ||
    schemas.length !== 1 ||
    String(schemas[0]).toLowerCase() !== scimUrn.patchOp.toLowerCase()
  )
    fail('scim_invalid_syntax', `"schemas" must be [${scimUrn.patchOp}]`, { attribute: 'schemas' });
  for (const key of Object.keys(body)) {
    if (!['schemas', 'operations'].includes(key.toLowerCase()))
      fail('scim_invalid_syntax', `unknown attribute "${key}"`, { attribute: key });
  }
  const operations = read(body, 'operations', 'User');
  if (!Array.isArray(operations) || operations.length === 0)
    fail('scim_invalid_syntax', '"Operations" must be a non-empty array', { attribute: 'Operations' });
  if (operations.length > maxPatchOperations)
    fail('scim_invalid_syntax', `at most ${maxPatchOperations} operations per request`);
  return operations.map((operation) => {
    if (!isObject(operation)) return fail('scim_invalid_syntax', 'each operation must be an object');
    for (const key of Object.keys(operation)) {
      if (!['op', 'path', 'value'].includes(key.toLowerCase()))
        fail('scim_invalid_syntax', `unknown operation member "${key}"`);
    }
    const op = read(operation, 'op', 'User');
    const path = read(operation, 'path', 'User');
    const value = read(operation, 'value', 'User');
    if (typeof op !== 'string' || !['add', 'remove', 'replace'].includes(op.toLowerCase()))
      fail('scim_invalid_path', `"op" must be add, remove or replace, not ${JSON.stringify(op)}`);
    if (path !== undefined && (typeof path !== 'string' || path.trim() === '' || path.length > 512))
      fail('scim_invalid_path', '"path" must be a non-empty string');
    const kind = op.toLowerCase() as PatchOperation['op'];
    if (kind !== 'remove' && value === undefined) fail('scim_invalid_value', `"${kind}" needs a "value"`);
    if (kind === 'remove' && path === undefined) fail('scim_no_target', '"remove" needs a "path"');
    return { op: kind, path: typeof path === 'string' ? path.trim() : null, value };
  });
}

/** The attribute a PATCH path starts with (`name.givenName` → `name`), core URN stripped. */
function pathHead(path: string, kind: ScimResourceKind): { head: string; rest: string } {
  const enterprise = scimUrn.enterpriseUser.toLowerCase();
  const lower = path.toLowerCase();
  if (kind === 'User' && (lower === enterprise || lower.startsWith(`${enterprise}:`)))
    return { head: enterprise, rest: '' };
  const name = attributeName(path, kind);
  const match = /^([a-z0-9$_-]+)(.*)$/i.exec(name);
  if (!match) return fail('scim_invalid_path', `invalid path "${path}"`, { path });
  return { head: match[1] ?? '', rest: match[2] ?? '' };
}

/** Applies user PATCH operations to the stored state, all or nothing. */
export function applyUserPatch(state: UserState, operations: readonly PatchOperation[]): UserState {
  let next = { ...state };
  const set = (attribute: string, value: unknown, op: PatchOperation['op']) => {
    switch (attribute) {
      case 'active':
        if (op === 'remove') fail('scim_invalid_value', '"active" cannot be removed', { attribute });
        next = { ...next, active: booleanValue(value, 'active') };
        return;
      case 'username':
        if (op === 'remove') fail('scim_invalid_value', '"userName" is required', { attribute });
        next = { ...next, userName: text(value, 'userName', true) as string };
        return;
      case 'externalid':
        next = { ...next, externalId: op === 'remove' ? null : text(value, 'externalId', false) };
        return;
      default:
        // Known attributes Portcullis does not keep (name, emails, password, enterprise…).
        if (userAttributes.has(attribute) || attribute === scimUrn.enterpriseUser.toLowerCase()) return;
        fail('scim_invalid_path', `unknown attribute "${attribute}"`, { path: attribute });
    }
  };
  for (const operation of operations) {
    if (operation.path === null) {
      if (!isObject(operation.value))
        fail('scim_invalid_value', 'an operation without "path" needs an object "value"');
      for (const [key, value] of Object.entries(operation.value)) {
        const { head, rest } = pathHead(key, 'User');
        if (!userAttributes.has(head) && head !== scimUrn.enterpriseUser.toLowerCase())
          fail('scim_invalid_syntax', `unknown attribute "${key}"`, { attribute: key });
        if (rest === '') set(head, value, operation.op);
      }
      continue;
    }
    const { head, rest } = pathHead(operation.path, 'User');
    if (rest !== '' && ['active', 'username', 'externalid'].includes(head))
      fail('scim_invalid_path', `"${head}" has no sub-attributes`, { path: operation.path });
    if (rest !== '' && !userAttributes.has(head))
      fail('scim_invalid_path', `unknown attribute in "${operation.path}"`, { path: operation.path });
    if (rest === '' || !['active', 'username', 'externalid'].includes(head))
      set(head, operation.value, operation.op);
  }
  return next;
}

/** One step of a group PATCH, applied in order by the caller. */
export type GroupChange =
  | { readonly kind: 'set'; readonly displayName?: string; readonly externalId?: string | null }
  | { readonly kind: 'add_members'; readonly ids: readonly string[] }
  | { readonly kind: 'remove_members'; readonly ids: readonly string[] }
  | { readonly kind: 'remove_all_members' };

/** `members[value eq "a"]` or `members[value eq "a" or value eq "b"]`: the ids named. */
function memberFilterIds(path: string): string[] {
  let parsed: Filter;
  try {
    parsed = parse(path);
  } catch {
    return fail('scim_invalid_path', `invalid path "${path}"`, { path });
  }
  if (parsed.op !== '[]' || parsed.attrPath.toLowerCase() !== 'members')
    fail('scim_invalid_path', `unsupported path "${path}"`, { path });
  const ids: string[] = [];
  const collect = (filter: Filter): void => {
    if (filter.op === 'or') {
      for (const f of filter.filters) collect(f);
      return;
    }
    if (
      filter.op === 'eq' &&
      filter.attrPath.toLowerCase() === 'value' &&
      typeof filter.compValue === 'string'
    ) {
      ids.push(filter.compValue);
      return;
    }
    fail('scim_invalid_path', `only members[value eq "…"] is supported, not "${path}"`, { path });
  };
  collect(parsed.valFilter);
  return ids;
}

/** Translates group PATCH operations into changes; validation happens here, all before any change. */
export function groupPatchChanges(operations: readonly PatchOperation[], groupId: string): GroupChange[] {
  const changes: GroupChange[] = [];
  const attribute = (name: string, value: unknown, op: PatchOperation['op']) => {
    switch (name) {
      case 'displayname':
        if (op === 'remove') fail('scim_invalid_value', '"displayName" is required', { attribute: name });
        changes.push({ kind: 'set', displayName: text(value, 'displayName', true) as string });
        return;
      case 'externalid':
        changes.push({ kind: 'set', externalId: op === 'remove' ? null : text(value, 'externalId', false) });
        return;
      case 'members':
        if (op === 'remove' && (value === undefined || value === null))
          changes.push({ kind: 'remove_all_members' });
        else if (op === 'remove') changes.push({ kind: 'remove_members', ids: readMembers(value) });
        else {
          if (op === 'replace') changes.push({ kind: 'remove_all_members' });
          changes.push({ kind: 'add_members', ids: readMembers(value) });
        }
        return;
      case 'id':
        // Okta repeats the group's id in a replace value; anything else would be a change of id.
        if (value !== groupId) fail('scim_mutability', '"id" cannot be changed', { attribute: 'id' });
        return;
      case 'schemas':
      case 'meta':
        return;
      default:
        fail('scim_invalid_path', `unknown attribute "${name}"`, { path: name });
    }
  };
  for (const operation of operations) {
    if (operation.path === null) {
      if (!isObject(operation.value))
        fail('scim_invalid_value', 'an operation without "path" needs an object "value"');
      for (const [key, value] of Object.entries(operation.value)) {
        const name = attributeName(key, 'Group');
        if (!groupAttributes.has(name))
          fail('scim_invalid_syntax', `unknown attribute "${key}"`, { attribute: key });
        attribute(name, value, operation.op);
      }
      continue;
    }
    const { head, rest } = pathHead(operation.path, 'Group');
    if (rest === '') {
      attribute(head, operation.value, operation.op);
      continue;
    }
    if (head === 'members' && rest.startsWith('[') && operation.op === 'remove') {
      changes.push({ kind: 'remove_members', ids: memberFilterIds(attributeName(operation.path, 'Group')) });
      continue;
    }
    fail('scim_invalid_path', `unsupported path "${operation.path}"`, { path: operation.path });
  }
  return changes;
}

// ------------------------------------------------------------------ filters

/** Equality conditions of a filter; `null` when they contradict each other (nothing matches). */
export type FilterConditions = Partial<Record<'id' | 'userName' | 'externalId' | 'displayName', string>>;

const filterAttributes: Record<ScimResourceKind, Record<string, keyof FilterConditions>> = {
  User: { id: 'id', username: 'userName', externalid: 'externalId' },
  Group: { id: 'id', displayname: 'displayName', externalid: 'externalId' },
};

/**
 * Reads a `filter` query parameter: `eq` comparisons of `id`, `userName`, `externalId` (users)
 * or `id`, `displayName`, `externalId` (groups), joined with `and`. Anything else is refused as
 * `scim_invalid_filter` (`reason`: `malformed` or `unsupported`).
 */
export function readFilter(filter: string, kind: ScimResourceKind): FilterConditions | null {
  if (filter.length > maxFilterLength)
    fail('scim_invalid_filter', 'the filter is too long', { reason: 'malformed' });
  let parsed: Filter;
  try {
    parsed = parse(filter);
  } catch {
    return fail('scim_invalid_filter', `malformed filter: ${filter.slice(0, 100)}`, { reason: 'malformed' });
  }
  const conditions: FilterConditions = {};
  let contradiction = false;
  const visit = (node: Filter): void => {
    if (node.op === 'and') {
      for (const child of node.filters) visit(child);
      return;
    }
    if (node.op !== 'eq')
      fail('scim_invalid_filter', `the "${node.op}" operator is not supported; use eq (and and)`, {
        reason: 'unsupported',
      });
    const attribute = filterAttributes[kind][attributeName(node.attrPath, kind)];
    if (attribute === undefined)
      fail('scim_invalid_filter', `filtering on "${node.attrPath}" is not supported`, {
        reason: 'unsupported',
      });
    if (typeof node.compValue !== 'string')
      fail('scim_invalid_filter', `"${node.attrPath}" is compared with a string`, { reason: 'malformed' });
    const previous = conditions[attribute];
    const same =
      attribute === 'userName'
        ? previous?.toLowerCase() === node.compValue.toLowerCase()
        : previous === node.compValue;
    if (previous !== undefined && !same) contradiction = true;
    conditions[attribute] = node.compValue;
  };
  visit(parsed);
  return contradiction ? null : conditions;
}

/** `startIndex` (1-based) and `count` (0 … max) of a list request. */
export function readPaging(
  startIndex: string | undefined,
  count: string | undefined,
  maxCount: number,
): { startIndex: number; count: number } {
  const integer = (value: string | undefined, name: string, fallback: number) => {
    if (value === undefined || value === '') return fallback;
    if (!/^-?\d{1,9}$/.test(value))
      fail('scim_invalid_value', `"${name}" must be an integer`, { attribute: name });
    return Number(value);
  };
  return {
    startIndex: Math.max(1, integer(startIndex, 'startIndex', 1)),
    count: Math.min(Math.max(0, integer(count, 'count', maxCount)), maxCount),
  };
}

// ------------------------------------------------------------------ rendering

function meta(
  kind: ScimResourceKind,
  id: string,
  created: number,
  modified: number,
  version: number,
  base: string,
) {
  return {
    resourceType: kind,
    created: new Date(created).toISOString(),
    lastModified: new Date(modified).toISOString(),
    location: `${base}/${kind}s/${encodeURIComponent(id)}`,
    version: `W/"${version}"`,
  };
}

export function renderUser(
  user: {
    id: string;
    userName: string;
    externalId: string | null;
    active: boolean;
    createdAt: number;
    updatedAt: number;
    version: number;
  },
  base: string,
): Record<string, unknown> {
  return {
    schemas: [scimUrn.user],
    id: user.id,
    ...(user.externalId === null ? {} : { externalId: user.externalId }),
    userName: user.userName,
    active: user.active,
    meta: meta('User', user.id, user.createdAt, user.updatedAt, user.version, base),
  };
}

export function renderGroup(
  group: {
    id: string;
    displayName: string;
    externalId: string | null;
    createdAt: number;
    updatedAt: number;
    version: number;
  },
  members: readonly { id: string; userName: string }[] | undefined,
  base: string,
): Record<string, unknown> {
  return {
    schemas: [scimUrn.group],
    id: group.id,
    ...(group.externalId === null ? {} : { externalId: group.externalId }),
    displayName: group.displayName,
    ...(members === undefined
      ? {}
      : {
          members: members.map((m) => ({
            value: m.id,
            display: m.userName,
            type: 'User',
            $ref: `${base}/Users/${encodeURIComponent(m.id)}`,
          })),
        }),
    meta: meta('Group', group.id, group.createdAt, group.updatedAt, group.version, base),
  };
}

export function listResponse(
  total: number,
  startIndex: number,
  resources: readonly Record<string, unknown>[],
): Record<string, unknown> {
  return {
    schemas: [scimUrn.listResponse],
    totalResults: total,
    startIndex,
    itemsPerPage: resources.length,
    Resources: resources,
  };
}

/** The SCIM error body (RFC 7644 §3.12) with Portcullis's stable `code` added. */
export function scimError(code: ErrorCode, status: number, detail: string): Record<string, unknown> {
  const scimType = scimTypes[code];
  return {
    schemas: [scimUrn.error],
    status: String(status),
    ...(scimType ? { scimType } : {}),
    detail,
    code,
  };
}
