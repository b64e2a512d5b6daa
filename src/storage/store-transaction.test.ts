import assert from 'node:assert/strict';
import { it } from 'node:test';
import { forEachDialect } from '../../test-support/dialects.js';
import type { AuditEventInput } from '../core/audit-event.js';
import { PortcullisError } from '../core/errors.js';
import { testEpoch, testGrant, testRequest } from './test-fixtures.js';

const created = (requestId: string): AuditEventInput => ({
  type: 'request.created',
  actor: 'okta:alice',
  requestId,
  reason: 'migration INC-42',
});

forEachDialect('Store.transaction', (ctx) => {
  it('commits state and audit events together', async () => {
    const result = await ctx.store.transaction(async (tx) => {
      await tx.requests.insert(testRequest('r1'));
      const record = await tx.audit.append(created('r1'), testEpoch);
      return record.seq;
    });
    assert.equal(result, 1);
    assert.equal((await ctx.store.requests.get('r1'))?.id, 'r1');
    const [event, ...rest] = await ctx.store.auditLog.read(0, 10);
    assert.deepEqual(rest, []);
    assert.equal(event?.type, 'request.created');
    assert.equal(event?.requestId, 'r1');
    assert.equal(event?.at, testEpoch);
    assert.equal((await ctx.store.auditLog.head()).seq, 1);
  });

  it('rolls back state and audit events when the work throws', async () => {
    await ctx.store.requests.insert(testRequest('r0'));
    const before = await ctx.store.auditLog.head();
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.requests.insert(testRequest('r1'));
        await tx.grants.insert(testGrant('g1', testRequest('r0')));
        await tx.grants.setSealedCredentials('g1', 'sealed');
        await tx.principals.upsert(
          { id: 'okta:x', idp: 'okta', subject: 'x', displayName: 'X', email: null, groups: [] },
          1,
        );
        await tx.ephemeral.put('oidc_state', 's', 'v', testEpoch + 1000);
        await tx.audit.append(created('r1'), testEpoch);
        throw new Error('provisioning exploded');
      }),
      /provisioning exploded/,
    );
    assert.equal(await ctx.store.requests.get('r1'), undefined);
    assert.equal(await ctx.store.grants.get('g1'), undefined);
    assert.equal(await ctx.store.principals.get('okta:x'), undefined);
    assert.equal(await ctx.store.ephemeral.take('oidc_state', 's', testEpoch), undefined);
    assert.deepEqual(await ctx.store.auditLog.read(0, 10), []);
    assert.deepEqual(await ctx.store.auditLog.head(), before);
  });

  it('fails closed: when the audit event cannot be written, the state change is undone', async () => {
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.requests.insert(testRequest('r1'));
        await tx.audit.append(
          { type: 'no.such.event', actor: 'system' } as unknown as AuditEventInput,
          testEpoch,
        );
      }),
      (error: unknown) => error instanceof PortcullisError && error.code === 'audit_unavailable',
    );
    assert.equal(await ctx.store.requests.get('r1'), undefined);
  });

  it('runs 20 concurrent transactions without losing or interleaving any', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    const seqs = await Promise.all(
      ids.map((id) =>
        ctx.store.transaction(async (tx) => {
          await tx.requests.insert(testRequest(id));
          // Yield between statements, so transactions would interleave if nothing serialised them.
          await new Promise((resolve) => setImmediate(resolve));
          const record = await tx.audit.append(created(id), testEpoch);
          await new Promise((resolve) => setImmediate(resolve));
          return record.seq;
        }),
      ),
    );
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.equal((await ctx.store.requests.list({})).length, 20);
    const events = await ctx.store.auditLog.read(0, 100);
    assert.deepEqual(
      events.map((event) => event.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    for (const [i, event] of events.entries()) {
      if (i > 0) assert.equal(event.prevHash, events[i - 1]?.hash, `chain unbroken at ${event.seq}`);
    }
  });

  it('refuses the store itself inside a transaction, instead of deadlocking or escaping it', async () => {
    await assert.rejects(
      ctx.store.transaction(async () => {
        await ctx.store.requests.get('r1');
      }),
      /use the `tx` passed to the transaction callback/,
    );
    await assert.rejects(
      ctx.store.transaction(() => ctx.store.transaction(async () => 1)),
      /use the `tx` passed to the transaction callback/,
    );
    await assert.rejects(
      ctx.store.transaction(() => ctx.store.auditLog.head()),
      /use the `tx` passed to the transaction callback/,
    );
    assert.equal(await ctx.store.requests.get('r1'), undefined, 'the store works again afterwards');
  });

  it('refuses a transaction handle used after its transaction ended', async () => {
    const leaked = await ctx.store.transaction(async (tx) => tx);
    await assert.rejects(leaked.requests.get('r1'), /after it ended/);
  });
});
