/** Break-glass state in the `break_glass_*` tables; the same queries on SQLite and PostgreSQL. */
import type { Kysely, Selectable } from 'kysely';
import type {
  BreakGlassRepository,
  DrillRecord,
  EnrolledSecurityKey,
  StoredActivation,
  StoredCustodian,
} from '../app/break-glass-ports.js';
import type { Activation, ActivationState } from '../break-glass/activation.js';
import type { StoredSecurityKey } from '../break-glass/ports.js';
import type { Seal } from '../break-glass/sealed-shares.js';
import { PortcullisError } from '../core/errors.js';
import { insertOrConflict, isUniqueViolation, listLimit } from './query-support.js';
import type {
  BreakGlassActivationsTable,
  BreakGlassCustodiansTable,
  BreakGlassDrillsTable,
  BreakGlassSecurityKeysTable,
  Database,
} from './schema.js';

function toCustodian(row: Selectable<BreakGlassCustodiansTable>): StoredCustodian {
  return {
    accountId: row.account_id,
    custodianId: row.custodian_id,
    passphraseHash: row.passphrase_hash,
    sealedTotpSecret: row.sealed_totp_secret,
    enrolledAt: Number(row.enrolled_at),
    rotatedAt: row.rotated_at === null ? null : Number(row.rotated_at),
  };
}

function toActivation(row: Selectable<BreakGlassActivationsTable>): StoredActivation {
  return {
    activation: JSON.parse(row.activation) as Activation,
    handleHash: row.handle_hash,
    requestIds: JSON.parse(row.request_ids) as string[],
  };
}

function toDrill(row: Selectable<BreakGlassDrillsTable>): DrillRecord {
  return {
    id: row.id,
    accountId: row.account_id,
    activationId: row.activation_id,
    at: Number(row.at),
    passed: row.passed === 1,
    report: row.report,
  };
}

function toEnrolledKey(row: Selectable<BreakGlassSecurityKeysTable>): EnrolledSecurityKey {
  return {
    credentialId: row.credential_id,
    accountId: row.account_id,
    custodianId: row.custodian_id,
    aaguid: row.aaguid,
    backedUp: Number(row.backed_up) === 1,
    transports: JSON.parse(row.transports) as string[],
    createdAt: Number(row.created_at),
  };
}

