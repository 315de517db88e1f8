import assert from "node:assert/strict";
import { KeyedQueue } from "./_keyed_queue.ts";

Deno.test("KeyedQueue runs the tasks of one key one at a time in order, other keys alongside, and goes on after a failure", async () => {
  const queue = new KeyedQueue();
  const log: string[] = [];
  const gate = Promise.withResolvers<void>();
  const first = queue.run("a", async () => {
    log.push("a1 start");
    await gate.promise;
    log.push("a1 end");
    throw new Error("a1 failed");
  });
  const second = queue.run("a", () => {
    log.push("a2");
    return Promise.resolve(2);
  });
  const other = queue.run("b", () => {
    log.push("b1");
    return Promise.resolve(1);
  });
  assert.equal(await other, 1);
  assert.deepEqual(log, ["a1 start", "b1"]);
  gate.resolve();
  await assert.rejects(first, /a1 failed/);
  assert.equal(await second, 2);
  assert.deepEqual(log, ["a1 start", "b1", "a1 end", "a2"]);
});
