/**
 * Which certificates a key revocation list revokes, asked of OpenSSH's own `ssh-keygen -Q`: the
 * same code sshd runs at login, so a live session is judged exactly as a new login would be.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ed25519CertificateType } from '../ssh/ssh-wire.js';

const run = promisify(execFile);
const timeoutMs = 15_000;

/** The exit status of `ssh-keygen -Q` when at least one key is revoked. */
const someRevoked = 1;

/** Certificates per `ssh-keygen` run: far below the argument-length limit. */
const batchSize = 200;

/**
 * One answer per certificate, in order: true when `krlFile` revokes it. A certificate `ssh-keygen`
 * cannot load counts as revoked (fail closed: its session ends), once the list itself is known
 * readable; a list it cannot read is an error and decides nothing.
 */
export async function revokedByList(krlFile: string, certificates: readonly Buffer[]): Promise<boolean[]> {
  if (certificates.length === 0) return [];
  if (!(await isReadableRevocationList(krlFile)))
    throw new Error(`ssh-keygen cannot read the revocation list ${krlFile}`);
  const answers: boolean[] = [];
  for (let start = 0; start < certificates.length; start += batchSize) {
    const batch = certificates.slice(start, start + batchSize);
    const verdicts = await askSshKeygen(krlFile, batch).catch(async () =>
      // One certificate it cannot load fails the whole run: ask one at a time.
      Promise.all(
        batch.map((certificate) =>
          askSshKeygen(krlFile, [certificate]).then(
            (v) => v[0] ?? true,
            () => true,
          ),
        ),
      ),
    );
    answers.push(...verdicts);
  }
  return answers;
}

async function askSshKeygen(krlFile: string, certificates: readonly Buffer[]): Promise<boolean[]> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-ssh-guard-'));
  try {
    const files = certificates.map((_, index) => `${index}.pub`);
    await Promise.all(
      certificates.map((certificate, index) =>
        writeFile(
          join(dir, `${index}.pub`),
          `${ed25519CertificateType} ${certificate.toString('base64')}\n`,
          {
            mode: 0o600,
          },
        ),
      ),
    );
    const output = await run('ssh-keygen', ['-Q', '-f', krlFile, ...files], {
      cwd: dir,
      timeout: timeoutMs,
      encoding: 'utf8',
    }).then(
      (result) => result.stdout,
      (error: { code?: unknown; stdout?: string; stderr?: string }) => {
        if (error.code === someRevoked && typeof error.stdout === 'string') return error.stdout;
        throw new Error(`ssh-keygen -Q failed: ${String(error.stderr ?? error.code).trim()}`);
      },
    );
    const verdicts = new Map<string, boolean>();
    for (const line of output.split('\n')) {
      const match = /^(\d+\.pub)(?: \(.*\))?: (REVOKED|ok)$/.exec(line.trim());
      if (match) verdicts.set(match[1] as string, match[2] === 'REVOKED');
    }
    return files.map((file) => {
      const verdict = verdicts.get(file);
      if (verdict === undefined) throw new Error(`ssh-keygen -Q gave no answer for a certificate: ${output}`);
      return verdict;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether `ssh-keygen` can read `krlFile` as a key revocation list (before sshd is given it). */
export async function isReadableRevocationList(krlFile: string): Promise<boolean> {
  try {
    await run('ssh-keygen', ['-Q', '-l', '-f', krlFile], { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}
