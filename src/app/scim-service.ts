/**
 * SCIM 2.0 provisioning (docs/scim.md): an identity provider creates, changes, deactivates and
 * deletes users and groups. Each client is bound to one IdP by its bearer secret and can only see
 * and touch that IdP's resources. Deactivating or deleting a user disables the principal and ends
 * all of its access through {@link AccessService.endAllAccessOf}; group membership changes map
 * through the IdP's sign-in group mapping (`group_mapping`, `mapping_rules`) onto the principal's
 * groups at once. Every change is audited
 * with the client (`scim:<idp>`) as the actor; refused requests leave a security event.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { IdentityLinks, parseIdentity } from '../core/identity-links.js';
import { principalId } from '../core/principal.js';
import { type MappingSettings, mapPushedGroups } from '../identity/mapping-rules.js';
import {
  applyUserPatch,
  type GroupChange,
  type GroupState,
  groupPatchChanges,
  listResponse,
  readFilter,
  readGroupBody,
  readPaging,
  readPatchBody,
  readUserBody,
  renderGroup,
  renderUser,
  type UserState,
} from '../scim/scim-protocol.js';
import type { AccessService } from './access-service.js';
import { BearerSecrets, rejectedBearerEvent } from './bearer-secrets.js';
import type { AuditLastTransaction, ScimGroupRecord, ScimUserRecord, Store, Transaction } from './ports.js';

/** A configured SCIM client, its secret already resolved. */
export interface ScimClientSettings {
  readonly idp: string;
  readonly token: string;
  readonly subjectAttribute: 'externalId' | 'userName';
  /**
   * The IdP's mapping settings, the same a sign-in through it reads (`group_mapping`,
   * `mapping_rules`): SCIM group display names map through them (see {@link mapPushedGroups}).
   */
  readonly mapping: MappingSettings;
}

/** The authenticated caller of a SCIM request. */
export interface ScimClient {
  readonly idp: string;
  readonly actor: string;
  readonly subjectAttribute: 'externalId' | 'userName';
  readonly mapping: MappingSettings;
}

export interface ScimServiceDeps {
  readonly store: Store;
  readonly access: AccessService;
  readonly clock: Clock;
  readonly clients: readonly ScimClientSettings[];
  /** Absolute base URL of the SCIM endpoint, e.g. `https://portcullis.example.com/scim/v2`. */
  readonly baseUrl: string;
  readonly newId?: () => string;
  /** `identity_links`: a SCIM user of a linked identity acts on the canonical principal. */
  readonly identityLinks?: IdentityLinks;
}

/** Largest page a list answers (also the default `count`). */
export const scimMaxResults = 200;
const maxCasAttempts = 8;

type Json = Record<string, unknown>;

function notFound(kind: string, id: string): PortcullisError {
  return new PortcullisError('not_found', `No ${kind} ${id}`);
}

/** A `conflict` from a unique constraint is SCIM's `uniqueness`. */
function uniqueness(error: unknown): never {
  if (error instanceof PortcullisError && error.code === 'conflict' && /already exists/.test(error.message))
    throw new PortcullisError('scim_uniqueness', error.message, {}, { cause: error });
  throw error;
}

function keptDisabled(blockers: readonly string[]): { keptDisabledBy?: readonly string[] } {
  return blockers.length > 0 ? { keptDisabledBy: blockers } : {};
}

export class ScimService {
  readonly #clients: readonly ScimClientSettings[];
  readonly #secrets: BearerSecrets<ScimClientSettings>;
  readonly #newId: () => string;
  readonly #links: IdentityLinks;

  constructor(private readonly deps: ScimServiceDeps) {
    this.#clients = deps.clients;
    this.#secrets = new BearerSecrets(deps.clients.map((c) => ({ secret: c.token, value: c })));
    this.#newId = deps.newId ?? randomUUID;
    this.#links = deps.identityLinks ?? IdentityLinks.none;
  }

