import { join } from 'node:path';

const cliMain = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');

/**
 * Node arguments that run the `portcullis` command from its TypeScript source. Tests spawn this,
 * not bin/portcullis.js: the bin prefers a compiled dist/ when one exists (left by `npm install`),
 * which would test whatever was built last instead of the code under test.
 */
export function cliArgv(args: readonly string[]): string[] {
  return ['--import', 'tsx', cliMain, ...args];
}
