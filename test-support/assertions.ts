/**
 * Assertions shared by test files.
 *
 * - `rejectsWith(promise, code, reason?)` → `Promise<PortcullisError>`: asserts that `promise`
 *   rejects with a PortcullisError of this `code` and, when given, this `details.reason`, and
 *   returns the error for further checks; fails when it resolves or rejects with anything else.
 */
import assert from 'node:assert/strict';
import { PortcullisError } from '../src/core/errors.js';

/** Asserts a PortcullisError with this code and, when given, this details.reason. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  reason?: string,
): Promise<PortcullisError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PortcullisError, `expected a PortcullisError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (reason !== undefined) assert.equal(error.details.reason, reason, error.message);
    return error;
  }
  assert.fail(`expected ${code}${reason ? `/${reason}` : ''}, but it succeeded`);
}
