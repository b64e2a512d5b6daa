/**
 * bin/portcullis.js picks the compiled CLI only while it is at least as new as the source, so a
 * checkout changed or pulled after its last build runs the code it holds, not yesterday's build.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chooseEntry } from '../../bin/entry-point.js';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A package root with the files named, each modified at the given second. */
function packageWith(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-entry-'));
  roots.push(root);
  for (const [file, second] of Object.entries(files)) {
    const path = join(root, file);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, '');
    utimesSync(path, second, second);
  }
  return root;
}

describe('chooseEntry', () => {
  it('runs the build when no source file is newer than it', () => {
    const root = packageWith({ 'src/cli/main.ts': 100, 'src/app/x.ts': 150, 'dist/cli/main.js': 200 });
    assert.deepEqual(chooseEntry(root), {
      kind: 'compiled',
      path: join(root, 'dist/cli/main.js'),
      stale: false,
    });
  });

  it('runs the source, and says the build is stale, when a source file changed after the build', () => {
    const root = packageWith({ 'src/cli/main.ts': 100, 'src/app/deep/x.ts': 300, 'dist/cli/main.js': 200 });
    assert.deepEqual(chooseEntry(root), { kind: 'source', path: join(root, 'src/cli/main.ts'), stale: true });
  });

  it('ignores tests changed after the build', () => {
    const root = packageWith({ 'src/cli/main.ts': 100, 'src/app/x.test.ts': 300, 'dist/cli/main.js': 200 });
    assert.equal(chooseEntry(root).kind, 'compiled');
  });

  it('runs the source before any build, and the build in a package without source', () => {
    const unbuilt = packageWith({ 'src/cli/main.ts': 100 });
    assert.deepEqual(chooseEntry(unbuilt), {
      kind: 'source',
      path: join(unbuilt, 'src/cli/main.ts'),
      stale: false,
    });
    const installed = packageWith({ 'dist/cli/main.js': 100 });
    assert.equal(chooseEntry(installed).kind, 'compiled');
  });
});
