/**
 * The CLI as users and scripts meet it: a real child process for help, exit codes and offline
 * verification, and in-process runs of the commands against a small stand-in for the server's
 * HTTP API (the real server's end-to-end tests live with the composition root).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliArgv } from '../../test-support/cli-entry.js';
import { exitCodes } from './cli-error.js';
import type { CliIo } from './context.js';
import { runCli } from './program.js';
import { type SavedSession, writeSession } from './session-file.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function portcullis(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, cliArgv(args), {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PORTCULLIS_SERVER: '', PORTCULLIS_PROFILE: '', PORTCULLIS_HOME: home, ...env },
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let home: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), 'portcullis-cli-program-'));
});
after(() => rm(home, { recursive: true, force: true }));

describe('portcullis as a child process', () => {
  it('bin/portcullis.js runs the CLI (from dist/ when built, else from the source)', () => {
    const result = spawnSync(process.execPath, [join(repoRoot, 'bin', 'portcullis.js'), '--version'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^\d+\.\d+\.\d+/);
  });

  it('--help lists the commands and the exit codes', () => {
    const { code, stdout } = portcullis(['--help']);
    assert.equal(code, 0);
    for (const command of [
      'serve',
      'dev',
      'login',
      'request',
      'requests',
      'approve',
      'deny',
      'grants',
      'revoke',
      'creds',
      'proxy',
      'gateway',
      'policy',
      'audit',
      'keys',
    ]) {
      assert.match(stdout, new RegExp(`^  ${command}\\b`, 'm'), command);
    }
    assert.match(stdout, /Exit codes:\n {2}0 {3}ok\n/);
    assert.match(stdout, /10 {2}audit verification failed/);
  });

  it('audit verify on a missing file is a usage error with a clear message', () => {
    const { code, stderr, stdout } = portcullis([
      'audit',
      'verify',
      join(home, 'missing.jsonl'),
      '--key',
      join(home, 'k.json'),
    ]);
    assert.equal(code, exitCodes.usage);
    assert.equal(stdout, '');
    assert.match(stderr, /^error\[usage\]: Audit export .*missing\.jsonl cannot be read: no such file\n$/);
  });

  it('unknown commands and missing required flags exit 2', () => {
    assert.equal(portcullis(['frobnicate']).code, exitCodes.usage);
    const deny = portcullis(['deny', 'r1']);
    assert.equal(deny.code, exitCodes.usage);
    assert.match(deny.stderr, /required option '--reason <text>' not specified/);
  });

  it('exits 3 when not signed in', () => {
    const { code, stderr } = portcullis(['whoami', '--profile', 'nobody'], { PORTCULLIS_HOME: home });
    assert.equal(code, exitCodes.unauthenticated);
    assert.match(
      stderr,
      /error\[not_signed_in\]: Not signed in \(profile "nobody"\)\nhint: run `portcullis login --profile nobody`/,
    );
  });

  it('exits 7 when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const server = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await writeSession(home, 'offline', session(server));
    const { code, stderr } = portcullis(['requests', '--profile', 'offline'], { PORTCULLIS_HOME: home });
    assert.equal(code, exitCodes.unavailable);
    assert.match(stderr, /error\[unavailable\]: Cannot reach .*connection refused/);
  });

  it('audit verify: exit 0 for an intact export, 10 naming the first tampered entry', async () => {
    const { openStore } = await import('../storage/open-store.js');
    const { AuditCheckpointer } = await import('../audit/checkpoint.js');
    const { appendTestEvents, auditTestEpoch, exportToLines, testAuditKey } = await import(
      '../audit/audit-test-support.js'
    );
    const key = testAuditKey('audit-cli');
    const store = await openStore('sqlite::memory:');
    try {
      await appendTestEvents(store, 1, 12);
      await new AuditCheckpointer(store.auditLog, key, { everyEvents: 5, everySeconds: 3600 }).checkpointNow(
        auditTestEpoch + 20_000,
      );
      const lines = await exportToLines(store.auditLog);
      const exportFile = join(home, 'audit.jsonl');
      const keyFile = join(home, 'audit-keys.json');
      await writeFile(exportFile, `${lines.join('\n')}\n`);
      await writeFile(keyFile, JSON.stringify({ keys: [key.publicJwk] }));

      const intact = portcullis(['audit', 'verify', exportFile, '--key', keyFile]);
      assert.equal(intact.code, exitCodes.ok, intact.stderr);
      assert.match(intact.stdout, /^OK: .*audit\.jsonl is intact: 12 events, 1 checkpoints/);

      const tampered = lines.map((line) =>
        line.includes('"seq":7,') ? line.replace('"actor":"', '"actor":"mallory-') : line,
      );
      await writeFile(exportFile, `${tampered.join('\n')}\n`);
      const broken = portcullis(['audit', 'verify', exportFile, '--key', keyFile, '--json']);
      assert.equal(broken.code, exitCodes.verificationFailed, broken.stderr);
      const result = JSON.parse(broken.stdout) as { ok: boolean; problem: { kind: string; seq: number } };
      assert.equal(result.ok, false);
      assert.deepEqual([result.problem.kind, result.problem.seq], ['changed', 7]);

      const human = portcullis(['audit', 'verify', exportFile, '--key', keyFile]);
      assert.equal(human.code, exitCodes.verificationFailed);
      assert.match(
        human.stdout,
        /^TAMPERED: .*: changed at entry 7 \(line \d+\)\n {2}entry 7 does not match its hash/,
      );
    } finally {
      await store.close();
    }
  });
});

// ---------------------------------------------------------------- in process, against a stand-in API

function session(server: string, overrides: Partial<SavedSession> = {}): SavedSession {
  return {
    server,
    session_token: 'alice.session.token',
    expires_at: new Date(Date.now() + 3600_000).toISOString(),
    principal: { id: 'demo:alice', display_name: 'Alice', groups: ['engineering'] },
    ...overrides,
  };
}

const now = Date.now();
const request = {
  id: 'r-1',
  requester: 'demo:alice',
  resource: 'demo-db',
  role: 'readonly',
  duration_seconds: 2700,
  reason: 'look at orders \u001b[2J\u202Egnissim',
  ticket: null,
  state: 'pending',
  approvals_required: 1,
  approver_groups: ['sre', 'dba'],
  policy_id: 'engineers-readonly',
  reviews: [],
  grant_id: null,
  created_at: new Date(now - 60_000).toISOString(),
  review_by: new Date(now - 60_000 + 86_400_000).toISOString(),
  activated_at: null,
  expires_at: null,
  ended_at: null,
  end_reason: null,
};

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

function capture(isTTY = false) {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, text: () => Buffer.concat(chunks).toString('utf8') });
}

describe('commands against a stand-in API', () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];

  const routes: Record<string, (body: string, response: ServerResponse) => void> = {
    'GET /api/v1/requests': (_b, res) => json(res, 200, { requests: [request] }),
    'POST /api/v1/requests': (body, res) => {
      const input = JSON.parse(body) as { resource: string };
      if (input.resource === 'prod-db') {
        return json(
          res,
          403,
          {
            code: 'policy_denied',
            detail: 'prod-db needs a ticket',
            status: 403,
            policyIds: ['prod-needs-ticket'],
          },
          'application/problem+json',
        );
      }
      json(res, 201, request);
    },
    'GET /api/v1/me': (_b, res) =>
      json(res, 200, {
        id: 'demo:alice',
        idp: 'demo',
        display_name: 'Alice',
        email: null,
        groups: ['engineering'],
      }),
    'GET /api/v1/grants/g-1/credentials': (_b, res) =>
      json(res, 200, {
        grant_id: 'g-1',
        credentials: { connection_string: 'postgresql://u:p@127.0.0.1/db', username: 'u', password: 'p' },
      }),
    'GET /api/v1/grants/g-1': (_b, res) =>
      json(res, 200, {
        id: 'g-1',
        principal: 'demo:alice',
        resource: 'db',
        role: 'readonly',
        status: 'active',
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      }),
    'POST /api/v1/requests/r-1/approve': (_b, res) =>
      json(
        res,
        409,
        { code: 'invalid_transition', detail: 'The request is not pending', status: 409 },
        'application/problem+json',
      ),
    'GET /api/v1/audit/export': (_b, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"kind":"header","head_seq":2,"checkpoints":1}\n');
      res.end('{"kind":"event","seq":1}\n{"kind":"event","seq":2}\n');
    },
    'GET /api/v1/auth/providers': (_b, res) =>
      json(res, 200, { providers: [{ id: 'demo', display_name: 'Demo' }] }),
  };

  function json(res: ServerResponse, status: number, body: unknown, type = 'application/json') {
    res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
  }

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0];
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          authorization: req.headers.authorization,
          body,
        });
        const route = routes[`${req.method} ${path}`];
        if (route) route(body, res);
        else
          json(
            res,
            404,
            { code: 'not_found', detail: `No route ${path}`, status: 404 },
            'application/problem+json',
          );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await writeSession(home, 'alice', session(base));
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function cli(args: string[], env: Record<string, string> = {}) {
    const stdout = capture();
    const stderr = capture();
    const io: CliIo = {
      env: { PORTCULLIS_HOME: home, PORTCULLIS_PROFILE: 'alice', ...env },
      stdout,
      stderr,
      stdin: Readable.from([]),
      fetch,
      now: () => Date.now(),
      openBrowser: () => assert.fail('no browser in tests'),
    };
    const code = await runCli(['node', 'portcullis', ...args], io);
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  it('lists requests as an aligned table with hostile text neutralised', async () => {
    const { code, stdout } = await cli(['requests', '--reviewable', '--state', 'pending']);
    assert.equal(code, 0);
    assert.equal(seen.at(-1)?.url, '/api/v1/requests?scope=reviewable&state=pending');
    assert.equal(seen.at(-1)?.authorization, 'Bearer alice.session.token');
    const [header, row] = stdout.split('\n');
    assert.match(header ?? '', /^ID {3}REQUESTER {3}ACCESS {12}STATE {8}FOR {2}WHEN {10}REASON$/);
    assert.match(
      row ?? '',
      /^r-1 {2}demo:alice {2}demo-db\/readonly {2}pending 0\/1 {2}45m {2}asked 1m ago {2}look at orders \\x1b\[2J\\u202egnissim$/,
    );
    assert.ok(!stdout.includes('\u001b') && !stdout.includes('\u202E'));
  });

  it('prints JSON for scripts with --json, wherever the flag is', async () => {
    const { code, stdout } = await cli(['--json', 'requests']);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), { requests: [request], next_cursor: null });
    assert.deepEqual(JSON.parse((await cli(['requests', '--json'])).stdout), {
      requests: [request],
      next_cursor: null,
    });
  });

  it('request prints what it waits for', async () => {
    const { code, stdout } = await cli([
      'request',
      'demo-db',
      'readonly',
      '--for',
      '45m',
      '--reason',
      'look at orders',
    ]);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(seen.at(-1)?.body ?? ''), {
      resource: 'demo-db',
      role: 'readonly',
      duration: '45m',
      reason: 'look at orders',
    });
    assert.match(
      stdout,
      /^Request r-1: demo-db\/readonly for 45m\n {2}pending: waiting for 1 more approval \(of 1\) from sre, dba; policy engineers-readonly; lapses in 23h 5[89]m\n$/,
    );
  });

  it('a policy denial exits 4 with error[code]: detail on stderr', async () => {
    const { code, stdout, stderr } = await cli(['request', 'prod-db', 'migrate', '--for', '1h']);
    assert.equal(code, exitCodes.forbidden);
    assert.equal(stdout, '');
    assert.equal(stderr, 'error[policy_denied]: prod-db needs a ticket (policy: prod-needs-ticket)\n');
  });

  it('a wrong state exits 6, an unknown id 5, a bad duration 2 before any call', async () => {
    assert.equal((await cli(['approve', 'r-1'])).code, exitCodes.conflict);
    assert.equal((await cli(['show', 'r-404'])).code, exitCodes.notFound);
    const calls = seen.length;
    const bad = await cli(['request', 'demo-db', 'readonly', '--for', 'forever']);
    assert.equal(bad.code, exitCodes.usage);
    assert.match(bad.stderr, /--for "forever" is not a duration/);
    assert.equal(seen.length, calls);
  });

  it('proxy refuses a grant whose credentials are direct (exit 2), and a non-loopback address before any call', async () => {
    const direct = await cli(['proxy', 'g-1']);
    assert.equal(direct.code, exitCodes.usage);
    assert.match(
      direct.stderr,
      /^error\[not_gateway_only\]: Grant g-1 is on a resource that is not gateway-only/,
    );
    assert.match(direct.stderr, /hint: connect with `portcullis creds g-1`/);
    const calls = seen.length;
    const exposed = await cli(['proxy', 'g-1', '--host', '0.0.0.0']);
    assert.equal(exposed.code, exitCodes.usage);
    assert.match(exposed.stderr, /--host must be a loopback address/);
    assert.equal((await cli(['proxy', 'g-1', '--port', '70000'])).code, exitCodes.usage);
    const weak = await cli(['proxy', 'g-1'], { PORTCULLIS_PROXY_PASSWORD: 'short' });
    assert.equal(weak.code, exitCodes.usage);
    assert.equal(seen.length, calls);
  });

  it('creds prints just the connection string, all fields with --json', async () => {
    assert.equal((await cli(['creds', 'g-1'])).stdout, 'postgresql://u:p@127.0.0.1/db\n');
    assert.equal(JSON.parse((await cli(['creds', 'g-1', '--json'])).stdout).credentials.password, 'p');
  });

  it('creds --ssh-key on a grant whose credentials are a password exits 2 and writes nothing', async () => {
    const keyFile = join(home, 'not-an-ssh-grant');
    const result = await cli(['creds', 'g-1', '--ssh-key', keyFile]);
    assert.equal(result.code, exitCodes.usage);
    assert.match(
      result.stderr,
      /grant g-1 has no SSH key and certificate: --ssh-key is for grants of ssh resources/,
    );
    assert.equal(result.stdout, '', 'the password is not printed instead');
    await assert.rejects(stat(keyFile), { code: 'ENOENT' });
    await assert.rejects(stat(`${keyFile}-cert.pub`), { code: 'ENOENT' });
  });

  it('never sends the session token to a server that did not issue it', async () => {
    const calls = seen.length;
    const { code, stderr } = await cli(['whoami', '--server', 'http://127.0.0.1:1']);
    assert.equal(code, exitCodes.unauthenticated);
    assert.match(
      stderr,
      /Profile "alice" is signed in to http:\/\/127\.0\.0\.1:\d+, not http:\/\/127\.0\.0\.1:1/,
    );
    assert.equal(seen.length, calls);
  });

  it('refuses an expired session and a world-readable session file (exit 3)', async () => {
    await writeSession(home, 'old', session(base, { expires_at: new Date(Date.now() - 1000).toISOString() }));
    const expired = await cli(['whoami', '--profile', 'old']);
    assert.equal(expired.code, exitCodes.unauthenticated);
    assert.match(expired.stderr, /error\[session_expired\]/);
    if (process.platform !== 'win32') {
      const path = await writeSession(home, 'loose', session(base));
      await chmod(path, 0o644);
      const loose = await cli(['whoami', '--profile', 'loose']);
      assert.equal(loose.code, exitCodes.unauthenticated);
      assert.match(loose.stderr, /error\[session_file_insecure\]: Refusing to use .*loose\.json/);
    }
  });

  it('audit export streams to stdout, or to a 0600 file', async () => {
    const piped = await cli(['audit', 'export']);
    assert.equal(piped.code, 0);
    assert.equal(piped.stdout.split('\n').length, 4);
    const file = join(home, 'export.jsonl');
    const saved = await cli(['audit', 'export', '--output', file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /Wrote .*export\.jsonl: 2 events, 1 signed checkpoints/);
    assert.equal(
      (await readFile(file, 'utf8')).split('\n')[0],
      '{"kind":"header","head_seq":2,"checkpoints":1}',
    );
    if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('whoami shows the principal and never the token', async () => {
    const { code, stdout } = await cli(['whoami']);
    assert.equal(code, 0);
    assert.match(stdout, /^Alice \(demo:alice\)\n {2}identity provider {2}demo\n {2}groups {13}engineering/);
    assert.ok(!stdout.includes('alice.session.token'));
    assert.ok(!(await cli(['whoami', '--json'])).stdout.includes('alice.session.token'));
  });

  it('scripted login needs a password from stdin or PORTCULLIS_PASSWORD, never an argument', async () => {
    const { code, stderr } = await cli([
      'login',
      '--profile',
      'new',
      '--server',
      base,
      '--username',
      'alice',
    ]);
    assert.equal(code, exitCodes.usage);
    assert.match(
      stderr,
      /--username needs a password: pipe it with --password-stdin or set PORTCULLIS_PASSWORD/,
    );
  });
});
