import assert from "node:assert/strict";
import { discoverKaslr, tableSlots } from "./kaslr.ts";
import { FAKE, fakeRam, fakeSymbols, readerOf } from "./testing.ts";

const MiB = 1n << 20n;

Deno.test("discoverKaslr() finds a nokaslr kernel at its link-time address first", () => {
  const ram = fakeRam({ physText: 16n * MiB, slide: 0n });
  const layout = discoverKaslr(readerOf(ram), fakeSymbols());
  assert.equal(layout.physText, 16n * MiB);
  assert.equal(layout.physOffset, 0n);
  assert.equal(layout.virtOffset, 0n);
  assert.equal(layout.candidatesTried, 1);
  assert.equal(layout.banner, "Linux version 9.9.9-fake (test)");
  assert.deepEqual(layout.syscallOutliers, []);
});

Deno.test("discoverKaslr() finds independent physical and virtual slides", () => {
  const ram = fakeRam({ physText: 42n * MiB, slide: 0x2c600000n });
  const layout = discoverKaslr(readerOf(ram), fakeSymbols());
  assert.equal(layout.physText, 42n * MiB);
  assert.equal(layout.physOffset, 26n * MiB);
  assert.equal(layout.virtOffset, 0x2c600000n);
});

Deno.test("discoverKaslr() skips a decoy banner whose syscall table does not validate", () => {
  const ram = fakeRam({ physText: 40n * MiB, slide: 0x400000n });
  const decoy = Number(4n * MiB + (FAKE.banner - FAKE.text));
  ram.set(new TextEncoder().encode("Linux version evil\n"), decoy);
  const layout = discoverKaslr(readerOf(ram), fakeSymbols());
  assert.equal(layout.physText, 40n * MiB);
});

Deno.test("discoverKaslr() keeps the slide when one entry is hooked, and names the entry", () => {
  const ram = fakeRam({ physText: 20n * MiB, slide: 0x800000n });
  const at = Number(20n * MiB + (FAKE.sct - FAKE.text)) + 3 * 8;
  new DataView(ram.buffer).setBigUint64(at, 0xffffffffc0001000n, true);
  const layout = discoverKaslr(readerOf(ram), fakeSymbols());
  assert.equal(layout.virtOffset, 0x800000n);
  assert.deepEqual(layout.syscallOutliers, [3]);
});

Deno.test("discoverKaslr() fails cleanly and quickly on garbage RAM", () => {
  const ram = new Uint8Array(64 << 20);
  for (let i = 0; i < ram.length; i += 65536) crypto.getRandomValues(ram.subarray(i, i + 65536));
  const started = performance.now();
  assert.throws(() => discoverKaslr(readerOf(ram), fakeSymbols()), {
    name: "VaspError",
    code: "kaslr_not_found",
    message: /in 67108864 bytes of guest RAM \(\d+ candidates/,
  });
  assert.ok(performance.now() - started < 2000);
});

Deno.test("discoverKaslr() fails cleanly on RAM too small to hold the kernel", () => {
  assert.throws(() => discoverKaslr(readerOf(new Uint8Array(4096)), fakeSymbols()), {
    code: "kaslr_not_found",
  });
});

Deno.test("tableSlots() sizes a table to the next symbol, padding included", () => {
  assert.equal(tableSlots(fakeSymbols(), "sys_call_table"), FAKE.syscalls + 1);
});
