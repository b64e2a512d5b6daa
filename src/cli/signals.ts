/** Waiting for Ctrl-C (SIGINT) or SIGTERM in long-running commands (`serve`, `dev`, `proxy`). */

export interface StopSignal {
  /** Settles with the first SIGINT or SIGTERM. */
  readonly received: Promise<NodeJS.Signals>;
  /** Stops listening (when the command ends for another reason). */
  readonly dispose: () => void;
}

/**
 * The first SIGINT or SIGTERM. After it, a second one ends the process at once (exit 130), for a
 * shutdown that hangs.
 */
export function nextStopSignal(): StopSignal {
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    stop = (signal) => {
      dispose();
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(130));
      resolve(signal);
    };
  });
  const dispose = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return { received, dispose };
}
