/** A refused or suspicious attempt, audited in a transaction of its own (the attempt changed nothing). */
import type { AuditEventInput, RequestOrigin } from '../core/audit-event.js';
import type { Principal } from '../core/principal.js';
import type { Store } from './ports.js';

export async function recordSecurityEvent(
  store: Pick<Store, 'transaction'>,
  actor: Principal | null,
  type: AuditEventInput['type'],
  from: RequestOrigin,
  now: number,
  fields: Partial<AuditEventInput>,
): Promise<void> {
  await store.transaction((tx) =>
    tx.audit.append(
      {
        ...fields,
        type,
        actor: actor?.id ?? 'anonymous',
        severity: 'warning',
        sourceIp: from.sourceIp,
        userAgent: from.userAgent,
      },
      now,
    ),
  );
}
