/** Small helpers shared by the repositories. */
import { PortcullisError } from '../core/errors.js';

/** Rows a list returns when the caller gives no limit. */
export const defaultListLimit = 100;
/** Most rows any single list returns, whatever the caller asks for. */
export const maxListLimit = 1000;

/** The caller's limit, or the default, bounded to `0…maxListLimit`. */
export function listLimit(requested: number | undefined): number {
  if (requested === undefined || !Number.isFinite(requested)) return defaultListLimit;
  return Math.min(Math.max(Math.trunc(requested), 0), maxListLimit);
}

/** Counts per key with every known key present, so a metric drops to 0 instead of disappearing. */
export function countsWithZeros(
  knownKeys: readonly string[],
  rows: readonly { readonly key: string; readonly count: number | string | bigint }[],
): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(knownKeys.map((key) => [key, 0]));
  for (const row of rows) counts[row.key] = Number(row.count);
  return counts;
}

/** A primary-key or unique-constraint violation, on PostgreSQL (23505) or SQLite. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  const { code } = error;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Runs an insert; a duplicate key becomes PortcullisError `conflict`, so callers handle races the
 * same way on both databases (e.g. two approvals racing to create the one grant of a request).
 */
export async function insertOrConflict(what: string, insert: () => Promise<unknown>): Promise<void> {
  try {
    await insert();
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new PortcullisError('conflict', `${what} already exists`, {}, { cause: error });
    }
    throw error;
  }
}
