import assert from "node:assert/strict";
import { applyRelocations, parseRelocations, undoRelocations } from "./relocs.ts";

/** A payload: `body` bytes, then the list as the build appends it. */
function payload(body: number, lists: { abs32: number[]; inv32: number[]; abs64: number[] }) {
  // Forward order in the file: 0, 64-bit…, 0, inverse…, 0, 32-bit… (read backwards).
  const words = [0, ...lists.abs64, 0, ...lists.inv32, 0, ...lists.abs32];
  const out = new Uint8Array(body + words.length * 4);
  new DataView(out.buffer).setUint32(0, 0xdeadbeef, true);
  words.forEach((w, i) => new DataView(out.buffer).setUint32(body + i * 4, w, true));
  return out;
}

Deno.test("parseRelocations() reads the three lists backwards from the end, sorted", () => {
  const r = parseRelocations(
    payload(16, {
      abs32: [0x81000010, 0x81000004],
      inv32: [0x81000020],
      abs64: [0x81000030, 0x81000040],
    }),
    { floor: 16 },
  );
  assert.deepEqual([...r.abs32], [0x81000004, 0x81000010]);
  assert.deepEqual([...r.inv32], [0x81000020]);
  assert.deepEqual([...r.abs64], [0x81000030, 0x81000040]);
});

Deno.test("parseRelocations() refuses a list without terminator and a location outside the image", () => {
  const words = new Uint32Array([0x81000000, 0x81000010]);
  assert.throws(() => parseRelocations(new Uint8Array(words.buffer)), {
    code: "relocations_invalid",
    message: /no terminator/,
  });
  assert.throws(() => parseRelocations(payload(0, { abs32: [0x1234], inv32: [], abs64: [] })), {
    code: "relocations_invalid",
    message: /0x1234, outside the kernel image/,
  });
});

Deno.test("undoRelocations() reverses applyRelocations() exactly, carries included", () => {
  const base = 0xffffffff81000000n;
  const relocations = parseRelocations(
    payload(0, { abs32: [0x81000000], inv32: [0x81000008], abs64: [0x81000010] }),
  );
  const bytes = new Uint8Array(32);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, 0x81234567, true);
  v.setUint32(8, 0x00001000, true);
  v.setBigUint64(16, 0xffffffffffe00000n, true); // adding the slide carries into the top half
  const original = bytes.slice();
  const slide = 0x3e00000n;
  assert.equal(applyRelocations(bytes, base, { slide, relocations }), 3);
  assert.equal(v.getUint32(0, true), 0x85034567);
  assert.equal(v.getUint32(8, true), (0x1000 - 0x3e00000) >>> 0);
  assert.equal(v.getBigUint64(16, true), (0xffffffffffe00000n + slide) & 0xffffffffffffffffn);
  assert.equal(undoRelocations(bytes, base, { slide, relocations }), 3);
  assert.deepEqual(bytes, original);
});

Deno.test("undoRelocations() touches only locations inside the buffer", () => {
  const relocations = parseRelocations(
    payload(0, { abs32: [0x81000000, 0x81000100], inv32: [], abs64: [] }),
  );
  const bytes = new Uint8Array(16);
  assert.equal(undoRelocations(bytes, 0xffffffff81000100n, { slide: 0x200000n, relocations }), 1);
  assert.equal(new DataView(bytes.buffer).getUint32(0, true), (0 - 0x200000) >>> 0);
  assert.equal(undoRelocations(bytes, 0xffffffff81000100n, { slide: 0n, relocations }), 0);
});

Deno.test("undoRelocations() refuses a location that crosses the buffer's edge", () => {
  const relocations = parseRelocations(payload(0, { abs32: [], inv32: [], abs64: [0x81000004] }));
  assert.throws(
    () =>
      undoRelocations(new Uint8Array(8), 0xffffffff81000000n, { slide: 0x200000n, relocations }),
    { code: "relocation_straddles", message: /0xffffffff81000004/ },
  );
  assert.throws(
    () => undoRelocations(new Uint8Array(8), 0x1000n, { slide: 0x200000n, relocations }),
    RangeError,
  );
});
