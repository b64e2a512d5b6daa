/** `portcullis serve` and `portcullis dev`: run the server in this process until SIGINT/SIGTERM. */
import { usageError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { nextStopSignal } from '../signals.js';

/** Resolves once SIGINT or SIGTERM has arrived and `close` has finished (a second signal forces exit). */
async function runUntilSignalled(ctx: CliContext, close: () => Promise<void>): Promise<void> {
  const signal = await nextStopSignal().received;
  ctx.output.note(`${signal}: shutting down (again to force)…`);
  await close();
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
