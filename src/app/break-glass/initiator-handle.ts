/**
 * The initiator's handle: a random bearer secret, shown once at initiation, that alone lets them
 * see status, fetch the credentials and end the access. Only its hash is stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestOrigin } from '../../core/audit-event.js';
import { PortcullisError } from '../../core/errors.js';
import type { StoredActivation } from '../break-glass-ports.js';
import type { BreakGlassContext } from './context.js';
import { refuse } from './refusals.js';

/** A new handle (256 random bits). */
export function newHandle(): string {
  return randomBytes(32).toString('base64url');
}

export function hashHandle(handle: string): string {
  return createHash('sha256').update(handle).digest('base64url');
}

/** The activation if `handle` is its initiator's; otherwise a refusal that reveals nothing. */
export async function activationByHandle(
  ctx: BreakGlassContext,
  activationId: string,
  handle: string,
  step: string,
  from: RequestOrigin,
): Promise<StoredActivation> {
  const stored = await ctx.deps.store.breakGlass.getActivation(activationId);
  const expected = Buffer.from(stored?.handleHash ?? hashHandle(randomBytes(16).toString('hex')));
  const given = Buffer.from(hashHandle(handle));
  if (!stored || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return refuse(
      ctx,
      new PortcullisError('not_found', `No activation ${activationId}`),
      stored?.activation.accountId ?? 'unknown',
      null,
      step,
      from,
    );
  }
  return stored;
}
