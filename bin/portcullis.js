#!/usr/bin/env node
// Runs the compiled CLI when it is there and up to date (an installed package, a built checkout),
// else the TypeScript source through tsx (a checkout before `npm run build`, or changed since).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chooseEntry } from './entry-point.js';

const entry = chooseEntry(fileURLToPath(new URL('..', import.meta.url)));
if (entry.kind === 'compiled') {
  await import(pathToFileURL(entry.path).href);
} else {
  if (entry.stale)
    process.stderr.write(
      'portcullis: dist/ is older than src/; running the source (npm run build updates dist/)\n',
    );
  await import('tsx/esm');
  await import(pathToFileURL(entry.path).href);
}