  /** The principal a SCIM user of this client is: the canonical id when its identity is linked. */
  #principalIdOf(client: ScimClient, subject: string): string {
    return this.#links.canonicalId(client.idp, subject);
  }

  /**
   * Disables or re-enables the principal of a SCIM user. Fail closed for linked identities:
   * deprovisioning through any of them disables the canonical principal, and a disabled one is
   * re-enabled only when every other linked identity whose IdP provisions through SCIM has an
   * active user there. Returns those that keep it disabled (audited as `keptDisabledBy`).
   */
  async #setDisabled(
    tx: AuditLastTransaction,
    client: ScimClient,
    subject: string,
    disabled: boolean,
    at: number,
  ): Promise<string[]> {
    const id = this.#principalIdOf(client, subject);
    const blockers: string[] = [];
    if (!disabled && (await tx.principals.get(id))?.disabled) {
      for (const other of this.#links.identitiesOf(id)) {
        const identity = parseIdentity(other);
        const otherClient = this.#clients.find((c) => c.idp === identity?.idp);
        if (!identity || !otherClient || other === principalId(client.idp, subject)) continue;
        const found = await tx.scim.findUsers(
          identity.idp,
          { [otherClient.subjectAttribute]: identity.subject },
          0,
          10,
        );
        if (!found.items.some((u) => u.subject === identity.subject && u.active)) blockers.push(other);
      }
    }
    await tx.principals.setDisabled(id, disabled || blockers.length > 0, at);
    return blockers;
  }

  get enabled(): boolean {
    return this.#clients.length > 0;
  }

  /**
   * The client whose secret the `Authorization: Bearer` header carries. Every configured secret is
   * compared in constant time (as SHA-256 digests, so lengths leak nothing), none skipped.
   */
  async authenticate(authorization: string | undefined, from: RequestOrigin): Promise<ScimClient> {
    const { found, presented } = this.#secrets.match(authorization);
    if (found)
      return {
        idp: found.idp,
        actor: `scim:${found.idp}`,
        subjectAttribute: found.subjectAttribute,
        mapping: found.mapping,
      };
    await this.deps.store.transaction((tx) =>
      tx.audit.append(
        rejectedBearerEvent('scim', 'SCIM bearer secret', presented, from),
        this.deps.clock.now(),
      ),
    );
    throw new PortcullisError(
      presented ? 'invalid_token' : 'unauthenticated',
      presented ? 'The SCIM bearer secret is not valid' : 'Send the SCIM bearer secret',
      { reason: presented ? 'unknown_secret' : 'missing' },
    );
  }

  /** Records a refused SCIM request (bad input, unknown resource) as a security event. */
  async recordRejection(
    client: ScimClient | null,
    from: RequestOrigin,
    what: string,
    error: PortcullisError,
  ): Promise<void> {
    await this.deps.store.transaction((tx) =>
      tx.audit.append(
        {
          type: 'scim.request_rejected',
          actor: client?.actor ?? 'anonymous',
          severity: 'warning',
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          reason: error.message.slice(0, 500),
          data: { code: error.code, request: what, ...(client ? { idp: client.idp } : {}) },
        },
        this.deps.clock.now(),
      ),
    );
  }

  // ------------------------------------------------------------------ users

  #renderUser(user: ScimUserRecord): Json {
    return renderUser(user, this.deps.baseUrl);
  }

  #subjectOf(client: ScimClient, state: UserState): string {
    const subject = client.subjectAttribute === 'externalId' ? state.externalId : state.userName;
    if (subject === null)
      throw new PortcullisError(
        'scim_invalid_value',
        `"${client.subjectAttribute}" is required: it carries the user's subject at the identity provider`,
        { attribute: client.subjectAttribute },
      );
    return subject;
  }

  async listUsers(
    client: ScimClient,
    query: { filter?: string; startIndex?: string; count?: string },
  ): Promise<Json> {
    const paging = readPaging(query.startIndex, query.count, scimMaxResults);
    const conditions = query.filter ? readFilter(query.filter, 'User') : {};
    if (conditions === null) return listResponse(0, paging.startIndex, []);
    const page = await this.deps.store.scim.findUsers(
      client.idp,
      conditions,
      paging.startIndex - 1,
      paging.count,
    );
    return listResponse(
      page.total,
      paging.startIndex,
      page.items.map((u) => this.#renderUser(u)),
    );
  }

  async getUser(client: ScimClient, id: string): Promise<Json> {
    const user = await this.deps.store.scim.getUser(client.idp, id);
    if (!user) throw notFound('user', id);
    return this.#renderUser(user);
  }

  async createUser(client: ScimClient, body: unknown, from: RequestOrigin): Promise<Json> {
    const state = readUserBody(body);
    const subject = this.#subjectOf(client, state);
    const now = this.deps.clock.now();
    const user: ScimUserRecord = {
      id: this.#newId(),
      idp: client.idp,
      subject,
      ...state,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    const work = async (tx: AuditLastTransaction, at: number) => {
      await tx.scim.insertUser({ ...user, createdAt: at, updatedAt: at }).catch(uniqueness);
      // A user (re-)provisioned active may sign in again; an inactive one may not.
      const blockers = await this.#setDisabled(tx, client, subject, !state.active, at);
      await tx.audit.append(
        this.#userEvent('scim.user_created', client, from, user, keptDisabled(blockers)),
        at,
      );
    };
    if (state.active) await this.deps.store.transaction((tx) => work(tx, now));
    else await this.#deprovision(client, user, from, 'created inactive', work);
    return this.#renderUser((await this.deps.store.scim.getUser(client.idp, user.id)) ?? user);
  }

  async replaceUser(client: ScimClient, id: string, body: unknown, from: RequestOrigin): Promise<Json> {
    const state = readUserBody(body);
    return this.#changeUser(client, id, () => state, from);
  }

  async patchUser(client: ScimClient, id: string, body: unknown, from: RequestOrigin): Promise<Json> {
    const operations = readPatchBody(body);
    return this.#changeUser(client, id, (current) => applyUserPatch(current, operations), from);
  }

  async #changeUser(
    client: ScimClient,
    id: string,
    change: (current: UserState) => UserState,
    from: RequestOrigin,
  ): Promise<Json> {
    for (let attempt = 0; attempt < maxCasAttempts; attempt++) {
      const current = await this.deps.store.scim.getUser(client.idp, id);
      if (!current) throw notFound('user', id);
      const next = change(current);
      if (this.#subjectOf(client, next) !== current.subject)
        throw new PortcullisError(
          'scim_mutability',
          `"${client.subjectAttribute}" links the user to its principal and cannot change`,
          { attribute: client.subjectAttribute },
        );
      if (
        next.userName === current.userName &&
        next.externalId === current.externalId &&
        next.active === current.active
      )
        return this.#renderUser(current);
      const now = this.deps.clock.now();
      const updated: ScimUserRecord = { ...current, ...next, updatedAt: now, version: current.version + 1 };
      const lost = Symbol('lost');
      const work = async (tx: AuditLastTransaction, at: number) => {
        const stamped = { ...updated, updatedAt: at };
        if (!(await tx.scim.updateUser(stamped, current.version).catch(uniqueness))) throw lost;
        const blockers =
          next.active !== current.active
            ? await this.#setDisabled(tx, client, current.subject, !next.active, at)
            : [];
        const type =
          next.active === current.active
            ? 'scim.user_updated'
            : next.active
              ? 'scim.user_reactivated'
              : 'scim.user_deactivated';
        await tx.audit.append(
          this.#userEvent(type, client, from, stamped, {
            ...(next.userName !== current.userName ? { previousUserName: current.userName } : {}),
            ...keptDisabled(blockers),
          }),
          at,
        );
      };
      try {
        if (current.active && !next.active)
          await this.#deprovision(client, current, from, 'deactivated', work);
        else await this.deps.store.transaction((tx) => work(tx, now));
      } catch (error) {
        if (error === lost) continue;
        throw error;
      }
      return this.#renderUser((await this.deps.store.scim.getUser(client.idp, id)) ?? updated);
    }
    throw new PortcullisError('conflict', 'The user kept changing; try again');
  }

  async deleteUser(client: ScimClient, id: string, from: RequestOrigin): Promise<void> {
    const current = await this.deps.store.scim.getUser(client.idp, id);
    if (!current) throw notFound('user', id);
    await this.#deprovision(client, current, from, 'deleted', async (tx, at) => {
      const before = await tx.scim.groupNamesOf([current.id]);
      await tx.scim.deleteUser(client.idp, current.id);
      // A deleted user stays disabled: its sessions and IdP tokens are refused from now on.
      await this.#setDisabled(tx, client, current.subject, true, at);
      await this.#applyGroupChanges(tx, client, [current], before, new Map([[current.id, []]]));
      await tx.audit.append(this.#userEvent('scim.user_deleted', client, from, current), at);
    });
  }

  /** Runs the SCIM change and ends all of the principal's access in one transaction. */
  async #deprovision(
    client: ScimClient,
    user: Pick<ScimUserRecord, 'subject'>,
    from: RequestOrigin,
    why: string,
    work: (tx: AuditLastTransaction, at: number) => Promise<void>,
  ): Promise<void> {
    const id = this.#principalIdOf(client, user.subject);
    const reason = `${why} by SCIM (${client.idp})`;
    await this.deps.access.endAllAccessOf(id, client.actor, reason, from, work);
    // A linked identity that signed in before it was linked left a principal of its own: it is
    // disabled and loses its access too (fail closed), and stays disabled.
    const own = principalId(client.idp, user.subject);
    if (own !== id && (await this.deps.store.principals.get(own)))
      await this.deps.access.endAllAccessOf(own, client.actor, reason, from, (tx, at) =>
        tx.principals.setDisabled(own, true, at),
      );
  }

  #userEvent(
    type: AuditEventInput['type'],
    client: ScimClient,
    from: RequestOrigin,
    user: ScimUserRecord,
    extra: Record<string, unknown> = {},
  ): AuditEventInput {
    return {
      type,
      actor: client.actor,
      severity: type === 'scim.user_deactivated' || type === 'scim.user_deleted' ? 'warning' : 'info',
      sourceIp: from.sourceIp,
      userAgent: from.userAgent,
      data: {
        idp: client.idp,
        scimId: user.id,
        principal: this.#principalIdOf(client, user.subject),
        ...(this.#principalIdOf(client, user.subject) !== principalId(client.idp, user.subject)
          ? { linkedIdentity: principalId(client.idp, user.subject) }
          : {}),
        userName: user.userName,
        active: user.active,
        ...extra,
      },
    };
  }

  // ------------------------------------------------------------------ groups

  async #renderGroups(groups: readonly ScimGroupRecord[], withMembers: boolean): Promise<Json[]> {
    const members = withMembers ? await this.deps.store.scim.members(groups.map((g) => g.id)) : undefined;
    return groups.map((g) =>
      renderGroup(g, members ? (members.get(g.id) ?? []) : undefined, this.deps.baseUrl),
    );
  }

  async listGroups(
    client: ScimClient,
    query: { filter?: string; startIndex?: string; count?: string; withMembers: boolean },
  ): Promise<Json> {
    const paging = readPaging(query.startIndex, query.count, scimMaxResults);
    const conditions = query.filter ? readFilter(query.filter, 'Group') : {};
    if (conditions === null) return listResponse(0, paging.startIndex, []);
    const page = await this.deps.store.scim.findGroups(
      client.idp,
      conditions,
      paging.startIndex - 1,
      paging.count,
    );
    return listResponse(
      page.total,
      paging.startIndex,
      await this.#renderGroups(page.items, query.withMembers),
    );
  }

  async getGroup(client: ScimClient, id: string, withMembers: boolean): Promise<Json> {
    const group = await this.deps.store.scim.getGroup(client.idp, id);
    if (!group) throw notFound('group', id);
    return (await this.#renderGroups([group], withMembers))[0] as Json;
  }

  async createGroup(client: ScimClient, body: unknown, from: RequestOrigin): Promise<Json> {
    const { group: state, members } = readGroupBody(body);
    const now = this.deps.clock.now();
    const group: ScimGroupRecord = {
      id: this.#newId(),
      idp: client.idp,
      ...state,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    await this.deps.store.transaction(async (tx) => {
      await tx.scim.insertGroup(group);
      await this.#runGroupChanges(
        tx,
        client,
        group,
        [{ kind: 'add_members', ids: members }],
        from,
        'scim.group_created',
        now,
      );
    });
    return this.getGroup(client, group.id, true);
  }

  async replaceGroup(client: ScimClient, id: string, body: unknown, from: RequestOrigin): Promise<Json> {
    const { group: state, members } = readGroupBody(body);
    await this.#changeGroup(client, id, from, () => [
      { kind: 'set', displayName: state.displayName, externalId: state.externalId },
      { kind: 'remove_all_members' },
      { kind: 'add_members', ids: members },
    ]);
    return this.getGroup(client, id, true);
  }

  /** Answers 200 with the group, or null for 204 (Entra ID and Okta accept both). */
  async patchGroup(client: ScimClient, id: string, body: unknown, from: RequestOrigin): Promise<Json> {
    const operations = readPatchBody(body);
    await this.#changeGroup(client, id, from, () => groupPatchChanges(operations, id));
    return this.getGroup(client, id, false);
  }

  async deleteGroup(client: ScimClient, id: string, from: RequestOrigin): Promise<void> {
    await this.#changeGroup(client, id, from, () => [{ kind: 'remove_all_members' }], true);
  }

  async #changeGroup(
    client: ScimClient,
    id: string,
    from: RequestOrigin,
    changes: () => GroupChange[],
    remove = false,
  ): Promise<void> {
    const planned = changes();
    await this.deps.store.transaction(async (tx) => {
      const group = await tx.scim.getGroup(client.idp, id);
      if (!group) throw notFound('group', id);
      const now = this.deps.clock.now();
      await this.#runGroupChanges(
        tx,
        client,
        group,
        planned,
        from,
        remove ? 'scim.group_deleted' : 'scim.group_updated',
        now,
      );
      if (remove) await tx.scim.deleteGroup(client.idp, id);
    });
  }

  /**
   * Applies group changes in order inside `tx`, then maps the new memberships onto the principals
   * of every user whose membership (or whose group's name) changed, and audits it all.
   */
  async #runGroupChanges(
    tx: Transaction,
    client: ScimClient,
    group: ScimGroupRecord,
    changes: readonly GroupChange[],
    from: RequestOrigin,
    type: 'scim.group_created' | 'scim.group_updated' | 'scim.group_deleted',
    now: number,
  ): Promise<void> {
    const membersBefore = (await tx.scim.members([group.id])).get(group.id) ?? [];
    const named = [...new Set(changes.flatMap((c) => ('ids' in c ? c.ids : [])))];
    const users = new Map<string, ScimUserRecord>();
    for (const user of await tx.scim.getUsers(client.idp, named)) users.set(user.id, user);
    const unknown = named.find((id) => !users.has(id));
    if (unknown !== undefined)
      throw new PortcullisError('scim_invalid_value', `No user ${unknown} of this identity provider`, {
        attribute: 'members',
      });
    // Everyone in the group is affected when it is emptied, renamed or deleted; otherwise only
    // the users named.
    const renamed = changes.some(
      (c) => c.kind === 'set' && c.displayName !== undefined && c.displayName !== group.displayName,
    );
    if (renamed || changes.some((c) => c.kind === 'remove_all_members')) {
      const others = membersBefore.map((m) => m.id).filter((id) => !users.has(id));
      for (const user of await tx.scim.getUsers(client.idp, others)) users.set(user.id, user);
    }
    const affected = [...users.values()];
    const before = await tx.scim.groupNamesOf(affected.map((u) => u.id));

    let state: GroupState = { displayName: group.displayName, externalId: group.externalId };
    for (const change of changes) {
      switch (change.kind) {
        case 'set':
          state = {
            displayName: change.displayName ?? state.displayName,
            externalId: change.externalId === undefined ? state.externalId : change.externalId,
          };
          break;
        case 'add_members':
          await tx.scim.addMembers(group.id, change.ids);
          break;
        case 'remove_members':
          await tx.scim.removeMembers(group.id, change.ids);
          break;
        case 'remove_all_members':
          await tx.scim.removeMembers(group.id);
          break;
      }
    }
    if (
      type !== 'scim.group_created' &&
      (state.displayName !== group.displayName || state.externalId !== group.externalId)
    ) {
      const updated = { ...group, ...state, updatedAt: now, version: group.version + 1 };
      if (!(await tx.scim.updateGroup(updated, group.version)))
        throw new PortcullisError('conflict', 'The group changed concurrently; try again');
    }
    // A deleted group had all its members removed above, so this is right for deletion too.
    const after = await tx.scim.groupNamesOf(affected.map((u) => u.id));
    const membersAfter = (await tx.scim.members([group.id])).get(group.id) ?? [];
    const principals = await this.#applyGroupChanges(tx, client, affected, before, after);
    const beforeIds = new Set(membersBefore.map((m) => m.id));
    const afterIds = new Set(membersAfter.map((m) => m.id));
    await tx.audit.append(
      {
        type,
        actor: client.actor,
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
        data: {
          idp: client.idp,
          scimId: group.id,
          displayName: state.displayName,
          ...(state.displayName !== group.displayName ? { previousDisplayName: group.displayName } : {}),
          added: [...afterIds].filter((id) => !beforeIds.has(id)),
          removed: [...beforeIds].filter((id) => !afterIds.has(id)),
          principals,
        },
      },
      now,
    );
  }

  /**
   * The IdP's word on groups, pushed instead of asserted at a login: for each user, the Portcullis
   * groups mapped from its SCIM groups before and after the change (with the IdP's sign-in
   * mapping, {@link mapPushedGroups}) are compared, and only that difference is applied to the
   * principal's groups (what its last login asserted otherwise stays): a group is added when the
   * mapping now certainly gives it, removed when it no longer possibly does. When the groups were
   * asserted is kept, so `groups_max_age` still counts from the last sign-in or IdP token. Returns
   * the principals whose groups changed, with the change.
   */
  async #applyGroupChanges(
    tx: AuditLastTransaction,
    client: ScimClient,
    users: readonly ScimUserRecord[],
    before: ReadonlyMap<string, readonly string[]>,
    after: ReadonlyMap<string, readonly string[]>,
  ): Promise<{ principal: string; added: string[]; removed: string[] }[]> {
    const changed: { principal: string; added: string[]; removed: string[] }[] = [];
    for (const user of users) {
      const id = this.#principalIdOf(client, user.subject);
      const principal = await tx.principals.get(id);
      if (!principal) continue;
      const email = principal.email ?? undefined;
      const was = mapPushedGroups(before.get(user.id) ?? [], email, client.mapping);
      const is = mapPushedGroups(after.get(user.id) ?? [], email, client.mapping);
      const added = is.certain.filter((g) => !was.certain.includes(g));
      const removed = was.possible.filter((g) => !is.possible.includes(g));
      if (added.length === 0 && removed.length === 0) continue;
      const groups = new Set(principal.groups);
      for (const g of removed) groups.delete(g);
      for (const g of added) groups.add(g);
      await tx.principals.setGroups(id, [...groups].sort());
      changed.push({ principal: id, added, removed });
    }
    return changed;
  }
}
