/**
 * One task at a time per key (per VM), in arrival order; different keys run side by side.
 *
 * @module
 */

/** Runs tasks of the same key one after another. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `task` once every earlier task of `key` has settled.
   *
   * @param key what the task works on
   * @param task the work
   * @returns the task's result; its failure does not stop later tasks of the key
   */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.then(() => {}, () => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
