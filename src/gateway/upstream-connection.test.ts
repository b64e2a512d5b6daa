import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { openUpstreamSocket, UpstreamError } from './upstream-connection.js';

/** A TCP listener that reports how each connection it accepted ended. */
async function listener() {
  const ended: Promise<'end' | 'reset'>[] = [];
  const server = createServer((socket: Socket) => {
    socket.resume();
    ended.push(
      new Promise((resolve) => {
        socket.once('end', () => resolve('end'));
        socket.once('error', () => resolve('reset'));
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { port, ended, close: () => server.close() };
}

describe('openUpstreamSocket and the session signal', () => {
  test('an abort after the connection is up leaves the socket to the relay, which ends it gracefully', async (t) => {
    const target = await listener();
    t.after(target.close);
    const session = new AbortController();
    const socket = await openUpstreamSocket(
      { host: '127.0.0.1', port: target.port, tls: 'disable' },
      2000,
      session.signal,
    );
    session.abort();
    assert.equal(socket.destroyed, false);
    // The relay's last write (the client's Terminate) still goes out, then a FIN, not a reset.
    socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
    await once(socket, 'close');
    while (target.ended.length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(await target.ended[0], 'end');
  });

  test('an abort before the connection is up rejects with 57P01 and leaves no socket', async () => {
    const session = new AbortController();
    session.abort();
    await assert.rejects(
      openUpstreamSocket({ host: '127.0.0.1', port: 9, tls: 'disable' }, 2000, session.signal),
      (error) => error instanceof UpstreamError && error.sqlState === '57P01',
    );
  });
});
