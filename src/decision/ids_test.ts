import assert from "node:assert/strict";
import { uuidV7Source } from "./ids.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("uuidV7Source() gives UUIDv7s whose first 48 bits are the time in milliseconds", () => {
  const ms = Date.UTC(2025, 5, 1, 12);
  const id = uuidV7Source(() => ms).next();
  assert.match(id, UUID_V7);
  assert.equal(parseInt(id.replace(/-/g, "").slice(0, 12), 16), ms);
});

Deno.test("uuidV7Source() stays strictly increasing when the clock stalls, steps back, or 4096 IDs share a millisecond", () => {
  let now = 1_700_000_000_000;
  const ids = uuidV7Source(() => now);
  const seen: string[] = [];
  for (let i = 0; i < 5000; i++) seen.push(ids.next()); // counter runs out: borrows the next ms
  now -= 10_000; // the clock steps back
  for (let i = 0; i < 10; i++) seen.push(ids.next());
  now += 20_000;
  seen.push(ids.next());
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1] < seen[i], `${i}: ${seen[i]}`);
  assert.ok(seen.every((id) => UUID_V7.test(id)));
  assert.equal(new Set(seen).size, seen.length);
});
