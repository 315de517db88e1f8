import assert from "node:assert/strict";
import { DueHeap, type Scheduled } from "./_due_heap.ts";

Deno.test("DueHeap gives VMs earliest due first and skips rescheduled and removed entries", () => {
  const heap = new DueHeap<Scheduled & { name: string }>();
  const vms: (Scheduled & { name: string })[] = [50, 10, 40, 30, 20].map((due, i) => ({
    due,
    gen: 0,
    name: `vm${i}`,
  }));
  for (const vm of vms) heap.push(vm);
  vms[2]!.due = 5; // rescheduled: the old entry at 40 is stale
  vms[2]!.gen++;
  heap.push(vms[2]!);
  vms[3]!.removed = true;
  const order: string[] = [];
  for (let vm = heap.take(); vm; vm = heap.take()) order.push(`${vm.name}@${vm.due}`);
  assert.deepEqual(order, ["vm2@5", "vm1@10", "vm4@20", "vm0@50"]);
  assert.equal(heap.size, 0);
  assert.equal(heap.peek(), undefined);
});
