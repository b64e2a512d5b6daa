/**
 * Saved CLI sessions, one JSON file per profile: `$PORTCULLIS_HOME/sessions/<profile>.json`
 * (default home `$XDG_CONFIG_HOME/portcullis`, else `~/.config/portcullis`). The directory is
 * created 0700 and the file 0600, written atomically; a file that other users can read or write,
 * or that belongs to someone else, is refused rather than used, as ssh does with private keys.
 */
import { chmod, mkdir, open, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically } from './atomic-file.js';
import { CliError, exitCodes, usageError } from './cli-error.js';
import type { CliTokenResponse } from './loopback-login.js';

/** What `portcullis login` saves (the body of `POST /api/v1/auth/cli/token`, plus the server). */
export interface SavedSession extends CliTokenResponse {
  readonly server: string;
}

const profileNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const checksModes = process.platform !== 'win32';

/** The CLI's home directory: `PORTCULLIS_HOME`, else `XDG_CONFIG_HOME/portcullis`, else `~/.config/portcullis`. */
export function portcullisHome(env: Readonly<Record<string, string | undefined>>): string {
  if (env.PORTCULLIS_HOME) return env.PORTCULLIS_HOME;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'portcullis');
  return join(homedir(), '.config', 'portcullis');
}

/** The session file of `profile`; refuses names that could leave the sessions directory. */
export function sessionPath(home: string, profile: string): string {
  if (!profileNamePattern.test(profile)) {
    throw usageError(
      `Invalid profile name ${JSON.stringify(profile)}: use letters, digits, ".", "_" or "-" (at most 64, not starting with "." or "-")`,
    );
  }
  return join(home, 'sessions', `${profile}.json`);
}

function isSavedSession(value: unknown): value is SavedSession {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const principal = v.principal as Record<string, unknown> | null | undefined;
  return (
    typeof v.server === 'string' &&
    typeof v.session_token === 'string' &&
    typeof v.expires_at === 'string' &&
    typeof principal === 'object' &&
    principal !== null &&
    typeof principal.id === 'string' &&
    typeof principal.display_name === 'string' &&
    Array.isArray(principal.groups) &&
    principal.groups.every((g) => typeof g === 'string')
  );
}

/**
 * Reads the saved session of `profile`, or null when there is none.
 *
 * @throws CliError (exit 3) when the file is readable or writable by group or others, belongs to
 *   another user, or is not a session file.
 */
export async function readSession(home: string, profile: string): Promise<SavedSession | null> {
  const path = sessionPath(home, profile);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    // INVARIANT: the permission check and the read use the same open file, so the file cannot be
    // swapped between them.
    const stats = await handle.stat();
    if (checksModes && (stats.mode & 0o077) !== 0) {
      throw new CliError(
        'session_file_insecure',
        `Refusing to use ${path}: other users can read or write it (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}); the session token in it may have leaked`,
        exitCodes.unauthenticated,
        { hint: `run \`chmod 600 ${path}\`, or better \`portcullis logout\` and log in again` },
      );
    }
    const uid = process.getuid?.();
    if (checksModes && uid !== undefined && stats.uid !== uid) {
      throw new CliError(
        'session_file_insecure',
        `Refusing to use ${path}: it belongs to user id ${stats.uid}, not to you (${uid})`,
        exitCodes.unauthenticated,
      );
    }
    const text = await handle.readFile('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (!isSavedSession(parsed)) {
      throw new CliError(
        'session_file_invalid',
        `${path} is not a Portcullis session file`,
        exitCodes.unauthenticated,
        {
          hint: 'run `portcullis login` to replace it',
        },
      );
    }
    return parsed;
  } finally {
    await handle.close();
  }
}

/**
 * Saves `session` as the session of `profile`: the directory is created with mode 0700 (and set to
 * it), the file is written to a fresh 0600 temporary file and renamed over the old one
 * (atomic-file.ts), so a crash never leaves a half-written or briefly world-readable session.
 * Returns the file's path.
 */
export async function writeSession(home: string, profile: string, session: SavedSession): Promise<string> {
  const path = sessionPath(home, profile);
  const directory = join(home, 'sessions');
  await mkdir(directory, { recursive: true, mode: 0o700 });
  if (checksModes) await chmod(directory, 0o700);
  await writeFileAtomically(path, `${JSON.stringify(session, null, 2)}\n`, 0o600);
  return path;
}

/** Deletes the session file of `profile`; false when there was none. */
export async function deleteSession(home: string, profile: string): Promise<boolean> {
  const path = sessionPath(home, profile);
  try {
    await rm(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
