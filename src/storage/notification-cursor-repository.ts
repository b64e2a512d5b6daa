/** Notification channels' positions in the audit log and their delivery leases. */
import type { Kysely } from 'kysely';
import type { NotificationCursorRepository } from '../app/ports.js';
import type { Database } from './schema.js';

export class KyselyNotificationCursorRepository implements NotificationCursorRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * An insert that does nothing when the row exists, then one conditional UPDATE … RETURNING: of two
   * replicas claiming a free lease at once, the database lets exactly one update the row.
   */
  async claim(
    channel: string,
    owner: string,
    now: number,
    leaseUntil: number,
    startAt: number,
  ): Promise<number | undefined> {
    await this.#db
      .insertInto('notification_cursors')
      .values({ channel, position: startAt, lease_owner: null, lease_until: 0 })
      .onConflict((conflict) => conflict.column('channel').doNothing())
      .execute();
    const row = await this.#db
      .updateTable('notification_cursors')
      .set({ lease_owner: owner, lease_until: leaseUntil })
      .where('channel', '=', channel)
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<=', now)]),
      )
      .returning('position')
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.position);
  }

  async advance(channel: string, owner: string, position: number, leaseUntil: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('notification_cursors')
      .set({ position, lease_until: leaseUntil })
      .where('channel', '=', channel)
      .where('lease_owner', '=', owner)
      .where('position', '<=', position)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async release(channel: string, owner: string): Promise<void> {
    await this.#db
      .updateTable('notification_cursors')
      .set({ lease_owner: null, lease_until: 0 })
      .where('channel', '=', channel)
      .where('lease_owner', '=', owner)
      .execute();
  }

  async position(channel: string): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom('notification_cursors')
      .select('position')
      .where('channel', '=', channel)
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.position);
  }
}
