// Which CLI to run: the compiled one (dist/) or the TypeScript source through tsx. Plain JavaScript,
// as bin/portcullis.js, so that it runs before anything is built.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The compiled CLI when it exists and no source file is newer than it (an installed package has no
 * source; a checkout built by `npm install` or `npm run build`), else the source: a checkout that
 * was changed or pulled after its last build would otherwise run yesterday's code.
 *
 * @param {string} root the package root
 * @returns {{ kind: 'compiled' | 'source', path: string, stale: boolean }}
 */
export function chooseEntry(root) {
  const compiled = join(root, 'dist', 'cli', 'main.js');
  const source = join(root, 'src', 'cli', 'main.ts');
  if (!existsSync(compiled)) return { kind: 'source', path: source, stale: false };
  if (!existsSync(source)) return { kind: 'compiled', path: compiled, stale: false };
  const builtAt = statSync(compiled).mtimeMs;
  const stale = newestSourceChange(join(root, 'src')) > builtAt;
  return stale ? { kind: 'source', path: source, stale } : { kind: 'compiled', path: compiled, stale };
}

/** The latest modification time of the TypeScript files that make up the build (tests excluded). */
function newestSourceChange(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}
