/**
 * The scheduler's due-time heap (private to src/measure).
 *
 * @module
 */

/** What the heap orders: a due time, its generation, and whether the VM was removed. */
export interface Scheduled {
  /** When it is due (ms on the scheduler's clock). */
  due: number;
  /** Bumped whenever `due` changes. */
  gen: number;
  /** Gone: its entries are skipped. */
  removed?: boolean;
}

/**
 * A min-heap of VMs by due time. A VM whose due time changes is pushed again with a new
 * generation; entries of an older generation, or of a removed VM, are skipped on the way out.
 */
export class DueHeap<T extends Scheduled> {
  readonly #items: { due: number; gen: number; vm: T }[] = [];

  /** Entries held, stale ones included. */
  get size(): number {
    return this.#items.length;
  }

  /** Adds `vm` at its current due time and generation. */
  push(vm: T): void {
    const items = this.#items;
    items.push({ due: vm.due, gen: vm.gen, vm });
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.due <= items[i]!.due) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  /** The earliest live entry's VM, without taking it out. */
  peek(): T | undefined {
    while (this.#items.length > 0) {
      const top = this.#items[0]!;
      if (top.gen === top.vm.gen && !top.vm.removed) return top.vm;
      this.#pop();
    }
    return undefined;
  }

  /** Takes the earliest live entry's VM out. */
  take(): T | undefined {
    const vm = this.peek();
    if (vm) this.#pop();
    return vm;
  }

  #pop(): void {
    const items = this.#items;
    const last = items.pop()!;
    if (items.length === 0) return;
    items[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < items.length && items[l]!.due < items[m]!.due) m = l;
      if (r < items.length && items[r]!.due < items[m]!.due) m = r;
      if (m === i) break;
      [items[m], items[i]] = [items[i]!, items[m]!];
      i = m;
    }
  }
}
