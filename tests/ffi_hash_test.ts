import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hash, hashBatch } from "../ffi/mod.ts";
import { toHex as hex } from "../src/codec/mod.ts";

Deno.test("hash() matches node:crypto for SHA-256 and SM3 over 1 MiB of random bytes", () => {
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  assert.equal(hex(hash("sha256", data)), createHash("sha256").update(data).digest("hex"));
  assert.equal(hex(hash("sm3", data)), createHash("sm3").update(data).digest("hex"));
});

Deno.test("hashBatch() returns one digest per buffer, including an empty one and a subarray", () => {
  const whole = new TextEncoder().encode("hello, vasp");
  const parts = [whole.subarray(0, 5), new Uint8Array(0), whole.subarray(7)];
  const digests = hashBatch("sha256", parts);
  assert.equal(digests.length, 3);
  parts.forEach((p, i) => assert.equal(hex(digests[i]!), hex(hash("sha256", p))));
  assert.equal(hex(digests[0]!), createHash("sha256").update("hello").digest("hex"));
});

Deno.test("hash() refuses an unknown algorithm with a TypeError naming it", () => {
  // @ts-expect-error: the algorithm name is checked at compile time too
  assert.throws(() => hash("md5", new Uint8Array(1)), { name: "TypeError", message: /"md5"/ });
});
