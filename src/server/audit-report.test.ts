/**
 * The access report end to end: people ask, approve, deny and release through the real API, an
 * administrator downloads the export and the audit keys, and `portcullis audit report` (a real CLI
 * process) tells who held what, approved by whom — and refuses a tampered export.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

const policy = `
@id("reader-auto")
@auto_approve("true")
@approvals("0")
@max_duration("8h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/reader");

@id("operator-one-approval")
@approvals("1")
@approver_groups("sre")
@max_duration("1h")
permit (principal in Portcullis::Group::"engineering", action == Portcullis::Action::"request",
  resource == Portcullis::Role::"demo-api/operator") when { context.reason != "" };

@id("approvers")
permit (principal, action == Portcullis::Action::"approve", resource)
when { principal in Portcullis::Group::"sre" };

@id("admins-view-audit")
permit (principal in Portcullis::Group::"admins", action == Portcullis::Action::"view_audit", resource);
`;

interface ReportJson {
  report: {
    access: {
      grantId: string;
      principal: string;
      role: string;
      approvedBy: string;
      approvers: string[];
      end: string | null;
      reason: string;
    }[];
    decisions: { requestId: string; outcome: string; by: string[] }[];
    anomalies: unknown[];
    findings: unknown[];
  };
}

describe('portcullis audit report over a real export', () => {
  let h: Harness;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-audit-report-'));
    writeFileSync(join(dir, 'policy.cedar'), policy);
    h = await startHarness({ storage: 'sqlite', policyFile: join(dir, 'policy.cedar') });
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('who held what, approved by whom, how it ended; a tampered export gets no report', async () => {
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const ask = async (role: string, reason: string) => {
      const created = await h.api(alice, 'POST', '/api/v1/requests', {
        resource: 'demo-api',
        role,
        duration: '30m',
        reason,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body;
    };
    const reader = await ask('reader', 'read the orders dashboard');
    const released = await h.api(alice, 'POST', `/api/v1/grants/${reader.grant_id}/revoke`, {
      reason: 'done',
    });
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const operator = await ask('operator', 'INC-4411 restart the consumer');
    const approved = await h.api(bob, 'POST', `/api/v1/requests/${operator.id}/approve`, {});
    assert.equal(approved.body.state, 'active', JSON.stringify(approved.body));
    const refused = await ask('operator', 'just curious');
    assert.equal(
      (await h.api(bob, 'POST', `/api/v1/requests/${refused.id}/deny`, { reason: 'no' })).status,
      200,
    );

    const dave = await h.login('dave');
    const exported = await fetch(`${h.url}/api/v1/audit/export`, {
      headers: { authorization: `Bearer ${dave}` },
    });
    assert.equal(exported.status, 200);
    const exportFile = join(dir, 'audit.jsonl');
    writeFileSync(exportFile, await exported.text());
    const keyFile = join(dir, 'audit-keys.json');
    writeFileSync(keyFile, await (await fetch(`${h.url}/.well-known/portcullis-audit-keys.json`)).text());

    const json = await runCliProcess(['audit', 'report', exportFile, '--key', keyFile, '--json'], {});
    assert.equal(json.code, 0, json.stderr);
    const { report } = JSON.parse(json.stdout) as ReportJson;
    const byGrant = new Map(report.access.map((a) => [a.grantId, a]));
    const readerAccess = byGrant.get(String(reader.grant_id));
    assert.deepEqual(
      [readerAccess?.role, readerAccess?.approvedBy, readerAccess?.end, readerAccess?.reason],
      ['reader', 'auto', 'released', 'read the orders dashboard'],
    );
    const operatorAccess = byGrant.get(String(approved.body.grant_id));
    assert.equal(operatorAccess?.approvedBy, 'approvers');
    assert.equal(operatorAccess?.approvers.length, 1);
    assert.match(String(operatorAccess?.approvers[0]), /^demo:/);
    assert.equal(operatorAccess?.end, null, 'still live');
    assert.equal(report.access.length, 2);
    assert.deepEqual(
      report.decisions.filter((d) => d.requestId === refused.id).map((d) => d.outcome),
      ['denied'],
    );
    assert.deepEqual(report.anomalies, []);

    const human = await runCliProcess(['audit', 'report', exportFile, '--key', keyFile], {});
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /From .*audit\.jsonl: verified, \d+ events/);
    assert.match(human.stdout, /Access held: 2 grant\(s\), 1 person\(s\)/);
    assert.match(human.stdout, /demo-api\/operator/);
    assert.match(human.stdout, /Anomalies: none/);

    const csv = await runCliProcess(['audit', 'report', exportFile, '--key', keyFile, '--csv', 'access'], {});
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.trimEnd().split('\r\n');
    assert.match(rows[0] ?? '', /^grant_id,request_id,principal,resource,role,approved_by,/);
    assert.equal(rows.length, 3, csv.stdout);
    assert.ok(rows.some((row) => row.startsWith(`"${reader.grant_id}",`) && row.includes(',"auto",')));
    const both = await runCliProcess(
      ['--json', 'audit', 'report', exportFile, '--key', keyFile, '--csv', 'access'],
      {},
    );
    assert.equal(both.code, 2, 'a usage error');

    // The period is honoured: nothing happened before 2000.
    const empty = await runCliProcess(
      [
        'audit',
        'report',
        exportFile,
        '--key',
        keyFile,
        '--from',
        '1999-01-01',
        '--to',
        '2000-01-01',
        '--json',
      ],
      {},
    );
    assert.equal((JSON.parse(empty.stdout) as ReportJson).report.access.length, 0);

    // A line written differently but with the same content still verifies, and still counts.
    const original = readFileSync(exportFile, 'utf8');
    const reformatted = original
      .split('\n')
      .map((line) =>
        line.includes('"type":"grant.activated"') ? line.replace('"kind":"event"', '"kind": "event"') : line,
      )
      .join('\n');
    assert.notEqual(reformatted, original);
    writeFileSync(exportFile, reformatted);
    const again = await runCliProcess(['audit', 'report', exportFile, '--key', keyFile, '--json'], {});
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal((JSON.parse(again.stdout) as ReportJson).report.access.length, 2);

    // Someone edits who approved: the export no longer verifies, and there is no report.
    const lines = readFileSync(exportFile, 'utf8').split('\n');
    const forged = lines.map((line) =>
      line.includes('"type":"request.approved"')
        ? line.replace('"approvals":["', '"approvals":["mallory-')
        : line,
    );
    writeFileSync(exportFile, forged.join('\n'));
    const tampered = await runCliProcess(['audit', 'report', exportFile, '--key', keyFile], {});
    assert.equal(tampered.code, 10, tampered.stdout + tampered.stderr);
    assert.match(tampered.stdout, /^TAMPERED: /);
    assert.doesNotMatch(tampered.stdout, /Access held/);
  });
});
