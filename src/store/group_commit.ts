/**
 * Group commit: items submitted while a batch is pending share one commit, and each
 * submitter's promise settles only after that commit returned.
 *
 * @module
 */

/** How {@link GroupCommit} batches. */
export interface GroupCommitOptions {
  /** Most items in one commit (default 512); the rest wait for the next. */
  readonly maxBatch?: number;
  /**
   * Runs `flush` later. The default, `queueMicrotask`, batches everything submitted in the
   * current task; a macrotask (`(f) => setTimeout(f, 0)`) also waits for I/O callbacks that
   * are ready, at some latency.
   */
  readonly schedule?: (flush: () => void) => void;
}

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Batches submissions into commits. At most one commit runs at a time; what arrives during it
 * goes into the next. A commit that throws rejects every submission in its batch with that
 * error, and none other.
 *
 * @example
 * ```ts
 * import { GroupCommit } from "./group_commit.ts";
 * const sizes: number[] = [];
 * const group = new GroupCommit((items: number[]) => {
 *   sizes.push(items.length);
 *   return items.map((n) => n * 2);
 * });
 * const doubled = await Promise.all([1, 2, 3].map((n) => group.submit(n)));
 * if (doubled.join() !== "2,4,6" || sizes.join() !== "3") throw new Error("not one batch");
 * ```
 */
export class GroupCommit<I, O> {
  readonly #commit: (items: I[]) => O[] | Promise<O[]>;
  readonly #maxBatch: number;
  readonly #schedule: (flush: () => void) => void;
  #queue: Pending<I, O>[] = [];
  #scheduled = false;
  #running: Promise<void> | null = null;

  /**
   * @param commit commits a batch durably and returns one result per item, in order
   * @param options batch size and scheduling
   * @throws {RangeError} when `maxBatch` is not a positive integer
   */
  constructor(commit: (items: I[]) => O[] | Promise<O[]>, options: GroupCommitOptions = {}) {
    const maxBatch = options.maxBatch ?? 512;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    }
    this.#commit = commit;
    this.#maxBatch = maxBatch;
    this.#schedule = options.schedule ?? queueMicrotask;
  }

  /** Items waiting for a commit (not counting the one running). */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Submits an item.
   *
   * @param item the item
   * @returns its result, once the commit holding it returned
   * @throws whatever the commit threw
   */
  submit(item: I): Promise<O> {
    const { promise, resolve, reject } = Promise.withResolvers<O>();
    this.#queue.push({ item, resolve, reject });
    this.#wake();
    return promise;
  }

  /**
   * Waits until everything submitted so far is committed (or failed).
   *
   * @returns when the queue is empty and no commit runs
   */
  async drain(): Promise<void> {
    while (this.#running || this.#queue.length > 0) {
      if (!this.#running) this.#flush();
      await this.#running;
    }
  }

  #wake(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    this.#schedule(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#running || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    // Set before the commit starts: a synchronous commit settles inside #run.
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#running = promise;
    this.#run(batch).finally(() => {
      this.#running = null;
      resolve();
      if (this.#queue.length > 0) this.#wake();
    });
  }

  /** Commits one batch and settles its promises; never rejects. */
  async #run(batch: Pending<I, O>[]): Promise<void> {
    try {
      const results = await this.#commit(batch.map((p) => p.item));
      if (results.length !== batch.length) {
        throw new Error(`commit returned ${results.length} results for ${batch.length} items`);
      }
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
