/** `portcullis serve` and `portcullis dev`: run the server in this process until SIGINT/SIGTERM. */
import { usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';

/**
 * Resolves once SIGINT or SIGTERM has arrived and `close` has finished. A second signal while
 * closing ends the process at once (exit 130), for a shutdown that hangs.
 */
function runUntilSignalled(ctx: CliContext, close: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(130));
      ctx.output.note(`${signal}: shutting down (again to force)…`);
      close().then(resolve, reject);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** `portcullis serve [--config portcullis.yaml]`. */
export async function serve(ctx: CliContext, options: { config: string }): Promise<void> {
  const { startPortcullis } = await import('../../server/start.js');
  const running = await startPortcullis({ configPath: options.config, env: ctx.io.env });
  await runUntilSignalled(ctx, () => running.close());
}

/** `portcullis dev [--port N]`: the demo with its built-in identity provider, on SQLite. */
export async function dev(ctx: CliContext, options: { port?: string }): Promise<void> {
  let port: number | undefined;
  if (options.port !== undefined) {
    port = Number(options.port);
    if (!Number.isInteger(port) || port < 1 || port > 65_534)
      throw usageError('--port must be 1–65534 (the demo IdP takes the next port)');
  }
  const { startDemo } = await import('../../server/demo.js');
  const demo = await startDemo(port === undefined ? {} : { port });
  await runUntilSignalled(ctx, () => demo.close());
}
