/**
 * Writes a file the CLI keeps a secret in (a session, an SSH key) or a host's sshd reads (a
 * revocation list): to a fresh temporary file beside it, created with `mode` from the first byte
 * ('wx': never following or reusing an existing file), synced, then renamed over the target, so a
 * crash never leaves it half-written or briefly readable by others.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const checksModes = process.platform !== 'win32';

export async function writeFileAtomically(
  path: string,
  text: string | Uint8Array,
  mode: number,
): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(text);
    // The umask may have narrowed the mode; a wider one than asked is never the result.
    if (checksModes) await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
