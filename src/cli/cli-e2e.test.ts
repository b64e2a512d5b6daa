/**
 * The real `portcullis` binary against a real server and the real demo IdP: login, request,
 * approve, use and revoke, with the documented exit codes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliProcess } from '../../test-support/cli-entry.js';
import { type Harness, startHarness } from '../../test-support/portcullis-harness.js';

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('the portcullis CLI end to end', () => {
  let h: Harness;
  let home: string;

  function cli(args: string[], input?: string): Promise<Result> {
    return runCliProcess(args, { PORTCULLIS_HOME: home, PORTCULLIS_SERVER: h.url }, input);
  }

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
    h = await startHarness({
      storage: 'sqlite',
      policyFile: join(import.meta.dirname, '../../test-support/policies/review.cedar'),
    });
  });
  after(async () => {
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('request → approve → token → revoke, with exit codes scripts can rely on', async () => {
    const notSignedIn = await cli(['requests', '--profile', 'alice']);
    assert.equal(notSignedIn.code, 3, notSignedIn.stderr);

    for (const user of ['alice', 'bob']) {
      const login = await cli(
        ['login', '--profile', user, '--username', user, '--password-stdin', '--no-browser'],
        `${user}-demo-password\n`,
      );
      assert.equal(login.code, 0, login.stderr);
    }
    const whoami = await cli(['whoami', '--profile', 'alice', '--json']);
    assert.equal(JSON.parse(whoami.stdout).id, 'demo:alice');

    const requested = await cli([
      'request',
      'demo-api',
      'operator',
      '--for',
      '10m',
      '--reason',
      'cli test',
      '--profile',
      'alice',
      '--json',
    ]);
    assert.equal(requested.code, 0, requested.stderr);
    const request = JSON.parse(requested.stdout) as { id: string; state: string };
    assert.equal(request.state, 'pending');

    const own = await cli(['approve', request.id, '--profile', 'alice']);
    assert.equal(own.code, 4, own.stderr);
    assert.match(own.stderr, /self_review/);

    const reviewable = await cli(['requests', '--reviewable', '--profile', 'bob', '--json']);
    const listed = JSON.parse(reviewable.stdout) as { requests?: { id: string }[] } | { id: string }[];
    const ids = (Array.isArray(listed) ? listed : (listed.requests ?? [])).map((r) => r.id);
    assert.ok(ids.includes(request.id));

    const approved = await cli(['approve', request.id, '--reason', 'ok', '--profile', 'bob', '--json']);
    assert.equal(approved.code, 0, approved.stderr);
    const active = JSON.parse(approved.stdout) as { state: string; grant_id: string };
    assert.equal(active.state, 'active');

    const again = await cli(['approve', request.id, '--profile', 'bob']);
    assert.equal(again.code, 6, again.stderr);
    const missing = await cli(['show', '00000000-0000-0000-0000-000000000000', '--profile', 'bob']);
    assert.equal(missing.code, 5, missing.stderr);

    const token = await cli(['token', active.grant_id, '--profile', 'alice']);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    // A token grant has no credentials at all, let alone an SSH key: nothing is written.
    const notSsh = await cli(['creds', active.grant_id, '--ssh-key', join(home, 'k'), '--profile', 'alice']);
    assert.equal(notSsh.code, 5, notSsh.stderr);
    assert.equal(existsSync(join(home, 'k')), false);

    const revoked = await cli([
      'revoke',
      active.grant_id,
      '--reason',
      'done',
      '--profile',
      'alice',
      '--json',
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).status, 'revoked');

    const denied = await cli([
      'request',
      'demo-api',
      'operator',
      '--for',
      '10m',
      '--reason',
      'x',
      '--profile',
      'bob',
    ]);
    assert.equal(denied.code, 4, denied.stderr);
    assert.match(denied.stderr, /policy_denied/);

    // logout ends the session at the server, not only here.
    const saved = JSON.parse(readFileSync(join(home, 'sessions', 'bob.json'), 'utf8')) as {
      session_token: string;
    };
    const out = await cli(['logout', '--profile', 'bob', '--json']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).ended_at_server, true);
    assert.equal((await h.api(saved.session_token, 'GET', '/api/v1/me')).status, 401);
    assert.equal((await cli(['whoami', '--profile', 'bob'])).code, 3);
  });
});
