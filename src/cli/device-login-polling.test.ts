/**
 * The CLI's side of the device login against a small real HTTP server that plays the two server
 * endpoints: it waits the interval the server names, slows down when told, stops on the server's
 * refusal or when the code expires, and reports an IdP without the device flow as null (the
 * caller then uses the browser login).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ApiClient } from './api-client.js';
import { CliError } from './cli-error.js';
import { deviceLogin } from './device-login.js';

type Answer = { status: number; body: Record<string, unknown> };

const world = {
  start: { status: 200, body: {} } as Answer,
  polls: [] as Answer[],
  polled: 0,
};

const complete: Answer = {
  status: 200,
  body: {
    status: 'complete',
    session_token: 'tok',
    expires_at: '2030-01-01T00:00:00.000Z',
    principal: { id: 'demo:alice', display_name: 'Alice', groups: [] },
  },
};

let server: Server;
let url: string;

before(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const answer =
        request.url === '/api/v1/auth/device'
          ? world.start
          : (world.polls[world.polled++] ?? { status: 500, body: { code: 'internal' } });
      response
        .writeHead(answer.status, {
          'content-type': answer.status === 200 ? 'application/json' : 'application/problem+json',
        })
        .end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
});
beforeEach(() => {
  world.start = {
    status: 200,
    body: {
      device_id: 'd1',
      user_code: 'ABCD-EFGH',
      verification_uri: 'https://idp.example.com/device',
      verification_uri_complete: null,
      expires_at: '2030-01-01T00:00:00.000Z',
      interval: 5,
    },
  };
  world.polls = [];
  world.polled = 0;
});

function run(now = () => Date.parse('2029-01-01T00:00:00.000Z')) {
  const waits: number[] = [];
  const shown: string[] = [];
  const result = deviceLogin({
    client: new ApiClient({ server: url }),
    idp: 'demo',
    now,
    present: (start) => shown.push(start.user_code),
    wait: async (ms) => {
      waits.push(ms);
    },
  });
  return { result, waits, shown };
}

describe('device login polling (CLI)', () => {
  it('waits the interval, grows it on slow_down, and returns the session', async () => {
    world.polls = [
      { status: 200, body: { status: 'authorization_pending', interval: 5 } },
      { status: 200, body: { status: 'slow_down', interval: 10 } },
      { status: 200, body: { status: 'authorization_pending', interval: 10 } },
      complete,
    ];
    const { result, waits, shown } = run();
    assert.equal((await result)?.session_token, 'tok');
    assert.deepEqual(shown, ['ABCD-EFGH']);
    assert.deepEqual(waits, [5000, 5000, 10_000, 10_000]);
  });

  it("stops with the server's refusal (access_denied)", async () => {
    world.polls = [
      { status: 400, body: { code: 'login_failed', reason: 'access_denied', detail: 'refused at the IdP' } },
    ];
    await assert.rejects(run().result, (error: unknown) => {
      assert.ok(error instanceof CliError);
      assert.equal(error.code, 'login_failed');
      assert.equal(error.details.reason, 'access_denied');
      return true;
    });
  });

  it('gives up when the code has expired, without polling again', async () => {
    world.polls = [{ status: 200, body: { status: 'authorization_pending', interval: 5 } }];
    let now = Date.parse('2029-12-31T23:59:58.000Z');
    const { result } = run(() => {
      now += 5000;
      return now;
    });
    await assert.rejects(
      result,
      (error: unknown) => error instanceof CliError && error.code === 'expired_token',
    );
    assert.equal(world.polled, 0);
  });

  it('returns null when the identity provider has no device flow', async () => {
    world.start = {
      status: 400,
      body: { code: 'login_failed', reason: 'device_flow_unsupported', detail: 'no device flow' },
    };
    assert.equal(await run().result, null);
  });
});
