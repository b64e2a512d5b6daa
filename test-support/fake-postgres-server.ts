/**
 * A "PostgreSQL server" that asks every connection to log in the way a test chooses and keeps
 * every byte it is sent after the StartupMessage: a phishing server, or one that cuts a SCRAM
 * exchange short. With `tls`, it answers an SSLRequest and runs the login over TLS.
 *
 * @example
 * const server = await fakePostgresServer({ login: 'cleartext' });
 * // connect a client to server.port …
 * assert.equal(server.received().includes('the-password'), false);
 * await server.close();
 */
import { createServer, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import {
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMd5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSasl,
  encodeAuthenticationSaslContinue,
  encodeReadyForQuery,
} from '../src/gateway/protocol/encode.js';

export type FakeLogin =
  /** Asks for the password in cleartext, then waits. */
  | 'cleartext'
  /** Asks for an MD5 hash, then waits. */
  | 'md5'
  /** Offers only SCRAM-SHA-256 (no -PLUS, even over TLS), then waits. */
  | 'scram-only'
  /** Runs SCRAM up to the client's proof, then logs the client in without proving itself. */
  | 'scram-without-proof'
  /** Logs every client in without asking for anything. */
  | 'trust';

export interface FakePostgresServer {
  readonly port: number;
  /** Everything the clients sent after their StartupMessage. */
  received(): Buffer;
  close(): Promise<void>;
}

const sslRequestCode = 80877103;

function firstMessageIsSslRequest(chunk: Buffer): boolean {
  return chunk.length >= 8 && chunk.readInt32BE(0) === 8 && chunk.readInt32BE(4) === sslRequestCode;
}

/** `r=<client nonce>` of a SASLInitialResponse (`p`, length, mechanism, int32, `n,,n=*,r=…`). */
function clientNonceOf(message: Buffer): string {
  const text = message.toString('latin1');
  return /r=([^,\0]+)/.exec(text)?.[1] ?? '';
}

export async function fakePostgresServer(options: {
  readonly login: FakeLogin;
  readonly tls?: { readonly cert: string; readonly key: string };
}): Promise<FakePostgresServer> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();

  const serve = (socket: Socket | TLSSocket) => {
    let started = false;
    let scramStep = 0;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (!started) {
        started = true; // the StartupMessage
        if (options.login === 'cleartext') socket.write(encodeAuthenticationCleartextPassword());
        else if (options.login === 'md5') socket.write(encodeAuthenticationMd5Password(Buffer.from('salt')));
        else if (options.login === 'trust')
          socket.write(Buffer.concat([encodeAuthenticationOk(), encodeReadyForQuery()]));
        else socket.write(encodeAuthenticationSasl(['SCRAM-SHA-256']));
        return;
      }
      chunks.push(chunk);
      if (options.login !== 'scram-without-proof') return;
      scramStep += 1;
      if (scramStep === 1) {
        const nonce = `${clientNonceOf(chunk)}server-part`;
        const salt = Buffer.from('fake-salt-123456').toString('base64');
        socket.write(encodeAuthenticationSaslContinue(`r=${nonce},s=${salt},i=4096`));
      } else if (scramStep === 2) {
        // The client's proof arrived: skip AuthenticationSASLFinal (the server's proof).
        socket.write(Buffer.concat([encodeAuthenticationOk(), encodeReadyForQuery()]));
      }
    });
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!options.tls) {
      serve(socket);
      return;
    }
    socket.once('data', (chunk: Buffer) => {
      if (!firstMessageIsSslRequest(chunk)) {
        socket.destroy();
        return;
      }
      socket.write('S');
      serve(new TLSSocket(socket, { isServer: true, cert: options.tls?.cert, key: options.tls?.key }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    received: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
