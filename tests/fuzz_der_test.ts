/**
 * Fuzzing the hostile-input readers of attestation material in TypeScript: the DER reader
 * (ffi/der.ts) over the ASP's certificates, the VM binding extension parser, and the quote
 * parser. Each only ever refuses with its own error, and everything it returns lies inside
 * the buffer it read.
 */
import assert from "node:assert/strict";
import { NativeError, parseQuote } from "../ffi/mod.ts";
import { decodeOid, readAll, type Tlv, writeTlv } from "../src/codec/mod.ts";
import { parseBinding } from "../src/attest/mod.ts";
import { VaspError } from "../src/engine/mod.ts";
import { corpus, iterations, mutate, rng } from "./fixtures/fuzz.ts";

/** Walks every element, into constructed ones; checks bounds; returns how many it read. */
function walk(buf: Uint8Array, depth = 0): number {
  if (depth > 32) return 0;
  let count = 0;
  for (const tlv of readAll(buf)) {
    checkBounds(tlv, buf);
    count++;
    if (tlv.tag & 0x20) {
      try {
        count += walk(tlv.value, depth + 1);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
      }
    }
    if (tlv.tag === 0x06) {
      try {
        assert.match(decodeOid(tlv.value), /^\d+(\.\d+)+$/);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
      }
    }
    if (tlv.tag === 0x30) {
      try {
        parseBinding(buf.subarray(tlv.start, tlv.end));
      } catch (error) {
        if (!(error instanceof VaspError && error.code === "binding_malformed")) throw error;
      }
    }
  }
  return count;
}

function checkBounds(tlv: Tlv, buf: Uint8Array): void {
  assert.ok(tlv.start >= 0 && tlv.start < tlv.end && tlv.end <= buf.length);
  assert.equal(tlv.value.buffer, buf.buffer, "a view of the input, not a copy");
  assert.ok(tlv.value.byteOffset + tlv.value.byteLength <= buf.byteOffset + buf.byteLength);
}

Deno.test("the DER reader refuses mutated certificates with RangeError only, and stays inside the buffer", () => {
  const r = rng(11);
  const seeds = corpus("der").filter((f) => f.name.endsWith(".der"));
  assert.ok(seeds.length >= 4);
  for (const seed of seeds) assert.ok(walk(seed.bytes) > 20, `${seed.name} reads whole`);
  let read = 0;
  const n = iterations(20000);
  for (let i = 0; i < n; i++) {
    const input = mutate(r, seeds[i % seeds.length]!.bytes);
    try {
      read += walk(input);
    } catch (error) {
      if (error instanceof RangeError) continue;
      assert.fail(`seed ${r.seed} iteration ${i}: ${(error as Error).stack}`);
    }
  }
  assert.ok(read > 0, "some mutations still parse");
});

Deno.test("DER written by writeTlv reads back the same, for random tags and lengths", () => {
  const r = rng(12);
  for (let i = 0, n = iterations(500); i < n; i++) {
    const tag = [0x02, 0x04, 0x0c, 0x30, 0x31, 0xa0][r(6)]!;
    const value = Uint8Array.from(
      { length: [0, 1, 127, 128, 255, 256, 65535][r(7)]! },
      () => r(256),
    );
    const der = writeTlv(tag, value);
    const [tlv, ...rest] = readAll(der);
    assert.deepEqual([tlv!.tag, tlv!.value, rest.length], [tag, value, 0]);
  }
});

Deno.test("the quote parser refuses mutated quotes as malformed_quote only", () => {
  const r = rng(13);
  const [seed] = corpus("der").filter((f) => f.name === "quote.bin");
  assert.ok(seed);
  assert.equal(parseQuote(seed.bytes).registers.size, 2);
  for (let i = 0, n = iterations(20000); i < n; i++) {
    const input = mutate(r, seed.bytes);
    try {
      const quote = parseQuote(input);
      assert.ok(quote.message.byteLength <= input.byteLength);
      for (const value of quote.registers.values()) assert.equal(value.byteLength, 32);
    } catch (error) {
      if (error instanceof NativeError && error.code === "quote_malformed") continue;
      assert.fail(`seed ${r.seed} iteration ${i}: ${(error as Error).stack}`);
    }
  }
});
