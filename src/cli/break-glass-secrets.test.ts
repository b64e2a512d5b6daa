/**
 * `portcullis break-glass activate` reads its secrets in order — files and environment first, then
 * stdin lines for whatever is still missing — and the recovery shares start after the lines
 * actually consumed. Runs the real CLI against a stand-in API that records what it was sent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { CliIo } from './context.js';
import { runCli } from './program.js';

function capture() {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY: false, text: () => Buffer.concat(chunks).toString('utf8') });
}

describe('break-glass activate: passphrase, code and shares from stdin, files and environment', () => {
  let server: Server;
  let base: string;
  let home: string;
  const sent: Record<string, unknown>[] = [];

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'portcullis-bg-secrets-'));
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        sent.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            activation: {
              id: `act-${sent.length}`,
              account: 'vault-emergency',
              state: 'awaiting_quorum',
              drill: false,
              initiator: 'alice',
              confirmers: [],
              quorum: 2,
              window_ends_at: '2030-01-01T00:00:00.000Z',
              expires_at: null,
              roles: ['unseal'],
              resource: 'vault',
            },
            handle: 'h'.repeat(43),
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(home, { recursive: true, force: true });
  });

  async function activate(stdin: string, env: Record<string, string> = {}, flags: string[] = []) {
    const stderr = capture();
    const io: CliIo = {
      env: { PORTCULLIS_HOME: home, PORTCULLIS_SERVER: base, ...env },
      stdout: capture(),
      stderr,
      stdin: Readable.from([stdin]),
      fetch,
      now: () => Date.now(),
      openBrowser: () => assert.fail('no browser in tests'),
    };
    const code = await runCli(
      [
        'node',
        'portcullis',
        'break-glass',
        'activate',
        'vault-emergency',
        '--custodian',
        'alice',
        '--reason',
        'vault sealed',
        '--incident',
        'INC-1',
        '--for',
        '15',
        ...flags,
      ],
      io,
    );
    assert.equal(code, 0, stderr.text());
    const body = sent.at(-1) as { passphrase: string; totp: string; shares?: string[] };
    return { passphrase: body.passphrase, totp: body.totp, shares: body.shares ?? [] };
  }

  const expected = { passphrase: 'alice passphrase', totp: '123456', shares: ['bg1:share-1', 'bg1:share-2'] };

  it('all on stdin: passphrase, code, then the shares', async () => {
    assert.deepEqual(await activate('alice passphrase\n123456\nbg1:share-1\nbg1:share-2\n'), expected);
  });

  it('passphrase from PORTCULLIS_BG_PASSPHRASE: the code is line 1 and every share follows', async () => {
    assert.deepEqual(
      await activate('123456\nbg1:share-1\nbg1:share-2\n', { PORTCULLIS_BG_PASSPHRASE: 'alice passphrase' }),
      expected,
    );
  });

  it('passphrase from --passphrase-file: no share is lost', async () => {
    const file = join(home, 'passphrase.txt');
    await writeFile(file, 'alice passphrase\n', { mode: 0o600 });
    assert.deepEqual(
      await activate('123456\nbg1:share-1\nbg1:share-2\n', {}, ['--passphrase-file', file]),
      expected,
    );
  });

  it('passphrase and code from the environment: stdin holds only shares', async () => {
    assert.deepEqual(
      await activate('bg1:share-1\nbg1:share-2\n', {
        PORTCULLIS_BG_PASSPHRASE: 'alice passphrase',
        PORTCULLIS_BG_TOTP: '123456',
      }),
      expected,
    );
  });
});
