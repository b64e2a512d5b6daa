/**
 * A plain Node byte pipe to the target server, in this process: no parsing, no audit, one upstream
 * socket per client, `socket.pipe()` both ways. The floor of what a Node proxy costs on this machine
 * (an optional reference target of the gateway benchmark: GATEWAY_BENCH_TARGETS=…,pipe).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface RunningPipe {
  readonly port: number;
  close(): Promise<void>;
}

export async function startBytePipe(upstreamHost: string, upstreamPort: number): Promise<RunningPipe> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: upstreamHost, port: upstreamPort, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
