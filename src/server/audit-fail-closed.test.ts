/**
 * Fail closed: when the audit event cannot be written, the action it describes does not happen.
 * The audit table is made to refuse inserts with a real database trigger, on both dialects.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { postgresSkipReason } from '../../test-support/postgres.js';
import Database from '../storage/better-sqlite3.js';

interface AuditBreaker {
  breakAudit(): Promise<void>;
  repairAudit(): Promise<void>;
  close(): Promise<void>;
}

function sqliteBreaker(storageUrl: string): AuditBreaker {
  const db = new Database(storageUrl.slice('sqlite:'.length));
  return {
    async breakAudit() {
      db.exec(
        "create trigger refuse_audit before insert on audit_events begin select raise(abort, 'audit disk full'); end",
      );
    },
    async repairAudit() {
      db.exec('drop trigger refuse_audit');
    },
    async close() {
      db.close();
    },
  };
}

async function postgresBreaker(storageUrl: string): Promise<AuditBreaker> {
  const client = new pg.Client({ connectionString: storageUrl });
  await client.connect();
  return {
    async breakAudit() {
      await client.query(`
        create function refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'audit disk full'; end $$;
        create trigger refuse_audit before insert on audit_events for each row execute function refuse_audit();`);
    },
    async repairAudit() {
      await client.query('drop trigger refuse_audit on audit_events; drop function refuse_audit();');
    },
    async close() {
      await client.end();
    },
  };
}

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`fail closed on ${storage}`, () => {
    let h: Harness;
    let breaker: AuditBreaker;
    let skip: string | undefined;
    const tokens: Record<string, string> = {};

    before(async () => {
      skip = storage === 'postgres' ? await postgresSkipReason() : undefined;
      if (skip) return;
      h = await startHarness({
        storage,
        policyFile: join(import.meta.dirname, '../../test-support/policies/review.cedar'),
      });
      tokens.alice = await h.login('alice');
      tokens.bob = await h.login('bob');
      breaker = storage === 'sqlite' ? sqliteBreaker(h.storageUrl) : await postgresBreaker(h.storageUrl);
    });
    after(async () => {
      await breaker?.close();
      await h?.close();
    });

    test('an approval whose audit event cannot be written does not happen', async (t) => {
      if (skip) return t.skip(skip);
      const created = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
        resource: 'demo-api',
        role: 'operator',
        duration: '10m',
        reason: 'fail closed',
      });
      assert.equal(created.status, 201);
      const id = created.body.id as string;
      const headBefore = await h.portcullis.store.auditLog.head();

      await breaker.breakAudit();
      const refused = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'audit_unavailable');
      const stored = await h.portcullis.store.requests.get(id);
      assert.equal(stored?.state, 'pending');
      assert.equal(stored?.reviews.length, 0);
      assert.equal(await h.portcullis.store.grants.getByRequest(id), undefined);

      const noRequest = await h.api(tokens.alice ?? '', 'POST', '/api/v1/requests', {
        resource: 'demo-api',
        role: 'operator',
        duration: '10m',
        reason: 'must not be stored',
      });
      assert.equal(noRequest.status, 503);
      const mine = await h.portcullis.store.requests.list({ requesterIds: ['demo:alice'], limit: 100 });
      assert.ok(!mine.some((r) => r.reason === 'must not be stored'));
      assert.deepEqual(await h.portcullis.store.auditLog.head(), headBefore);

      await breaker.repairAudit();
      const approved = await h.api(tokens.bob ?? '', 'POST', `/api/v1/requests/${id}/approve`, {});
      assert.equal(approved.status, 200);
      assert.equal(approved.body.state, 'active');
    });
  });
}
