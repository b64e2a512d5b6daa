/**
 * The port that makes TOTP codes single-use. Storage implements it atomically (e.g. an
 * `UPDATE … WHERE last_time_step < $1`), so that two replicas cannot both accept the same code.
 */
export interface UsedCodes {
  /**
   * Claims `timeStep` for `custodianId`. Resolves `true` only if it is later than every step
   * claimed before for that custodian: a replayed code, or an older one still in the drift
   * window, is refused.
   */
  claim(custodianId: string, timeStep: number): Promise<boolean>;
}

/** In-memory {@link UsedCodes}, for tests and the single-process demo. */
export class InMemoryUsedCodes implements UsedCodes {
  readonly #last = new Map<string, number>();

  async claim(custodianId: string, timeStep: number): Promise<boolean> {
    const last = this.#last.get(custodianId);
    if (last !== undefined && timeStep <= last) return false;
    this.#last.set(custodianId, timeStep);
    return true;
  }
}
