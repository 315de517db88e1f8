import assert from "node:assert/strict";
import { parseQuote } from "./quote.ts";

function quote(nonceLen: number, mask: number, regs: number, extra = 0): Uint8Array {
  const q = new Uint8Array(16 + nonceLen + 32 * regs + 64 + extra);
  q.set(new TextEncoder().encode("VASPQT01"));
  const v = new DataView(q.buffer);
  v.setUint16(8, 1, true);
  v.setUint16(10, nonceLen, true);
  v.setUint32(12, mask, true);
  for (let i = 0; i < regs; i++) {
    q.fill(i + 1, 16 + nonceLen + 32 * i, 16 + nonceLen + 32 * (i + 1));
  }
  return q;
}

Deno.test("parseQuote() splits nonce, registers in ascending order, message and signature", () => {
  const q = parseQuote(quote(4, (1 << 3) | (1 << 23), 2));
  assert.equal(q.alg, "sm3");
  assert.equal(q.nonce.length, 4);
  assert.deepEqual([...q.registers.keys()], [3, 23]);
  assert.equal(q.registers.get(3)![0], 1);
  assert.equal(q.registers.get(23)![31], 2);
  assert.equal(q.message.length, 16 + 4 + 64);
  assert.equal(q.signature.length, 64);
});

Deno.test("parseQuote() refuses every malformed layout with quote_malformed", async (t) => {
  const bad = (q: Uint8Array) =>
    assert.throws(() => parseQuote(q), { name: "NativeError", code: "quote_malformed" });
  await t.step("too short", () => bad(new Uint8Array(10)));
  await t.step("a wrong magic", () => {
    const q = quote(4, 1, 1);
    q[7] = 0x32;
    bad(q);
  });
  await t.step("an unknown algorithm", () => {
    const q = quote(4, 1, 1);
    q[8] = 2;
    bad(q);
  });
  await t.step("a zero-length nonce", () => bad(quote(0, 1, 1)));
  await t.step("a 65-byte nonce", () => bad(quote(65, 1, 1)));
  await t.step("an empty register mask", () => bad(quote(4, 0, 0)));
  await t.step("register 24 selected", () => bad(quote(4, 1 << 24, 1)));
  await t.step("one byte too many", () => bad(quote(4, 1, 1, 1)));
  await t.step("one register short", () => bad(quote(4, 3, 1)));
});
