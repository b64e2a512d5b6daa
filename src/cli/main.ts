/**
 * Entry point of the `portcullis` command (bin/portcullis.js runs this file, or its build). Wires
 * the real process into {@link runCli} and sets the exit code; stdout is left to drain on its own.
 */
import { spawn } from 'node:child_process';
import type { CliIo } from './context.js';
import { runCli } from './program.js';

/** Opens `url` in the desktop browser, best effort: failure only means the user opens it by hand. */
function openBrowser(url: string): void {
  const command =
    process.platform === 'darwin'
      ? { file: 'open', args: [url] }
      : process.platform === 'win32'
        ? { file: 'cmd', args: ['/c', 'start', '""', url.replace(/&/g, '^&')] }
        : { file: 'xdg-open', args: [url] };
  try {
    const child = spawn(command.file, command.args, { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No browser launcher: the URL is printed anyway.
  }
}

// A closed pipe (`portcullis requests | head -1`) is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const io: CliIo = {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  fetch: globalThis.fetch,
  now: () => Date.now(),
  openBrowser,
};

process.exitCode = await runCli(process.argv, io);
