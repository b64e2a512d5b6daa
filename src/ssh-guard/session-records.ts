/**
 * The records `contrib/ssh/portcullis-ssh-session` writes while sshd checks a certificate (sshd's
 * AuthorizedPrincipalsCommand): which connection process checked which certificate. One line:
 *
 *   portcullis-ssh-session/1 <pid> <start time> <account> <certificate, base64>
 *
 * A record proves nothing by itself (its writer is an unprivileged account): the guard acts on one
 * only when the certificate's signature is its authority's and the pid with that start time is
 * still an sshd process (ssh-session-guard.ts).
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const recordPattern =
  /^portcullis-ssh-session\/1 ([1-9]\d{0,9}) (\d{1,20}) ([A-Za-z0-9._-]{1,64}) ([A-Za-z0-9+/]+={0,2})\n?$/;
/** Larger than any certificate Portcullis issues, with room for long principal lists. */
const maxRecordBytes = 64 * 1024;
const fileNamePattern = /^\d+\.\d+\.\d+$/;

export interface SessionRecord {
  /** The record's file name inside the records directory. */
  readonly file: string;
  readonly pid: number;
  readonly startTime: string;
  readonly account: string;
  readonly certificate: Buffer;
  /** When the record was written (its modification time), milliseconds since the epoch. */
  readonly recordedAt: number;
}

export function parseSessionRecord(
  file: string,
  text: string,
  recordedAt: number,
): SessionRecord | undefined {
  const match = recordPattern.exec(text);
  if (!match) return undefined;
  const [, pid, startTime, account, certificate] = match as unknown as string[];
  return {
    file,
    pid: Number(pid),
    startTime: startTime as string,
    account: account as string,
    certificate: Buffer.from(certificate as string, 'base64'),
    recordedAt,
  };
}

/** A directory of one-line records, each a small regular file whose name matches `fileNamePattern`. */
export class RecordDirectory<R> {
  constructor(
    readonly directory: string,
    private readonly fileNamePattern: RegExp,
    private readonly parse: (file: string, text: string, recordedAt: number) => R | undefined,
  ) {}

  /** Every well-formed record; malformed ones are returned by name so the caller can report them. */
  read(): { records: R[]; malformed: string[]; missing?: boolean } {
    const records: R[] = [];
    const malformed: string[] = [];
    let files: string[];
    try {
      files = readdirSync(this.directory);
    } catch (error) {
      // Removed under the guard: it keeps ending what it knows (the caller makes the directory anew).
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { records, malformed, missing: true };
      throw error;
    }
    for (const file of files) {
      if (!this.fileNamePattern.test(file)) continue; // the writers' temporary files start with "."
      const read = readRegularFile(join(this.directory, file));
      if (read === undefined) continue; // removed while it was being read
      const record = this.parse(file, read.text, read.modifiedAt);
      if (record) records.push(record);
      else malformed.push(file);
    }
    return { records, malformed };
  }

  /**
   * Removes a record file. Anything else there (a directory the record user made) is left alone:
   * a root process deleting a tree another account can change under it could be led elsewhere.
   */
  remove(file: string): void {
    try {
      if (lstatSync(join(this.directory, file)).isFile()) rmSync(join(this.directory, file), { force: true });
    } catch {
      // Gone already, or not ours to remove: the next pass looks again.
    }
  }
}

export class SessionRecords extends RecordDirectory<SessionRecord> {
  constructor(directory: string) {
    super(directory, fileNamePattern, parseSessionRecord);
  }
}

/**
 * The text of a small regular file, never following a link or blocking on a pipe: the records
 * directory is writable by an unprivileged account, and the guard reading it runs as root.
 * Anything else reads as '' (malformed).
 */
function readRegularFile(path: string): { text: string; modifiedAt: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : { text: '', modifiedAt: 0 };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > maxRecordBytes) return { text: '', modifiedAt: 0 };
    const buffer = Buffer.alloc(stat.size);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return { text: buffer.subarray(0, read).toString('latin1'), modifiedAt: stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}
