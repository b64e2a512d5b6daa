/**
 * What `portcullis ssh-guard` reports from the hosts of an `ssh` resource
 * (docs/provisioners.md#session-reports-in-the-audit-log): logins with a grant's certificate, their
 * ends by themselves, and the ends the guard forced. Each becomes an audit event of the grant, so the
 * central log answers "who was on which host, and when did that end" as it does for the database
 * gateway's sessions.
 *
 * A report is a host's claim, not a proof: it is accepted only with one of the resource's bearer
 * secrets, and an event only for a grant of that resource whose certificate serial it names.
 */
import type { AuditEventInput, AuditEventType, RequestOrigin } from '../core/audit-event.js';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { sshSerialOf } from '../provisioners/ssh-provisioner.js';
import { BearerSecrets, rejectedBearerEvent } from './bearer-secrets.js';
import type { Store } from './ports.js';

export type HostSessionEvent =
  | (HostSessionFacts & { readonly type: 'started' })
  | (HostSessionFacts & { readonly type: 'closed' })
  | (HostSessionFacts & {
      readonly type: 'ended';
      readonly reason: 'expired' | 'revoked';
      /** Whether the connection was still open: false when only what its login left running was ended. */
      readonly connectionOpen: boolean;
      /** How many processes were signalled. */
      readonly processes: number;
    });

interface HostSessionFacts {
  readonly grantId: string;
  /** The certificate's serial, decimal: it must be the grant's. */
  readonly serial: string;
  /** The account logged in to. */
  readonly account: string;
  /** The connection's sshd process on the host. */
  readonly pid: number;
  /**
   * The connection process's start, in clock ticks since the host's boot: with the pid it names the
   * login, so an event reported again (a restarted guard, a retried batch) is recorded once.
   * Older guards do not send it, and their events are recorded as they come.
   */
  readonly connectionStart?: string;
  /** When it happened by the host's clock, milliseconds since the epoch. */
  readonly at: number;
}

export interface RejectedHostEvent {
  readonly index: number;
  readonly code: 'unknown_grant' | 'serial_mismatch';
  readonly detail: string;
}

const eventTypes: Record<HostSessionEvent['type'], AuditEventType> = {
  started: 'ssh.session_started',
  closed: 'ssh.session_closed',
  ended: 'ssh.session_ended',
};

/** Marks of events already recorded, in the ephemeral store, kept a day past the grant's end. */
const recordedKind = 'ssh-session-report';
const recordedMarkMarginMs = 24 * 60 * 60 * 1000;

export class SshSessionReports {
  readonly #secrets: ReadonlyMap<string, BearerSecrets<true>>;

  constructor(
    private readonly deps: {
      readonly store: Pick<Store, 'grants' | 'transaction' | 'ephemeral'>;
      readonly clock: Clock;
      /** Resource id → the bearer secrets its hosts' guards report with. */
      readonly tokens: ReadonlyMap<string, readonly string[]>;
    },
  ) {
    this.#secrets = new Map(
      [...deps.tokens].map(([resource, secrets]) => [
        resource,
        new BearerSecrets(secrets.map((secret) => ({ secret, value: true as const }))),
      ]),
    );
  }

  /**
   * Checks the `Authorization: Bearer` header against every secret of the resource. A resource that
   * takes no reports is not found; a refused secret is audited.
   */
  async authenticate(
    resourceId: string,
    authorization: string | undefined,
    from: RequestOrigin,
  ): Promise<void> {
    const secrets = this.#secrets.get(resourceId);
    if (!secrets)
      throw new PortcullisError('not_found', `No ssh resource ${resourceId} takes session reports`);
    const { found, presented } = secrets.match(authorization);
    if (found) return;
    await this.deps.store.transaction((tx) =>
      tx.audit.append(
        rejectedBearerEvent('ssh-guard', 'ssh-guard report secret', presented, from, resourceId),
        this.deps.clock.now(),
      ),
    );
    throw new PortcullisError(
      presented ? 'invalid_token' : 'unauthenticated',
      presented ? 'The report secret is not valid' : 'Send the report secret as a bearer token',
    );
  }

  /**
   * Audits the events of one report in one transaction, as the grants' principals' events; an event
   * whose grant is not of this resource, or whose serial is not the grant's, is returned rejected
   * and the others are recorded.
   */
  async record(
    resourceId: string,
    host: string,
    events: readonly HostSessionEvent[],
    from: RequestOrigin,
  ): Promise<{ recorded: number; duplicates: number; rejected: RejectedHostEvent[] }> {
    const rejected: RejectedHostEvent[] = [];
    const accepted: { event: AuditEventInput; at: number; mark?: { key: string; until: number } }[] = [];
    const now = this.deps.clock.now();
    for (const [index, event] of events.entries()) {
      const grant = await this.deps.store.grants.get(event.grantId);
      if (!grant || grant.resourceId !== resourceId) {
        rejected.push({ index, code: 'unknown_grant', detail: `No grant ${event.grantId} of ${resourceId}` });
        continue;
      }
      if (sshSerialOf(grant.artefacts)?.toString() !== event.serial) {
        rejected.push({
          index,
          code: 'serial_mismatch',
          detail: `Serial ${event.serial} is not the certificate serial of grant ${event.grantId}`,
        });
        continue;
      }
      const mark =
        event.connectionStart === undefined
          ? undefined
          : {
              key: JSON.stringify([grant.id, host, event.pid, event.connectionStart, event.type]),
              until: grant.expiresAt + recordedMarkMarginMs,
            };
      accepted.push({
        at: now,
        mark,
        event: {
          type: eventTypes[event.type],
          actor: grant.principalId,
          sourceIp: from.sourceIp,
          userAgent: from.userAgent,
          requestId: grant.requestId,
          grantId: grant.id,
          resourceId,
          ...(event.type === 'ended' ? { reason: event.reason } : {}),
          data: {
            reportedBy: 'ssh-guard',
            host,
            account: event.account,
            pid: event.pid,
            ...(event.connectionStart !== undefined ? { connectionStart: event.connectionStart } : {}),
            serial: event.serial,
            hostTime: event.at,
            ...(event.type === 'ended'
              ? { connectionOpen: event.connectionOpen, processes: event.processes }
              : {}),
          },
        },
      });
    }
    if (accepted.length === 0) return { recorded: 0, duplicates: 0, rejected };
    // The marks and the events commit together: a mark never stands for an event that was not written.
    const recorded = await this.deps.store.transaction(async (tx) => {
      const fresh: { event: AuditEventInput; at: number }[] = [];
      // The transaction sees its own marks: the same event twice in one report is recorded once too.
      for (const { event, at, mark } of accepted) {
        if (mark && !(await tx.ephemeral.putIfAbsent(recordedKind, mark.key, '1', now, mark.until))) continue;
        fresh.push({ event, at });
      }
      if (fresh.length > 0) await tx.audit.appendAll(fresh);
      return fresh.length;
    });
    return { recorded, duplicates: accepted.length - recorded, rejected };
  }
}
