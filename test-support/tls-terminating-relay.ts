/**
 * A machine in the middle of a PostgreSQL connection: answers the SSLRequest itself, terminates
 * TLS with its own certificate, and relays the plaintext over its own TLS connection to the real
 * server. A client that trusts that certificate cannot tell, unless it binds SCRAM to the channel.
 */
import { createServer } from 'node:net';
import { TLSSocket } from 'node:tls';
import { openUpstreamSocket } from '../src/gateway/upstream-connection.js';

export async function tlsTerminatingRelay(
  serverPort: number,
  certificate: { readonly cert: string; readonly key: string },
): Promise<{ port: number; close: () => void }> {
  const server = createServer((client) => {
    client.on('error', () => {});
    client.once('data', () => {
      client.write('S');
      const fromClient = new TLSSocket(client, {
        isServer: true,
        cert: certificate.cert,
        key: certificate.key,
      });
      fromClient.on('error', () => {});
      openUpstreamSocket({ host: '127.0.0.1', port: serverPort, tls: 'require' }, 5000).then(
        (toServer) => {
          toServer.on('error', () => {});
          fromClient.pipe(toServer).pipe(fromClient);
        },
        () => client.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, close: () => server.close() };
}
