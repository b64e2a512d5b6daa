/**
 * Compares a presented secret with the expected one in constant time. Both are hashed first, so
 * neither the length nor the position of the first difference shows in the timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
