/**
 * Keeps a host's `RevokedKeys` file current from Portcullis' `/ssh/{resource}/revoked.krl`. A new
 * list replaces the file only whole and only once `ssh-keygen` can read it: sshd refuses every
 * certificate while its RevokedKeys file is missing or unreadable, so a bad download must never
 * land. A failed download keeps the previous list.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically } from '../cli/atomic-file.js';
import { isReadableRevocationList } from './revocation-check.js';

const krlMagic = Buffer.from('SSHKRL\n\0', 'latin1');
/** Format 1: magic (8), format version (4), then the list's version (8) and generation time (8). */
const changingHeader = { start: 12, end: 28 };
const maxListBytes = 16 * 1024 * 1024;
const fetchTimeoutMs = 10_000;

export type RefreshOutcome = 'changed' | 'unchanged';

export class RevocationListRefresher {
  #contentDigest: string | undefined;

  constructor(
    private readonly deps: {
      readonly url: string;
      /** The file sshd's RevokedKeys names. */
      readonly file: string;
      readonly fetch: typeof fetch;
    },
  ) {}

  /**
   * Downloads the list and installs it when its revocations differ from the installed one's (the
   * version and time in its header change with every download).
   *
   * @throws Error when the download fails or is not a readable list; the installed file is kept.
   */
  async refresh(): Promise<RefreshOutcome> {
    const response = await this.deps.fetch(this.deps.url, {
      signal: AbortSignal.timeout(fetchTimeoutMs),
      redirect: 'error',
    });
    if (response.status !== 200) throw new Error(`${this.deps.url} answered ${response.status}`);
    const list = await readCapped(response, maxListBytes);
    if (list.length < changingHeader.end || !list.subarray(0, 8).equals(krlMagic))
      throw new Error(`${this.deps.url} did not send a key revocation list`);
    const digest = contentDigest(list);
    if (digest === this.#contentDigest) return 'unchanged';
    await assertReadable(list);
    await writeFileAtomically(this.deps.file, list, 0o644);
    this.#contentDigest = digest;
    return 'changed';
  }
}

/** The body, read no further than `max` bytes whatever the headers say. */
async function readCapped(response: Response, max: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > max) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`the revocation list is larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function contentDigest(list: Buffer): string {
  const copy = Buffer.from(list);
  copy.fill(0, changingHeader.start, changingHeader.end);
  return createHash('sha256').update(copy).digest('hex');
}

async function assertReadable(list: Buffer): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-krl-'));
  try {
    const candidate = join(dir, 'revoked.krl');
    await writeFile(candidate, list, { mode: 0o600 });
    if (!(await isReadableRevocationList(candidate)))
      throw new Error('ssh-keygen cannot read the downloaded revocation list; the installed one is kept');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
