/** `portcullis audit export` (remote) and `portcullis audit verify` (offline). */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { VerifyResult } from '../../audit/verify.js';
import { errorFromNetworkFailure } from '../api-client.js';
import { CliError, exitCodes, usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { sanitizeText } from '../output.js';

interface ExportHeader {
  readonly head_seq?: number;
  readonly checkpoints?: number;
}

/** Copies `source` into `sink` with back-pressure; counts bytes and keeps the first line (the header). */
async function copy(
  source: Readable,
  sink: NodeJS.WritableStream,
): Promise<{ bytes: number; header: ExportHeader | null }> {
  let bytes = 0;
  let head = '';
  let headDone = false;
  for await (const chunk of source) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    if (!headDone) {
      head += buffer.toString('utf8');
      const newline = head.indexOf('\n');
      if (newline !== -1 || head.length > 65_536) {
        head = newline === -1 ? head : head.slice(0, newline);
        headDone = true;
      }
    }
    if (!sink.write(buffer)) await once(sink, 'drain');
  }
  let header: ExportHeader | null = null;
  try {
    header = JSON.parse(head) as ExportHeader;
  } catch {
    header = null;
  }
  return { bytes, header };
}

/**
 * `portcullis audit export [--output FILE]`: streams the audit log (JSON Lines) to stdout, or to
 * FILE (mode 0600: it names people and addresses), written under a temporary name and renamed
 * only when complete, so a broken download never looks like a finished export.
 */
export async function exportAuditLog(ctx: CliContext, options: { output?: string }): Promise<void> {
  const client = await ctx.client();
  const body = await client.stream('/api/v1/audit/export');
  const source = Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
  if (options.output === undefined) {
    try {
      await copy(source, ctx.io.stdout);
    } catch (error) {
      throw errorFromNetworkFailure(error, client.server);
    }
    return;
  }
  const target = options.output;
  const partial = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  const file = createWriteStream(partial, { flags: 'wx', mode: 0o600 });
  await once(file, 'open');
  let result: { bytes: number; header: ExportHeader | null };
  try {
    try {
      result = await copy(source, file);
    } catch (error) {
      throw errorFromNetworkFailure(error, client.server);
    }
    file.end();
    await once(file, 'finish');
    await rename(partial, target);
  } catch (error) {
    file.destroy();
    await rm(partial, { force: true });
    throw error;
  }
  const summary = {
    file: target,
    bytes: result.bytes,
    events: result.header?.head_seq ?? null,
    checkpoints: result.header?.checkpoints ?? null,
  };
  ctx.output.result(summary, () =>
    ctx.output.line(
      `Wrote ${target}: ${summary.events ?? '?'} events, ${summary.checkpoints ?? '?'} signed checkpoints, ${result.bytes} bytes.\n` +
        `Verify it offline with: portcullis audit verify ${target} --key audit-keys.json\n` +
        `  (keys: ${client.server}/.well-known/portcullis-audit-keys.json)`,
    ),
  );
}

async function requireFile(path: string, what: string): Promise<void> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw usageError(`${what} ${path} is not a file`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      `${what} ${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : (code ?? String(error))}`,
    );
  }
}

/**
 * `portcullis audit verify FILE --key PUBKEY`: checks an export offline with the audit public
 * key(s) alone. Returns exit 0 when intact, 10 when tampered (naming the first broken entry).
 */
export async function verifyAuditLog(
  ctx: CliContext,
  file: string,
  options: { key: string },
): Promise<number> {
  const result = await verifyExportFile(file, options.key);
  printVerification(ctx, file, result);
  return result.ok ? exitCodes.ok : exitCodes.verificationFailed;
}

/** Verifies the export `file` with the public key(s) in `keyFile`; usage errors for files it cannot use. */
export async function verifyExportFile(
  file: string,
  keyFile: string,
  onVerifiedEvent?: (line: string) => void,
): Promise<VerifyResult> {
  await requireFile(file, 'Audit export');
  await requireFile(keyFile, 'Key file');
  const { loadPublicKeys } = await import('../../audit/public-keys.js');
  const { verifyAuditExport } = await import('../../audit/verify.js');
  const { readLines } = await import('../../audit/read-lines.js');
  let keys: Awaited<ReturnType<typeof loadPublicKeys>>;
  try {
    keys = await loadPublicKeys(keyFile);
  } catch (error) {
    throw usageError(`Cannot use the key file: ${(error as Error).message}`);
  }
  return verifyAuditExport(readLines(file), keys, onVerifiedEvent ? { onVerifiedEvent } : {});
}

/** `audit verify`'s answer: intact with what the signatures cover, or the first broken entry. */
export function printVerification(ctx: CliContext, file: string, result: VerifyResult): void {
  ctx.output.result({ file, ...result }, () => {
    if (result.ok) {
      ctx.output.line(
        `OK: ${file} is intact: ${result.events} events, ${result.checkpoints} checkpoints; signatures cover entries ${result.firstSeq}–${result.signedThroughSeq}.`,
      );
      if (result.firstSeq > 1) {
        ctx.output.line(
          `Note: entries 1–${result.firstSeq - 1} were removed by retention, as a signed audit.pruned event records; the checkpoint at ${result.firstSeq - 1} anchors the rest.`,
        );
      }
      if (result.unsignedEvents > 0) {
        ctx.output.line(
          `Note: the last ${result.unsignedEvents} event(s) come after the last signed checkpoint; only the hash chain protects them.`,
        );
      }
      return;
    }
    const { problem } = result;
    const first = result.firstSeq;
    const where =
      problem.seq === null
        ? ''
        : ` at entry ${problem.seq}${problem.throughSeq ? `–${problem.throughSeq}` : ''}`;
    ctx.output.line(`TAMPERED: ${file}: ${problem.kind}${where} (line ${problem.line})`);
    ctx.output.line(`  ${sanitizeText(problem.message)}`);
    ctx.output.line(
      result.headSeq < first
        ? '  no entry before it could be verified'
        : `  entries ${first}–${result.headSeq} before it are intact${result.signedThroughSeq >= first ? `, ${first}–${result.signedThroughSeq} under a verified signature` : ''}.`,
    );
  });
}
