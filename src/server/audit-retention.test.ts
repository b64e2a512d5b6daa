/**
 * `audit.retention` in a running server: once the oldest signed checkpoint is older than the
 * retention, the maintenance tick cuts the log there; the export an administrator downloads then
 * starts after the cut and still verifies offline with `portcullis audit verify` (a real CLI
 * process), and `portcullis audit report` says that the period reaches back before the log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';
import { waitFor } from '../../test-support/wait-for.js';
import { ManualClock } from '../core/clock.js';

const day = 86_400_000;

describe('audit retention in a running server', () => {
  const clock = new ManualClock(Date.now());
  let h: Harness;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-audit-retention-'));
    h = await startHarness({
      storage: 'sqlite',
      clock,
      // One session outlives the jump in time, so nobody signs in again with the demo IdP's clock.
      tokenOverrides: { session_ttl: '90d', rotation_overlap: '90d' },
      configOverrides: { audit: { retention: '30d' } },
    });
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function exportTo(session: string, name: string): Promise<string> {
    const exported = await fetch(`${h.url}/api/v1/audit/export`, {
      headers: { authorization: `Bearer ${session}` },
    });
    assert.equal(exported.status, 200);
    const file = join(dir, name);
    writeFileSync(file, await exported.text());
    return file;
  }

  test('cuts the log at a checkpoint older than 30 days; what remains verifies offline', async () => {
    const alice = await h.login('alice');
    const dave = await h.login('dave');
    const created = await h.api(alice, 'POST', '/api/v1/requests', {
      resource: 'demo-api',
      role: 'reader',
      duration: '1h',
      reason: 'before the cut',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // The export signs a checkpoint over everything so far: the place the cut will be made.
    await exportTo(dave, 'before.jsonl');
    const signedHead = (await h.portcullis.store.auditLog.lastCheckpoint())?.seq ?? 0;
    assert.ok(signedHead > 1);

    clock.advance(31 * day);
    const floor = await waitFor('the retention cut', async () => {
      const through = await h.portcullis.store.auditLog.prunedThrough();
      return through > 0 ? through : undefined;
    });
    assert.ok(floor >= signedHead, `cut at ${floor}, the checkpoint was at ${signedHead}`);
    const kept = await h.portcullis.store.auditLog.read(0, 1000);
    assert.equal(kept[0]?.seq, floor + 1);
    const pruned = kept.find((event) => event.type === 'audit.pruned');
    assert.equal(pruned?.data?.throughSeq, floor);
    const asked = (event: (typeof kept)[number]) =>
      event.requestId === created.body.id && event.type === 'request.created';
    assert.equal(kept.filter(asked).length, 0, 'the request was made before the cut');

    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^portcullis_audit_first_kept_seq ${floor + 1}$`, 'm'));

    const file = await exportTo(dave, 'after.jsonl');
    const keys = join(dir, 'audit-keys.json');
    writeFileSync(keys, await (await fetch(`${h.url}/.well-known/portcullis-audit-keys.json`)).text());
    const verified = await runCliProcess(['audit', 'verify', file, '--key', keys], {});
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`entries 1–${floor} were removed by retention`));

    const report = await runCliProcess(['audit', 'report', file, '--key', keys, '--json'], {});
    assert.equal(report.code, 0, report.stderr);
    const { report: body } = JSON.parse(report.stdout) as {
      report: { coversPeriod: boolean; logBegins: { seq: number } };
    };
    assert.deepEqual([body.coversPeriod, body.logBegins.seq], [false, floor + 1]);
    const human = await runCliProcess(['audit', 'report', file, '--key', keys], {});
    assert.match(human.stdout, /retention removed the events before it/);
    const recent = await runCliProcess(
      [
        'audit',
        'report',
        file,
        '--key',
        keys,
        '--json',
        // The server's clock is a month ahead of the CLI's.
        '--from',
        new Date(clock.now() - day).toISOString(),
        '--to',
        new Date(clock.now() + day).toISOString(),
      ],
      {},
    );
    assert.equal(
      (JSON.parse(recent.stdout) as { report: { coversPeriod: boolean } }).report.coversPeriod,
      true,
    );

    // The export from before the cut still verifies on its own, from entry 1.
    const old = await runCliProcess(['audit', 'verify', join(dir, 'before.jsonl'), '--key', keys], {});
    assert.equal(old.code, 0, old.stdout);
  });
});
