/** Drill helpers, pure: a drill walks the real path but its access lasts seconds, not minutes. */
import type { Activation } from './activation.js';

/**
 * Shortens a drill's access once it is active, to at most `accessMs` after activation. Never
 * lengthens it, and leaves real (non-drill) activations untouched.
 */
export function shortenDrill(activation: Activation, accessMs: number): Activation {
  if (!activation.drill || activation.activatedAt === null || activation.expiresAt === null)
    return activation;
  return { ...activation, expiresAt: Math.min(activation.expiresAt, activation.activatedAt + accessMs) };
}

/** Whether an account's last drill is older than its interval (or it never had one). */
export function drillOverdue(lastDrillAt: number | null, intervalSeconds: number, now: number): boolean {
  return lastDrillAt === null || now - lastDrillAt > intervalSeconds * 1000;
}
