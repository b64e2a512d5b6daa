/** Polling for tests that wait on something real (a revocation, a terminal screen, a log line). */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with the first defined value `probe` returns; fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
