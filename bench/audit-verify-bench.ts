/**
 * How fast `portcullis audit verify` checks an export: generates a chain of 1,000,000 events
 * (checkpoint every 1,000) into a JSON Lines file in the temp directory, then times
 * verifyAuditExport over it, read from disk as the CLI does.
 *
 *   node --import tsx bench/audit-verify-bench.ts [events]
 */

import type { KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AuditCheckpoint } from '../src/app/ports.js';
import { auditTestEpoch, testAuditKey, testEvent } from '../src/audit/audit-test-support.js';
import { signCheckpoint } from '../src/audit/checkpoint.js';
import { auditExportFormat, checkpointLine, eventLine } from '../src/audit/export-format.js';
import { eventHash, genesisHash, hashedFieldsOf, recordOf } from '../src/audit/hash.js';
import { readLines } from '../src/audit/read-lines.js';
import { verifyAuditExport } from '../src/audit/verify.js';

const eventCount = Number(process.argv[2] ?? 1_000_000);
const checkpointEvery = 1000;

async function write(stream: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve));
}

async function end(stream: NodeJS.WritableStream): Promise<void> {
  await new Promise<void>((resolve) => stream.end(resolve));
}

const directory = await mkdtemp(join(tmpdir(), 'portcullis-audit-bench-'));
try {
  const key = testAuditKey('bench');
  const privateKey = key.privateKey as KeyObject;
  const bodyPath = join(directory, 'events.part');
  const exportPath = join(directory, 'audit.jsonl');
  await writeFile(`${exportPath}.jwk`, JSON.stringify(key.publicJwk));

  let started = performance.now();
  const body = createWriteStream(bodyPath);
  const checkpoints: AuditCheckpoint[] = [];
  let previous = genesisHash;
  let chunk = '';
  for (let seq = 1; seq <= eventCount; seq++) {
    const event = testEvent(seq);
    const fields = hashedFieldsOf({
      ...event,
      seq,
      id: `00000000-0000-4000-8000-${seq.toString(16).padStart(12, '0')}`,
      at: auditTestEpoch + seq,
      prevHash: previous,
      hash: '',
    });
    previous = eventHash(fields);
    chunk += eventLine(recordOf(fields, previous));
    if (seq % checkpointEvery === 0 || seq === eventCount) {
      checkpoints.push(
        signCheckpoint({ seq, hash: previous }, auditTestEpoch + seq, { kid: key.kid, privateKey }),
      );
      await write(body, chunk);
      chunk = '';
    }
  }
  await end(body);
  const file = createWriteStream(exportPath);
  const header = {
    kind: 'header',
    format: auditExportFormat,
    exported_at: Date.now(),
    head_seq: eventCount,
    head_hash: previous,
    events: eventCount,
    checkpoints: checkpoints.length,
  };
  await write(file, `${JSON.stringify(header)}\n${checkpoints.map(checkpointLine).join('')}`);
  await pipeline(createReadStream(bodyPath), file);
  const size = (await stat(exportPath)).size;
  console.log(
    `generated ${eventCount.toLocaleString('en')} events, ${checkpoints.length} checkpoints, ` +
      `${(size / 1e6).toFixed(0)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  started = performance.now();
  const cpuBefore = process.cpuUsage();
  const result = await verifyAuditExport(readLines(exportPath), [key.publicJwk]);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  if (!result.ok) throw new Error(`verification failed: ${JSON.stringify(result.problem)}`);
  console.log(
    `verified ${result.events.toLocaleString('en')} events in ${seconds.toFixed(2)} s: ` +
      `${Math.round(result.events / seconds).toLocaleString('en')} events/s ` +
      `(${(size / 1e6 / seconds).toFixed(0)} MB/s); CPU time ${cpuSeconds.toFixed(2)} s ` +
      `(${Math.round(result.events / cpuSeconds).toLocaleString('en')} events per CPU second)`,
  );
} finally {
  if (process.env.KEEP_AUDIT_BENCH_FILE) console.log(`kept ${directory}`);
  else await rm(directory, { recursive: true, force: true });
}
