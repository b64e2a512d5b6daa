/**
 * An audit stream configured in the file, end to end: a real Portcullis streams its audit log to a
 * real HTTP collector (test-support/audit-collector.ts) as people sign in and ask for access, and
 * /metrics says how far behind the stream is.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AuditCollector, startAuditCollector } from '../../test-support/audit-collector.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

const secret = 'whsec-e2e-audit-stream-0123456789abcd';

describe('audit streaming to a SIEM collector', () => {
  let h: Harness;
  let collector: AuditCollector;
  let dir: string;

  before(async () => {
    collector = await startAuditCollector({ secret });
    dir = mkdtempSync(join(tmpdir(), 'pc-audit-stream-'));
    writeFileSync(join(dir, 'stream-secret'), secret);
    h = await startHarness({
      storage: 'sqlite',
      configOverrides: {
        audit: {
          streams: [
            {
              name: 'siem',
              type: 'webhook',
              url: collector.url,
              secret: { file: join(dir, 'stream-secret') },
              start_at: 'beginning',
            },
          ],
        },
      },
    });
  });
  after(async () => {
    await h?.close();
    await collector?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every event reaches the collector in order, from the first; /metrics shows the lag', async () => {
    const alice = await h.login('alice');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '1h',
      reason: 'stream test',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const head = (await h.portcullis.store.auditLog.head()).seq;
    while ((collector.inOrder().at(-1)?.seq ?? 0) < head) await sleep(50);

    const copy = collector.inOrder();
    assert.equal(copy[0]?.seq, 1, 'the stream started at the first event');
    assert.equal(copy[0]?.type, 'config.loaded');
    const ours = copy.filter((e) => e.request_id === created.body.id).map((e) => e.type);
    assert.ok(ours.includes('request.created'), ours.join(', '));
    const stored = await h.portcullis.store.auditLog.read(0, head);
    assert.deepEqual(
      copy.slice(0, head).map((e) => e.hash),
      stored.map((e) => e.hash),
    );

    let metrics = '';
    for (let i = 0; i < 100 && !/portcullis_audit_stream_lag_events\{stream="siem"\} 0/.test(metrics); i++) {
      metrics = await fetch(`${h.url}/metrics`).then((r) => r.text());
      await sleep(50);
    }
    assert.match(metrics, /portcullis_audit_stream_lag_events\{stream="siem"\} 0/);
    assert.match(metrics, /portcullis_audit_stream_delivered_seq\{stream="siem"\} \d+/);
  });
});
