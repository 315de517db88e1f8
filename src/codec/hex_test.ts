import assert from "node:assert/strict";
import { fromHex, sameBytes, toHex } from "./hex.ts";

Deno.test("toHex() writes every byte value as two lower-case digits", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = toHex(all);
  assert.equal(text.length, 512);
  assert.equal(text.slice(0, 6), "000102");
  assert.equal(text.slice(-4), "feff");
  assert.deepEqual(fromHex(text), all);
});

Deno.test("fromHex() reads either case and refuses odd lengths and non-hex, naming the value", () => {
  assert.deepEqual(fromHex("ABcd"), new Uint8Array([0xab, 0xcd]));
  assert.deepEqual(fromHex(""), new Uint8Array(0));
  assert.throws(() => fromHex("abc", "nonce"), /nonce "abc" is not an even-length hex string/);
  assert.throws(() => fromHex("zz"), TypeError);
});

Deno.test("sameBytes() compares length and contents", () => {
  assert.equal(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(sameBytes(new Uint8Array([1]), new Uint8Array([1, 0])), false);
});
