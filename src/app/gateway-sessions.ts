/**
 * Open database-gateway sessions for people: who is connected now, and ending one session without
 * ending its grant (a stuck client, a query that must stop, a session someone does not recognise).
 * A session is visible to whoever may see its grant — its principal, the resource's owners,
 * admins — and the same people may end it. Every end request is audited before it is passed on
 * (fail closed); the session itself then ends with `gateway.session_ended`.
 */
import type { RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import {
  allLiveSessions,
  type LiveSession,
  type LocalSessions,
  requestSessionEnd,
} from './live-session-store.js';
import type { Store } from './ports.js';

export interface GatewaySessionDeps {
  readonly store: Pick<Store, 'ephemeral' | 'transaction'>;
  readonly clock: Clock;
  /** Whether the viewer may see a grant of this principal on this resource (`AccessService.maySeeGrant`). */
  readonly maySeeGrant: (
    viewer: Principal,
    grant: { readonly principalId: string; readonly resourceId: string },
  ) => boolean;
  /** This process's gateway sessions, when it runs a gateway: current, and ended at once. */
  readonly local: () => LocalSessions | undefined;
}

export class GatewaySessions {
  readonly #deps: GatewaySessionDeps;

  constructor(deps: GatewaySessionDeps) {
    this.#deps = deps;
  }

  /** Open sessions the viewer may see: `mine` (their own) or `all`. */
  async list(viewer: Principal, scope: 'mine' | 'all'): Promise<LiveSession[]> {
    const sessions = await this.#all();
    return sessions.filter((session) =>
      scope === 'mine' ? session.principalId === viewer.id : this.#deps.maySeeGrant(viewer, session),
    );
  }

  /**
   * Ends one open session: audited as `gateway.session_end_requested`, then ended by the replica
   * that holds it (at once here, within the gateway's liveness interval elsewhere).
   *
   * @throws PortcullisError `not_found` when no open session with that id is visible to the actor.
   */
  async end(actor: Principal, sessionId: string, reason: string, from: RequestOrigin): Promise<LiveSession> {
    const session = (await this.#all()).find((s) => s.id === sessionId);
    if (!session || !this.#deps.maySeeGrant(actor, session))
      throw new PortcullisError('not_found', `No open gateway session ${sessionId}`);
    const now = this.#deps.clock.now();
    const local = this.#deps.local();
    // #all() lists this replica's own sessions under its id and never another replica's row for it.
    const here = local !== undefined && session.replica === local.replica;
    const request = { by: actor.id, reason };
    await this.#deps.store.transaction(async (tx) => {
      await tx.audit.append(
        {
          type: 'gateway.session_end_requested',
          actor: actor.id,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          requestId: session.requestId,
          grantId: session.grantId,
          resourceId: session.resourceId,
          reason: reason || null,
          data: { session: session.id, principal: session.principalId, replica: session.replica },
        },
        now,
      );
      // Another replica's session: that replica takes the request at its next check.
      if (!here) await requestSessionEnd(tx.ephemeral, session.id, request, now);
    });
    if (here) local?.endLocal(session.id, request);
    return session;
  }

  #all(): Promise<LiveSession[]> {
    return allLiveSessions(this.#deps.store.ephemeral, this.#deps.clock.now(), this.#deps.local());
  }
}
