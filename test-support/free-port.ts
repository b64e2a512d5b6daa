/**
 * `freePort()` → `Promise<number>`: a loopback TCP port that nothing listens on right now (bound on
 * 127.0.0.1, then released), for a server a test is about to start or for an address that must
 * refuse connections.
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
