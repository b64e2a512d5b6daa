/**
 * Reads a text file (or stream) as lines for the verifier: large UTF-8 chunks split on "\n",
 * without readline's per-line event overhead. Line endings are not included; a "\r" before the
 * "\n" is left in place (JSON.parse ignores it).
 */
import { createReadStream } from 'node:fs';

/** Chunk size: large reads keep the per-line cost down on million-line exports. */
const chunkBytes = 1 << 20;

/**
 * The lines of the file at `source` (a path) or of a readable stream.
 *
 * @example for await (const line of readLines('audit.jsonl')) { … }
 */
export async function* readLines(source: string | NodeJS.ReadableStream): AsyncGenerator<string> {
  const stream =
    typeof source === 'string'
      ? createReadStream(source, { encoding: 'utf8', highWaterMark: chunkBytes })
      : source.setEncoding('utf8');
  let rest = '';
  for await (const chunk of stream) {
    const text = rest + (chunk as string);
    let start = 0;
    let end = text.indexOf('\n', start);
    while (end !== -1) {
      yield text.slice(start, end);
      start = end + 1;
      end = text.indexOf('\n', start);
    }
    rest = text.slice(start);
  }
  if (rest.length > 0) yield rest;
}
