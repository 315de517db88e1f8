import assert from "node:assert/strict";
import { GroupCommit } from "./group_commit.ts";

/** A commit function whose calls are recorded and whose completion the test controls. */
function gatedCommit() {
  const batches: number[][] = [];
  const gates: PromiseWithResolvers<void>[] = [];
  const commit = async (items: number[]) => {
    batches.push([...items]);
    const gate = Promise.withResolvers<void>();
    gates.push(gate);
    await gate.promise;
    return items.map((n) => n * 10);
  };
  return { batches, gates, commit };
}

const settled = async (promise: Promise<unknown>) => {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await new Promise((r) => setTimeout(r, 0));
  return done;
};

Deno.test("GroupCommit puts submissions of one task into one commit", async () => {
  const batches: number[][] = [];
  const group = new GroupCommit((items: number[]) => {
    batches.push(items);
    return items.map(String);
  });
  const results = await Promise.all([1, 2, 3, 4].map((n) => group.submit(n)));
  assert.deepEqual(results, ["1", "2", "3", "4"]);
  assert.deepEqual(batches, [[1, 2, 3, 4]]);
});

Deno.test("GroupCommit settles a submission only after its commit returned", async () => {
  const { gates, commit } = gatedCommit();
  const group = new GroupCommit(commit);
  const result = group.submit(7);
  assert.equal(await settled(result), false);
  gates[0].resolve();
  assert.equal(await result, 70);
});

Deno.test("GroupCommit queues what arrives during a commit for the next one", async () => {
  const { batches, gates, commit } = gatedCommit();
  const group = new GroupCommit(commit);
  const first = [group.submit(1), group.submit(2)];
  await new Promise((r) => setTimeout(r, 0));
  const second = [group.submit(3), group.submit(4), group.submit(5)];
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(batches, [[1, 2]], "a second commit started while the first ran");
  gates[0].resolve();
  assert.deepEqual(await Promise.all(first), [10, 20]);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(batches, [[1, 2], [3, 4, 5]]);
  gates[1].resolve();
  assert.deepEqual(await Promise.all(second), [30, 40, 50]);
});

Deno.test("GroupCommit splits a queue longer than maxBatch", async () => {
  const batches: number[][] = [];
  const group = new GroupCommit((items: number[]) => {
    batches.push(items);
    return items;
  }, { maxBatch: 2 });
  await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
  assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
});

Deno.test("GroupCommit rejects every submission of a failed batch and no other", async () => {
  let calls = 0;
  const group = new GroupCommit((items: number[]) => {
    if (calls++ === 0) throw new Error("disk full");
    return items;
  });
  const failed = [group.submit(1), group.submit(2)];
  for (const p of failed) await assert.rejects(p, /disk full/);
  assert.equal(await group.submit(3), 3, "a synchronous failure must not wedge the queue");
});

Deno.test("GroupCommit rejects a batch when the commit returns the wrong number of results", async () => {
  const group = new GroupCommit((items: number[]) => items.slice(1));
  await assert.rejects(group.submit(1), /returned 0 results for 1 items/);
});

Deno.test("GroupCommit.drain() waits for queued and running commits", async () => {
  const { gates, commit } = gatedCommit();
  const group = new GroupCommit(commit);
  const results = [group.submit(1), group.submit(2)];
  let drained = false;
  const drain = group.drain().then(() => drained = true);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(drained, false);
  gates[0].resolve();
  await drain;
  assert.equal(group.pending, 0);
  assert.deepEqual(await Promise.all(results), [10, 20]);
});

Deno.test("GroupCommit uses the schedule it is given", async () => {
  const scheduled: (() => void)[] = [];
  const group = new GroupCommit((items: number[]) => items, {
    schedule: (flush) => scheduled.push(flush),
  });
  const a = group.submit(1);
  const b = group.submit(2);
  assert.equal(scheduled.length, 1, "one flush per batch");
  assert.equal(group.pending, 2);
  scheduled[0]();
  assert.deepEqual(await Promise.all([a, b]), [1, 2]);
});

Deno.test("GroupCommit refuses a maxBatch that is not a positive integer", () => {
  assert.throws(() => new GroupCommit((i: number[]) => i, { maxBatch: 0 }), RangeError);
});
