import { type ChildProcess, spawn } from 'node:child_process';
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

/** A `portcullis` process still running: what it has printed so far, and its exit. */
export interface RunningCli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

/** Starts `portcullis ARGS` with `env` added to this process's environment; `input` goes to stdin. */
export function startCli(args: readonly string[], env: Record<string, string>, input = ''): RunningCli {
  const child = spawn(process.execPath, cliArgv(args), {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.end(input);
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs `portcullis ARGS` to its end. */
export async function runCliProcess(
  args: readonly string[],
  env: Record<string, string>,
  input = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const running = startCli(args, env, input);
  const code = await running.exited;
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}
