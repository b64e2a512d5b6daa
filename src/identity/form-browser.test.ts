import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from '../../test-support/free-port.js';
import { FormBrowser } from './form-browser.js';

describe('FormBrowser network errors', () => {
  it('name the request and the network error, not only "fetch failed"', async () => {
    const port = await freePort();
    await assert.rejects(
      new FormBrowser().fetch(`http://127.0.0.1:${port}/interaction/abc?secret=x`, {
        body: new URLSearchParams({ password: 'hunter2' }),
      }),
      (error: Error) => {
        assert.ok(error instanceof TypeError);
        // The query (and the body) may hold secrets: only the origin and path are named.
        assert.equal(error.message, `POST http://127.0.0.1:${port}/interaction/abc: ECONNREFUSED`);
        assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
        return true;
      },
    );
  });

  it('leave a timeout as it is', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      await assert.rejects(new FormBrowser({ timeoutMs: 100 }).fetch(`http://127.0.0.1:${port}/`), {
        name: 'TimeoutError',
      });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
