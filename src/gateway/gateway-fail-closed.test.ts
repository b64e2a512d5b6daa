/**
 * Fail closed, end to end: the audit store really stops accepting writes (a SQLite trigger that
 * aborts every insert into audit_events, installed behind the running Portcullis's back). The live
 * session is cut with FATAL 57P01, new logins are refused with 57P03, and once the store accepts
 * writes again the queued statement records, the session's end and a `gateway.recording_failed`
 * event are all in the hash chain (the export verifies; a changed statement text is detected), and
 * logins work again.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { JWK } from 'jose';
import {
  connectViaGateway,
  type GatewayGrant,
  gatewayEvents,
  liveGrant,
  recordedStatements,
  rejection,
  viaGateway,
} from '../../test-support/gateway-fixtures.js';
import { useGatewayWorld } from '../../test-support/gateway-world.js';
import { waitFor } from '../../test-support/wait-for.js';
import { exportToLines } from '../audit/audit-test-support.js';
import { verifyAuditExport } from '../audit/verify.js';
import BetterSqlite3 from '../storage/better-sqlite3.js';

let grant: GatewayGrant;
const world = useGatewayWorld({
  users: ['alice', 'bob'],
  setUp: async ({ h, sessions }) => {
    grant = await liveGrant(h, sessions);
  },
});

/** Runs `sql` on the Portcullis database through a connection of its own. */
function onStore(sql: string): void {
  const db = new BetterSqlite3(join(world.h.dir, 'portcullis.db'), { timeout: 5000 });
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

describe('gateway fail closed', () => {
  test('an audit store that refuses writes cuts the live session and refuses logins until it recovers', async (t) => {
    if (world.skip) return t.skip(world.skip);
    const c = await connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token));
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    await world.h.portcullis.gateway?.flushRecords();

    onStore(`create trigger audit_refused before insert on audit_events
             begin select raise(abort, 'audit store refuses writes (test)'); end`);
    const cutAt = Date.now();
    const error = await rejection(c.query('select pg_sleep(10) as slept'));
    assert.equal(error.code, '57P01');
    assert.match(error.message, /the audit log cannot be written/);
    assert.ok(Date.now() - cutAt < 3000, `cut after ${Date.now() - cutAt} ms`);

    const refused = await rejection(connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token)));
    assert.equal(refused.code, '57P03');
    assert.match(refused.message, /audit log cannot be written/);
    // What an operator alerts on.
    const metrics = await fetch(`${world.h.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /^portcullis_gateway_recording_writable 0$/m);
    assert.match(metrics, /^portcullis_gateway_terminations_total\{reason="recording_failed"\} 1$/m);
    assert.match(metrics, /^portcullis_gateway_logins_total\{outcome="unavailable"\} 1$/m);

    onStore('drop trigger audit_refused');
    const again = await waitFor(
      'a login after the audit store recovered',
      () => connectViaGateway(viaGateway(world.h, 'demo:alice', grant.token)).catch(() => undefined),
      5000,
    );
    assert.equal((await again.query('select 2 as two')).rows[0].two, 2);
    await again.end();

    const statements = (await recordedStatements(world.h)).filter((s) => s.grantId === grant.grantId);
    const slept = statements.find((s) => s.data.sql === 'select pg_sleep(10) as slept');
    assert.ok(slept, 'the statement that was running is on record after the recovery');
    const session = slept?.data.session;
    assert.deepEqual(
      statements.filter((s) => s.data.session === session).map((s) => [s.number, s.data.sql]),
      [
        [1, 'select 1 as one'],
        [2, 'select pg_sleep(10) as slept'],
      ],
    );
    const ended = (await gatewayEvents(world.h, 'gateway.session_ended')).find(
      (e) => e.data.session === session,
    );
    assert.equal(ended?.reason, 'recording_failed');
    assert.equal(ended?.data.statements, 2);
    const failed = await gatewayEvents(world.h, 'gateway.recording_failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.severity, 'high');

    // The statements are in the hash chain: the export verifies, and changing one SQL text breaks it.
    const lines = await exportToLines(world.h.portcullis.store.auditLog);
    const jwks = (await (await fetch(`${world.h.url}/.well-known/portcullis-audit-keys.json`)).json()) as {
      keys: JWK[];
    };
    const verified = await verifyAuditExport(lines, jwks.keys);
    assert.equal(verified.ok, true, JSON.stringify(verified));
    const tampered = lines.map((line) =>
      line.includes('select pg_sleep(10) as slept') ? line.replace('pg_sleep(10)', 'pg_sleep(11)') : line,
    );
    assert.notDeepEqual(tampered, lines);
    const result = await verifyAuditExport(tampered, jwks.keys);
    assert.equal(result.ok, false);
    assert.equal(result.ok ? undefined : result.problem.kind, 'changed');
  });
});