/** {@link BreakGlassRepository} over a Kysely instance or transaction. */
export class KyselyBreakGlassRepository implements BreakGlassRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async getCustodian(accountId: string, custodianId: string): Promise<StoredCustodian | undefined> {
    const row = await this.#db
      .selectFrom('break_glass_custodians')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('custodian_id', '=', custodianId)
      .executeTakeFirst();
    return row && toCustodian(row);
  }

  async listCustodians(accountId: string): Promise<StoredCustodian[]> {
    const rows = await this.#db
      .selectFrom('break_glass_custodians')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('custodian_id')
      .execute();
    return rows.map(toCustodian);
  }

  async upsertCustodian(c: StoredCustodian): Promise<void> {
    const values = {
      passphrase_hash: c.passphraseHash,
      sealed_totp_secret: c.sealedTotpSecret,
      // A new secret starts a new sequence of time steps.
      last_time_step: null,
      enrolled_at: c.enrolledAt,
      rotated_at: c.rotatedAt,
    };
    await this.#db
      .insertInto('break_glass_custodians')
      .values({ account_id: c.accountId, custodian_id: c.custodianId, ...values })
      .onConflict((conflict) => conflict.columns(['account_id', 'custodian_id']).doUpdateSet(values))
      .execute();
  }

  async claimTimeStep(accountId: string, custodianId: string, timeStep: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('break_glass_custodians')
      .set({ last_time_step: timeStep })
      .where('account_id', '=', accountId)
      .where('custodian_id', '=', custodianId)
      .where((eb) => eb.or([eb('last_time_step', 'is', null), eb('last_time_step', '<', timeStep)]))
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async getSeal(accountId: string): Promise<Seal | undefined> {
    const row = await this.#db
      .selectFrom('break_glass_seals')
      .select('seal')
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    return row && (JSON.parse(row.seal) as Seal);
  }

  async putSeal(seal: Seal): Promise<void> {
    const values = { seal: JSON.stringify(seal), created_at: seal.createdAt };
    await this.#db
      .insertInto('break_glass_seals')
      .values({ account_id: seal.accountId, ...values })
      .onConflict((conflict) => conflict.column('account_id').doUpdateSet(values))
      .execute();
  }

  async getActivation(id: string): Promise<StoredActivation | undefined> {
    const row = await this.#db
      .selectFrom('break_glass_activations')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toActivation(row);
  }

  async insertActivation(stored: StoredActivation): Promise<void> {
    const a = stored.activation;
    await insertOrConflict(`Activation ${a.id}`, () =>
      this.#db
        .insertInto('break_glass_activations')
        .values({
          id: a.id,
          account_id: a.accountId,
          state: a.state,
          drill: a.drill ? 1 : 0,
          initiated_at: a.initiatedAt,
          expires_at: a.expiresAt,
          handle_hash: stored.handleHash,
          request_ids: JSON.stringify(stored.requestIds),
          activation: JSON.stringify(a),
          version: a.version,
        })
        .execute(),
    );
  }

  async updateActivation(
    activation: Activation,
    expectedVersion: number,
    requestIds?: readonly string[],
  ): Promise<boolean> {
    // INVARIANT: every write moves the version forward (see KyselyRequestRepository.update).
    if (activation.version <= expectedVersion)
      throw new Error(`Activation ${activation.id}: version must move forward`);
    const result = await this.#db
      .updateTable('break_glass_activations')
      .set({
        state: activation.state,
        expires_at: activation.expiresAt,
        activation: JSON.stringify(activation),
        version: activation.version,
        ...(requestIds ? { request_ids: JSON.stringify(requestIds) } : {}),
      })
      .where('id', '=', activation.id)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async listActivations(filter: {
    readonly accountId?: string;
    readonly states?: readonly ActivationState[];
    readonly limit?: number;
  }): Promise<StoredActivation[]> {
    if (filter.states?.length === 0) return [];
    let query = this.#db.selectFrom('break_glass_activations').selectAll();
    if (filter.accountId !== undefined) query = query.where('account_id', '=', filter.accountId);
    if (filter.states !== undefined) query = query.where('state', 'in', filter.states);
    const rows = await query
      .orderBy('initiated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(listLimit(filter.limit))
      .execute();
    return rows.map(toActivation);
  }

  async getGuessing(key: string): Promise<{ state: string; version: number } | undefined> {
    return this.#db
      .selectFrom('break_glass_guessing')
      .select(['state', 'version'])
      .where('key', '=', key)
      .executeTakeFirst();
  }

  async putGuessing(key: string, state: string, expectedVersion: number | null): Promise<boolean> {
    if (expectedVersion === null) {
      try {
        await this.#db.insertInto('break_glass_guessing').values({ key, state, version: 1 }).execute();
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    }
    const result = await this.#db
      .updateTable('break_glass_guessing')
      .set({ state, version: expectedVersion + 1 })
      .where('key', '=', key)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async listSecurityKeys(accountId: string, custodianId: string): Promise<StoredSecurityKey[]> {
    const rows = await this.#db
      .selectFrom('break_glass_security_keys')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('custodian_id', '=', custodianId)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({
      credentialId: r.credential_id,
      publicKey: r.public_key,
      counter: Number(r.counter),
      transports: JSON.parse(r.transports) as string[],
    }));
  }

  async insertSecurityKey(
    accountId: string,
    custodianId: string,
    key: StoredSecurityKey & { readonly aaguid: string; readonly backedUp: boolean },
    at: number,
  ): Promise<void> {
    await insertOrConflict(`Security key ${key.credentialId}`, () =>
      this.#db
        .insertInto('break_glass_security_keys')
        .values({
          credential_id: key.credentialId,
          account_id: accountId,
          custodian_id: custodianId,
          public_key: key.publicKey,
          counter: key.counter,
          transports: JSON.stringify(key.transports),
          aaguid: key.aaguid,
          backed_up: key.backedUp ? 1 : 0,
          created_at: at,
        })
        .execute(),
    );
  }

  async listAccountSecurityKeys(accountId: string): Promise<EnrolledSecurityKey[]> {
    const rows = await this.#db
      .selectFrom('break_glass_security_keys')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('custodian_id')
      .orderBy('created_at')
      .orderBy('credential_id')
      .execute();
    return rows.map(toEnrolledKey);
  }

  async deleteSecurityKeys(
    accountId: string,
    filter: { readonly custodianId?: string; readonly credentialId?: string },
  ): Promise<EnrolledSecurityKey[]> {
    let select = this.#db
      .selectFrom('break_glass_security_keys')
      .selectAll()
      .where('account_id', '=', accountId);
    let remove = this.#db.deleteFrom('break_glass_security_keys').where('account_id', '=', accountId);
    if (filter.custodianId !== undefined) {
      select = select.where('custodian_id', '=', filter.custodianId);
      remove = remove.where('custodian_id', '=', filter.custodianId);
    }
    if (filter.credentialId !== undefined) {
      select = select.where('credential_id', '=', filter.credentialId);
      remove = remove.where('credential_id', '=', filter.credentialId);
    }
    const rows = await select.orderBy('created_at').orderBy('credential_id').execute();
    if (rows.length > 0) await remove.execute();
    return rows.map(toEnrolledKey);
  }

  async updateSecurityKeyCounter(credentialId: string, expected: number, next: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('break_glass_security_keys')
      .set({ counter: next })
      .where('credential_id', '=', credentialId)
      .where('counter', '=', expected)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  async insertDrill(drill: DrillRecord): Promise<void> {
    try {
      await this.#db
        .insertInto('break_glass_drills')
        .values({
          id: drill.id,
          account_id: drill.accountId,
          activation_id: drill.activationId,
          at: drill.at,
          passed: drill.passed ? 1 : 0,
          report: drill.report,
        })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error))
        throw new PortcullisError(
          'drill_already_recorded',
          `The drill of activation ${drill.activationId} was already recorded`,
          { activationId: drill.activationId },
          { cause: error },
        );
      throw error;
    }
  }

  async getDrillByActivation(activationId: string): Promise<DrillRecord | undefined> {
    const row = await this.#db
      .selectFrom('break_glass_drills')
      .selectAll()
      .where('activation_id', '=', activationId)
      .executeTakeFirst();
    return row && toDrill(row);
  }

  async lastDrill(accountId: string): Promise<DrillRecord | undefined> {
    return (await this.listDrills(accountId, 1))[0];
  }

  async lastPassedDrill(accountId: string): Promise<DrillRecord | undefined> {
    const row = await this.#db
      .selectFrom('break_glass_drills')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('passed', '=', 1)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toDrill(row);
  }

  async listDrills(accountId: string, limit: number): Promise<DrillRecord[]> {
    const rows = await this.#db
      .selectFrom('break_glass_drills')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(listLimit(limit))
      .execute();
    return rows.map(toDrill);
  }
}
