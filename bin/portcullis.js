#!/usr/bin/env node
// Runs the compiled CLI when it exists (an installed package), else the TypeScript source through tsx
// (a git checkout before `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  await import('tsx/esm');
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
