import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { readLines } from './read-lines.js';

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

describe('readLines', () => {
  it('splits a stream on newlines, with or without a final one', async () => {
    assert.deepEqual(await collect(readLines(Readable.from(['a\nb', 'c\n\nd']))), ['a', 'bc', '', 'd']);
    assert.deepEqual(await collect(readLines(Readable.from(['a\r\n', 'b\n']))), ['a\r', 'b']);
    assert.deepEqual(await collect(readLines(Readable.from([]))), []);
  });

  it('keeps multi-byte characters whole across chunk boundaries', async () => {
    const bytes = Buffer.from('«é»\n😀\n', 'utf8');
    const chunks = Array.from(bytes, (byte) => Buffer.from([byte]));
    assert.deepEqual(await collect(readLines(Readable.from(chunks))), ['«é»', '😀']);
  });

  it('reads a file larger than one chunk', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'portcullis-lines-'));
    try {
      const path = join(directory, 'big.jsonl');
      const lines = Array.from({ length: 30_000 }, (_, n) => `{"n":${n},"text":"${'ü'.repeat(n % 50)}"}`);
      await writeFile(path, `${lines.join('\n')}\n`);
      assert.deepEqual(await collect(readLines(path)), lines);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
