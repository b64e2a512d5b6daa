/**
 * Runs the work queued under one key one at a time, in order; different keys run side by side.
 * A failure does not stop the lane: the next work starts when the previous one settles either way.
 * The map holds a key only while its lane has work, so it stays as small as the traffic.
 */
export class SerialLanes {
  readonly #lanes = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#lanes.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#lanes.set(key, settled);
    void settled.then(() => {
      if (this.#lanes.get(key) === settled) this.#lanes.delete(key);
    });
    return run;
  }
}
